"""One size budget: a document and the parameter values it runs with share SSM's 64 KB."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.bake.test_document_contract import DIGEST
from tests.support.bakes import BASE
from tests.support.cli import assert_one_line_error, run_tfbake
from tests.support.sandbox_helpers import (
    bake_parameters,
    clients,
    register_base_ami,
    start_bake,
    wait_for_execution,
)
from tests.support.specs import write_spec
from tfbake.aws.calls import AwsContext
from tfbake.bake import documents
from tfbake.bake.lock import LOCK_PREFIX
from tfbake.model import document_budget
from tfbake.model.chunks import ANSIBLE_BUNDLE, IMAGES, PROVISION, SLICE_CHARACTERS
from tfbake.model.errors import BadInput, ExitCode
from tfbake.sandbox import Sandbox

LIMIT = 64 * 1024


def _references(count: int, tag: str = "v1") -> list[str]:
    return [f"registry.example.com:5000/team/service-{i:04d}:{tag}@{DIGEST}" for i in range(count)]


def _noise(size: int) -> str:
    """Text that base64 cannot shrink and gzip barely can."""
    generator = random.Random(size)
    return "".join(generator.choice(string.ascii_letters + string.digits) for _ in range(size))


def _runbook_size(parameters: dict[str, list[str]]) -> int:
    """The reading document_budget.py states, written out: content, names and values, in
    UTF-8 bytes."""
    values = sum(len(k) + sum(len(v.encode()) for v in vs) for k, vs in parameters.items())
    return len(documents.runbook_content().encode()) + values


def _measured(arguments: dict[str, Any]) -> int:
    """How far `arguments` are from the limit, by the test's reading (negative: under), or by
    the refusal's own count when they are over."""
    try:
        return _runbook_size(bake_parameters("ami-0123456789abcdef0", **arguments)) - LIMIT
    except BadInput as err:
        found = re.search(r"is ([0-9]+) bytes too big", str(err))
        assert found, err
        return int(found[1])


def _at_the_limit() -> dict[str, Any]:
    """Arguments whose runbook parameters take exactly the 64 KB: tags fill it to within a
    tag's length, and the last image's tag to the byte."""
    # Half the room the documents leave goes to images, a fifth to provision, tags fill the rest.
    room = LIMIT - _runbook_size(bake_parameters("ami-0123456789abcdef0", images=_references(1)))
    count = room // 2 // len(_references(1)[0])
    # A longer reference may open one more image slot, whose name counts too; when the exact
    # size falls on such a boundary, a slightly shorter provision moves it.
    for shorter in range(16):
        arguments: dict[str, Any] = {
            "images": _references(count), "provision": [_noise(room // 5 - shorter)]
        }  # fmt: skip
        tags: dict[str, str] = {}
        while True:
            arguments["extra_tags"] = dict(tags)
            left = -_measured(arguments)
            if left <= 100:
                break
            tags[f"fill{len(tags)}"] = "v" * min(200, left - 60)
        *images, last = arguments["images"]
        grown, tried = left, set()
        while grown not in tried:
            tried.add(grown)
            longer = {**arguments, "images": [*images, last.replace(":v1@", f":v1{'x' * grown}@")]}
            excess = _measured(longer)
            if excess == 0:
                return longer
            grown -= excess
    raise AssertionError("no image set of exactly 64 KB found")


def test_a_set_that_takes_the_budget_exactly_is_accepted() -> None:
    arguments = _at_the_limit()
    parameters = bake_parameters("ami-0123456789abcdef0", **arguments)

    assert _runbook_size(parameters) == LIMIT


def test_a_set_one_byte_over_the_budget_is_refused_naming_its_parts() -> None:
    arguments = _at_the_limit()
    images = arguments["images"]
    arguments["images"] = [*images[:-1], images[-1].replace(":v1", ":v1y", 1)]

    with pytest.raises(BadInput) as caught:
        bake_parameters("ami-0123456789abcdef0", **arguments)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the image set is 1 bytes too big for one bake: the runbook")
    assert f"images {len(' '.join(arguments['images']))}" in message
    assert re.search(r"provision [0-9]{4}", message)


def test_the_recipe_budget_counts_the_values_run_command_sends(sandbox: Sandbox) -> None:
    """What document_budget.py counts for the recipe is what the sandbox's RunRecipe sends."""
    ec2, ssm = clients(sandbox)
    parameters = bake_parameters(
        register_base_ami(ec2), ecr_registries=["1" * 12 + ".dkr.ecr.us-east-1.amazonaws.com"]
    )
    details = wait_for_execution(ssm, start_bake(ssm, parameters)[0])
    [command] = sandbox.recorded_commands()

    read = document_budget.recipe_parameters_sent(documents.recipe_step_parameters(), parameters)
    assert details["AutomationExecutionStatus"] == "Success", details.get("FailureMessage")
    assert read == command.parameters


def test_an_image_set_over_the_budget_is_refused_at_plan(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    playbook = tmp_path / "ansible"
    playbook.mkdir()
    (playbook / "site.yml").write_text("- hosts: localhost\n")
    (playbook / "data.txt").write_text(_noise(6000))
    spec = write_spec(
        tmp_path,
        base_ami=BASE,
        images=_references(150),
        provision=[_noise(5800)],
        ansible={
            "directory": str(playbook),
            "playbook": "site.yml",
            "files": ["site.yml", "data.txt"],
        },
    )
    result = run_tfbake("ensure", str(spec))

    assert_one_line_error(result, ExitCode.BAD_INPUT, "bytes too big for one bake", "images ",
                          "provision ", "Ansible bundle ", f"SSM allows {LIMIT}")  # fmt: skip
    assert sandbox.log.count("StartAutomationExecution") == 0
    parameters = aws.client("ssm").describe_parameters()["Parameters"]
    assert [p["Name"] for p in parameters if p["Name"].startswith(LOCK_PREFIX)] == []


def _filled(prefix_slots: tuple[str, ...], alphabet: str) -> dict[str, list[str]]:
    return {slot: [alphabet * (SLICE_CHARACTERS // len(alphabet))] for slot in prefix_slots}


def test_the_sandbox_refuses_an_oversized_runbook_start(sandbox: Sandbox) -> None:
    ec2, ssm = clients(sandbox)
    parameters = {
        **bake_parameters(register_base_ami(ec2)),
        **_filled(IMAGES.slot_names, "a"),
        **_filled(PROVISION.slot_names, "QUJD"),
        **_filled(ANSIBLE_BUNDLE.slot_names, "QUJD"),
    }

    with pytest.raises(ssm.exceptions.InvalidAutomationExecutionParametersException) as caught:
        start_bake(ssm, parameters)

    assert "64 KB" in str(caught.value)


def test_the_sandbox_refuses_an_oversized_send_command(sandbox: Sandbox) -> None:
    _, ssm = clients(sandbox)

    with pytest.raises(ClientError) as caught:
        ssm.send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=["i-0123456789abcdef0"],
            Parameters={"commands": ["echo " + "x" * 1000] * 66},
        )

    assert caught.value.response["Error"]["Code"] == "MaxDocumentSizeExceeded"
