"""The shipped SSM documents: the runbook's step graph, the recipe document, names, parameters."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.support.sandbox_helpers import DIGEST_A, bake_parameters
from tfbake.bake import documents
from tfbake.model.errors import BadInput
from tfbake.sandbox import Sandbox
from tfbake.sandbox.automation.engine import NO_ON_CANCEL_ACTIONS, resolve_parameters

TERMINATE_ON_FAILURE = "TerminateBuilderOnFailure"


def _runbook() -> dict[str, Any]:
    return yaml.safe_load(documents.runbook_content())


def _steps() -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in _runbook()["mainSteps"]}


def _following(name: str) -> str | None:
    order = [step["name"] for step in _runbook()["mainSteps"]]
    index = order.index(name) + 1
    return order[index] if index < len(order) else None


def _on_success(step: dict[str, Any]) -> list[str | None]:
    """Where the execution goes after the step succeeds; None means it ends there."""
    if step.get("isEnd"):
        return [None]
    if step["action"] == "aws:branch":
        choices = step["inputs"]["Choices"]
        return [c["NextStep"] for c in choices] + [step["inputs"]["Default"]]
    return [step.get("nextStep") or _following(step["name"])]


def _on_failure(step: dict[str, Any]) -> list[str | None]:
    on_failure = step.get("onFailure", "Abort")
    if on_failure == "Abort":
        return [None]
    if on_failure == "Continue":
        return _on_success({**step, "action": "", "isEnd": step.get("isEnd")})
    return [on_failure.removeprefix("step:")]


def _endings(start: str) -> Iterator[tuple[str, str]]:
    """(last step, how it ended) for every way an execution can end once it reaches `start`."""
    steps, seen, todo = _steps(), set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        step = steps[name]
        for outcome, targets in (("success", _on_success(step)), ("failure", _on_failure(step))):
            for target in targets:
                if target is None:
                    yield name, outcome
                else:
                    todo.append(target)


def _launch_steps() -> list[str]:
    return [s["name"] for s in _runbook()["mainSteps"] if s["action"] == "aws:runInstances"]


def _steps_after_launch() -> list[str]:
    """Every step an execution can reach once a builder may exist."""
    reached: set[str] = set()
    todo = list(_launch_steps())
    steps = _steps()
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            step = steps[name]
            todo.extend(t for t in _on_success(step) + _on_failure(step) if t)
    return sorted(reached)


def _sets_ready(step: dict[str, Any]) -> bool:
    tags = step.get("inputs", {}).get("Tags")
    return isinstance(tags, list) and {"Key": "tfbake:status", "Value": "ready"} in tags


@pytest.mark.parametrize("name", [n for n in _steps_after_launch() if n != TERMINATE_ON_FAILURE])
def test_every_failure_after_the_launch_ends_by_terminating_the_builder(name: str) -> None:
    step = _steps()[name]
    [target] = _on_failure(step)

    assert target is not None, f"{name} aborts without cleaning up"
    assert {last for last, _ in _endings(target)} == {TERMINATE_ON_FAILURE}


@pytest.mark.parametrize("name", [n for n in _steps_after_launch() if n != TERMINATE_ON_FAILURE])
def test_no_failure_path_marks_an_image_ready(name: str) -> None:
    [target] = _on_failure(_steps()[name])
    steps, seen, todo = _steps(), set(), [target]
    while todo:
        current = todo.pop()
        if current and current not in seen:
            seen.add(current)
            todo.extend(_on_success(steps[current]) + _on_failure(steps[current]))
    assert not [n for n in seen if _sets_ready(steps[n])]


def test_a_failed_step_keeps_the_execution_failed_after_cleanup() -> None:
    # AWS reports Failed when a critical step failed even though onFailure sent the execution
    # on to the cleanup steps; a non-critical bake step would end a failed bake as Success.
    steps = _steps()
    cleanup = {name for name in steps if name.endswith("OnFailure") or name == "MarkImageFailed"}
    bake_steps = set(_steps_after_launch()) - cleanup

    assert all(steps[name].get("isCritical") is True for name in bake_steps)
    assert steps[TERMINATE_ON_FAILURE].get("isCritical") is True
    assert steps[TERMINATE_ON_FAILURE].get("isEnd") is True
    assert steps[TERMINATE_ON_FAILURE]["inputs"]["DesiredState"] == "terminated"


def _cancel_path() -> set[str]:
    """Every step a cancelled execution can run (from any step's onCancel)."""
    steps = _steps()
    todo = [s["onCancel"][5:] for s in steps.values() if s.get("onCancel", "").startswith("step:")]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name and name not in reached:
            reached.add(name)
            todo.extend(_on_success(steps[name]) + _on_failure(steps[name]))
    return reached


def test_steps_before_the_launch_have_nothing_to_clean_up() -> None:
    after = set(_steps_after_launch()) | _cancel_path()
    before = [s for s in _runbook()["mainSteps"] if s["name"] not in after]
    assert before, "the runbook reads the base image before launching"
    assert all(step.get("onFailure", "Abort") == "Abort" for step in before)


def _success_paths(name: str, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    path = (*path, name)
    for target in _on_success(_steps()[name]):
        if target is None:
            yield path
        else:
            yield from _success_paths(target, path)


def test_every_success_path_creates_terminates_and_then_marks_ready() -> None:
    steps = _steps()
    paths = list(_success_paths(_runbook()["mainSteps"][0]["name"]))

    assert len(paths) == 2  # with and without a KMS key
    for path in paths:
        actions = [(steps[n]["action"], steps[n]["inputs"].get("Api")) for n in path]
        created = actions.index(("aws:executeAwsApi", "CreateImage"))
        terminated = path.index("TerminateBuilder")
        assert _sets_ready(steps[path[-1]])
        assert [n for n in path if _sets_ready(steps[n])] == [path[-1]]
        assert created < terminated < len(path) - 1
        assert path.index("RunRecipe") < path.index("StopBuilder") < created


def test_the_image_is_born_pending_and_tagged_with_the_execution() -> None:
    spec = _steps()["CreateImage"]["inputs"]["TagSpecifications"]
    tags = {t["Key"]: t["Value"] for t in spec[0]["Tags"]}

    assert spec[0]["ResourceType"] == "image"
    assert tags["tfbake:status"] == "pending"
    assert tags["tfbake:execution-id"] == "{{ automation:EXECUTION_ID }}"
    assert {"tfbake:fingerprint", "tfbake:name", "tfbake:scheme", "tfbake:base-ami"} <= set(tags)
    assert "{{ Fingerprint }}" in _steps()["CreateImage"]["inputs"]["Description"]


@pytest.mark.parametrize("name", _launch_steps())
def test_the_builder_requires_imdsv2_and_terminates_on_shutdown(name: str) -> None:
    inputs = _steps()[name]["inputs"]
    instance_tags = {
        t["Key"]: t["Value"]
        for spec in inputs["TagSpecifications"]
        if spec["ResourceType"] == "instance"
        for t in spec["Tags"]
    }

    assert inputs["MetadataOptions"]["HttpTokens"] == "required"
    assert inputs["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert instance_tags["tfbake:role"] == "builder"
    assert instance_tags["tfbake:execution-id"] == "{{ automation:EXECUTION_ID }}"
    assert instance_tags["tfbake:fingerprint"] == "{{ Fingerprint }}"


def test_the_recipe_document_takes_every_value_as_an_environment_variable() -> None:
    recipe = yaml.safe_load(documents.recipe_command_content())
    [step] = recipe["mainSteps"]
    script = "\n".join(step["inputs"]["runCommand"])
    run_recipe = _steps()["RunRecipe"]["inputs"]

    assert step["action"] == "aws:runShellScript"
    assert all(p["interpolationType"] == "ENV_VAR" for p in recipe["parameters"].values())
    assert all(p["type"] == "String" for p in recipe["parameters"].values())
    assert "{{" not in script
    assert script + "\n" == documents._template(documents.RECIPE_SCRIPT)
    assert set(run_recipe["Parameters"]) == set(recipe["parameters"])
    assert run_recipe["DocumentName"] == documents.document_names().recipe


def test_the_runbook_runs_no_shell_of_its_own() -> None:
    for step in _runbook()["mainSteps"]:
        inputs = step.get("inputs", {})
        assert step["action"] not in {"aws:runShellScript", "aws:executeScript"}
        assert inputs.get("DocumentName", "") != "AWS-RunShellScript"
        assert "commands" not in inputs.get("Parameters", {})


def test_a_recipe_with_a_placeholder_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    original = documents._template
    monkeypatch.setattr(
        documents,
        "_template",
        lambda name: "echo {{ Images }}\n" if name == documents.RECIPE_SCRIPT else original(name),
    )
    with pytest.raises(RuntimeError, match="interpolate"):
        documents.recipe_command_content()


@pytest.fixture(autouse=True)
def _fresh_documents() -> Iterator[None]:
    """Rendered documents are cached per process; a test that changes a template must not
    leave its rendering behind, nor see an earlier one."""
    documents.recipe_command_content.cache_clear()
    documents.runbook_content.cache_clear()
    yield
    documents.recipe_command_content.cache_clear()
    documents.runbook_content.cache_clear()


def _with_changed(monkeypatch: pytest.MonkeyPatch, changed: str) -> None:
    original = documents._template
    monkeypatch.setattr(
        documents,
        "_template",
        lambda name: original(name) + ("# changed\n" if name == changed else ""),
    )
    documents.recipe_command_content.cache_clear()
    documents.runbook_content.cache_clear()


def test_a_changed_recipe_renames_both_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    before, digest = documents.document_names(), documents.recipe_digest()
    _with_changed(monkeypatch, documents.RECIPE_SCRIPT)
    after = documents.document_names()

    assert after.recipe != before.recipe
    assert after.runbook != before.runbook
    assert documents.recipe_digest() != digest
    assert re.fullmatch(r"tfbake-bake-[0-9a-f]{12}", after.runbook)


def test_a_changed_runbook_renames_only_the_runbook(monkeypatch: pytest.MonkeyPatch) -> None:
    before = documents.document_names()
    _with_changed(monkeypatch, documents.RUNBOOK_TEMPLATE)
    after = documents.document_names()

    assert (after.recipe, after.runbook != before.runbook) == (before.recipe, True)


PINNED = f"docker.io/library/nginx:1.27@{DIGEST_A}"


@pytest.mark.parametrize(
    ("reference", "accepted"),
    [
        (PINNED, True),
        (f"localhost:5000/a/b__c@{DIGEST_A}", True),
        (f"[::1]:5000/app@{DIGEST_A}", True),
        ("docker.io/library/nginx:1.27", False),
        (f"nginx@{DIGEST_A}", False),
        (f"{PINNED};reboot", False),
        (f"{PINNED} {PINNED}", False),
        ("", False),
    ],
)
def test_a_bake_hands_on_only_normalised_pinned_references(reference: str, accepted: bool) -> None:
    """The grammar the flat Images pattern leaves to tfbake, checked before the call."""
    try:
        bake_parameters("ami-0123456789abcdef0", images=[reference])
    except BadInput:
        assert not accepted
    else:
        assert accepted


def test_parameters_satisfy_the_runbook_and_leave_empty_values_out() -> None:
    parameters = bake_parameters("ami-0123456789abcdef0")
    values = resolve_parameters(_runbook(), parameters)

    assert values["SubnetId"] == values["AutomationAssumeRole"] == ""
    assert values["KmsKeyId"] == "none"
    assert "SubnetId" not in parameters
    assert "SecurityGroupIds" not in parameters
    assert values["VolumeSize"] == 30
    assert values["Encrypted"] is True
    assert {"Key": "team", "Value": "platform"} in values["ExtraTags"]
    assert {"Key": "tfbake:version", "Value": values["ExtraTags"][0]["Value"]} in values[
        "ExtraTags"
    ]


def test_provision_commands_are_nul_terminated_base64() -> None:
    commands = ["apt-get install -y jq", "printf 'a\\nb' > /etc/x\necho \"$HOME\""]
    parameters = bake_parameters("ami-0123456789abcdef0", provision=commands)

    decoded = base64.b64decode(parameters["Provision01"][0]).decode()

    assert decoded.split("\0") == [*commands, ""]


def test_a_provision_command_holding_the_separator_is_refused() -> None:
    # The spec's other rules (a KMS key needs encryption, no reserved tag, at least one image)
    # are the spec's to check (tests/spec/test_spec.py); this one is the wire format's.
    with pytest.raises(BadInput):
        bake_parameters("ami-0123456789abcdef0", provision=["bad\0command"])


def test_documents_are_created_once(sandbox: Sandbox) -> None:
    import boto3

    ssm = boto3.client("ssm", endpoint_url=sandbox.url, region_name=sandbox.region)
    names = documents.ensure_documents(ssm)
    again = documents.ensure_documents(ssm)

    assert again == names
    assert sandbox.log.count("CreateDocument") == 2
    runbook = ssm.describe_document(Name=names.runbook)["Document"]
    assert runbook["DocumentType"] == "Automation"
    assert ssm.describe_document(Name=names.recipe)["Document"]["DocumentType"] == "Command"


class _RacingSsm:
    """An SSM client that lost the race: the document appeared between describe and create."""

    class meta:  # like boto3 client.meta
        region_name = "eu-west-1"

    def __init__(self) -> None:
        self.created: list[str] = []
        self.hashes: dict[str, str] = {}
        self.described = 0

    def describe_document(self, Name: str) -> dict[str, Any]:  # boto3 parameter names
        self.described += 1
        if Name not in self.created:
            raise ClientError({"Error": {"Code": "InvalidDocument"}}, "DescribeDocument")
        return {"Document": {"Status": "Active", "Hash": self.hashes[Name]}}

    def create_document(self, Name: str, Content: str, **_: Any) -> dict[str, Any]:
        self.created.append(Name)
        self.hashes[Name] = documents.content_hash(Content)
        raise ClientError({"Error": {"Code": "DocumentAlreadyExists"}}, "CreateDocument")


def test_a_concurrent_creator_is_not_an_error() -> None:
    ssm = _RacingSsm()

    names = documents.ensure_documents(ssm)

    assert ssm.created == [names.recipe, names.runbook]


def test_a_configured_runbook_is_used_as_is() -> None:
    names = documents.ensure_documents(object(), runbook_name="team-bake-runbook")

    assert names == documents.DocumentNames(runbook="team-bake-runbook", recipe=None)


def test_the_progress_step_reader_agrees_with_a_yaml_parse() -> None:
    from tfbake.bake.steps import runbook_step_count, success_path

    path = tuple(success_path(documents.runbook_content()))
    assert path in set(_success_paths(_runbook()["mainSteps"][0]["name"]))
    assert runbook_step_count() == len(path)


# AWS refuses onCancel on these actions, and gives the cancel workflow two minutes.
NO_ON_CANCEL = NO_ON_CANCEL_ACTIONS


def _bake_steps_that_may_cancel() -> list[str]:
    # The failure path's steps clean up already; their names say so.
    return [
        n
        for n in _steps_after_launch()
        if _steps()[n]["action"] not in NO_ON_CANCEL and not n.endswith("OnFailure")
    ]


@pytest.mark.parametrize("name", _bake_steps_that_may_cancel())
def test_a_cancel_after_the_launch_terminates_the_builder(name: str) -> None:
    step = _steps()[name]
    assert step.get("onCancel", "").startswith("step:"), f"{name} has no cancel workflow"
    steps, name_, ended = _steps(), step["onCancel"][5:], None
    while name_:
        current = steps[name_]
        assert current["action"] == "aws:executeAwsApi", "the cancel workflow waits for nothing"
        ended, name_ = current, (None if current.get("isEnd") else current.get("nextStep"))
    assert ended is not None and ended["inputs"]["Api"] == "TerminateInstances"


def test_no_step_declares_on_cancel_where_aws_refuses_it() -> None:
    steps = _steps().values()
    assert not [s["name"] for s in steps if s.get("onCancel") and s["action"] in NO_ON_CANCEL]


@pytest.mark.parametrize(
    "name", ["IdentifyBuilder", "WaitForImage", "FindBuilderOnFailure", "FindBuilderOnCancel"]
)
def test_reads_of_what_was_just_created_are_retried(name: str) -> None:
    assert _steps()[name].get("maxAttempts", 1) > 1


# The recipe digest of the documents as last released. It is a fingerprint input, so any change
# to the rendered documents rebakes every image set of every user on upgrade and rolls their
# groups onto new AMIs (docs/fingerprint.md, "What a recipe change does"). A change that means to
# do so updates this value. Comments are not rendered, so fixing one leaves it alone.
RELEASED_RECIPE_DIGEST = "535c47a84fe40366b15f76e4f141cb49840f05943801bd64591014894e514a7d"


def test_the_rendered_documents_change_only_on_purpose() -> None:
    assert documents.recipe_digest() == RELEASED_RECIPE_DIGEST
