"""Protocol 2: the plan's lookup reads and never writes; `tfbake bake-planned` bakes at apply
exactly what the plan showed, once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.amis import seed_ami
from tests.support.bakes import BASE
from tests.support.cli import assert_one_line_error, external, run_tfbake
from tests.support.specs import planned_query
from tfbake import __version__
from tfbake.aws.calls import AwsContext
from tfbake.model import tags
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

STARTS = "StartAutomationExecution"
# Every call that changes something in AWS; a plan's lookup makes none of them.
WRITES = {"CreateTags", "DeleteTags", "PutParameter", "DeleteParameter", STARTS, "CopyImage"}


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def survey(sandbox: Sandbox, **changes: Any) -> dict[str, str]:
    sandbox.log.clear()
    result = external(planned_query(**changes))
    assert result.code == 0, result.stderr
    assert not WRITES & set(sandbox.log.actions()), sandbox.log.actions()
    return result.external_result()


def apply_query(reply: dict[str, str], **changes: str) -> dict[str, str]:
    """What the module's bake resource hands to bake-planned: the plan's pinned inputs."""
    return {
        **planned_query(),
        "images": reply["images"],
        "base_ami": reply["base_ami"],
        "planned_fingerprint": reply["fingerprint"],
        "planned_ami": reply["ami_id"],
        **changes,
    }


def bake_planned(query: dict[str, str], **kwargs: Any) -> Any:
    return run_tfbake("bake-planned", json.dumps(query), **kwargs)


def test_a_missing_ami_is_a_planned_bake_not_an_error(sandbox: Sandbox) -> None:
    reply = survey(sandbox)
    assert reply["status"] == "missing"
    assert reply["ami_id"] == ""
    assert reply["bake_trigger"] == reply["fingerprint"]
    assert json.loads(reply["images"])[0].startswith("docker.io/library/nginx:1.27@sha256:")
    assert reply["tfbake_version"] == __version__
    assert sandbox.log.count(STARTS) == 0


def test_a_found_ami_is_not_tagged_at_plan(ec2: Any, sandbox: Sandbox) -> None:
    ami = seed_ami(ec2, survey(sandbox)["fingerprint"])
    reply = survey(sandbox)
    assert (reply["status"], reply["ami_id"]) == ("found", ami)
    (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert tags.LAST_RETURNED not in {tag["Key"] for tag in image.get("Tags", [])}


def test_an_invalidated_ami_changes_the_bake_trigger(ec2: Any, sandbox: Sandbox) -> None:
    fingerprint = survey(sandbox)["fingerprint"]
    seed_ami(ec2, fingerprint, status=tags.STATUS_REVOKED)
    reply = survey(sandbox)
    assert reply["status"] == "not-ready"
    assert reply["bake_trigger"] == f"{fingerprint}+1"


def test_bake_planned_bakes_what_the_plan_showed_once(ec2: Any, sandbox: Sandbox) -> None:
    reply = survey(sandbox, base_ami=BASE)  # resolved at plan; the apply gets its id
    baked = bake_planned(apply_query(reply))
    assert baked.code == 0, baked.stderr
    ami = baked.stdout.strip()
    assert ami.startswith("ami-")
    assert sandbox.log.count(STARTS) == 1
    assert f"tfbake: baked {ami} for 'web'" in baked.stderr
    # The apply records that it handed the AMI on (gc's grace period), as the plan did not.
    (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert tags.LAST_RETURNED in {tag["Key"] for tag in image["Tags"]}
    # The read after the bake resource finds it; a second apply finds it too.
    after = external(apply_query(reply))
    assert after.code == 0, after.stderr
    assert after.external_result()["ami_id"] == ami
    sandbox.log.clear()
    again = bake_planned(apply_query(reply))
    assert (again.code, again.stdout.strip()) == (0, ami)
    assert sandbox.log.count(STARTS) == 0


def test_inputs_that_no_longer_make_the_planned_fingerprint_are_refused(
    sandbox: Sandbox,
) -> None:
    reply = survey(sandbox)
    changed = apply_query(reply, provision=json.dumps(["echo changed after the plan"]))
    assert_one_line_error(
        bake_planned(changed), ExitCode.BAD_INPUT, "the plan showed", "plan again"
    )
    assert sandbox.log.count(STARTS) == 0


def test_an_ami_invalidated_between_plan_and_apply_is_refused(ec2: Any, sandbox: Sandbox) -> None:
    fingerprint = survey(sandbox)["fingerprint"]
    ami = seed_ami(ec2, fingerprint)
    reply = survey(sandbox)
    ec2.create_tags(Resources=[ami], Tags=[{"Key": tags.STATUS, "Value": tags.STATUS_REVOKED}])
    refused = bake_planned(apply_query(reply))
    assert_one_line_error(refused, ExitCode.AMI_MISSING, ami, "no longer ready", "plan again")
    assert sandbox.log.count(STARTS) == 0


def test_the_read_after_an_applied_bake_names_the_way_out_when_the_ami_is_gone(
    sandbox: Sandbox,
) -> None:
    reply = survey(sandbox)
    gone = external(apply_query(reply))
    assert_one_line_error(gone, ExitCode.AMI_MISSING, "no ready AMI", "terraform apply -replace=")


def test_tfbake_on_missing_fail_keeps_the_apply_from_baking(sandbox: Sandbox) -> None:
    reply = survey(sandbox, base_ami=BASE)
    refused = bake_planned(apply_query(reply), env={"TFBAKE_ON_MISSING": "fail"})
    assert refused.code == ExitCode.AMI_MISSING, refused.stderr
    assert "on_missing is fail" in refused.stderr
    assert sandbox.log.count(STARTS) == 0


def test_bake_planned_takes_only_a_planned_query(sandbox: Sandbox) -> None:
    reply = survey(sandbox)
    legacy = {**apply_query(reply), "protocol": "1"}
    refused = bake_planned(legacy)
    assert_one_line_error(refused, ExitCode.BAD_INPUT)
    unplanned = planned_query()
    assert_one_line_error(bake_planned(unplanned), ExitCode.BAD_INPUT, "planned_fingerprint")


def test_a_module_newer_than_tfbake_is_refused_before_its_new_keys(sandbox: Sandbox) -> None:
    newer = {
        **planned_query(),
        "module_version": "0.3.0",
        "tfbake_versions": ">= 0.3.0, < 0.4.0",
        "runtime": "containerd",  # a key a later module would add
    }
    result = external(newer)
    assert_one_line_error(
        result,
        ExitCode.BAD_INPUT,
        "modules/baked-ami 0.3.0 works with tfbake >= 0.3.0, < 0.4.0",
        f"this is tfbake {__version__}",
        "pipx install 'tfbake>=0.3.0,<0.4.0'",
    )


def test_a_module_older_than_tfbake_supports_is_refused(sandbox: Sandbox) -> None:
    older = {**planned_query(), "module_version": "0.1.5", "tfbake_versions": "< 0.2.0"}
    assert_one_line_error(external(older), ExitCode.BAD_INPUT, "modules/baked-ami 0.1.5")


def test_an_unknown_key_of_a_compatible_module_is_still_named(sandbox: Sandbox) -> None:
    result = external({**planned_query(), "planned_fingerprnt": "x"})
    assert_one_line_error(result, ExitCode.BAD_INPUT, "did you mean 'planned_fingerprint'")


def test_protocol_2_needs_the_module_versions(sandbox: Sandbox) -> None:
    query = {key: v for key, v in planned_query().items() if key != "tfbake_versions"}
    assert_one_line_error(external(query), ExitCode.BAD_INPUT, "tfbake_versions")


def test_an_account_that_only_finds_fails_the_plan_when_the_ami_is_missing(
    sandbox: Sandbox,
) -> None:
    # A workload account: it trusts the image account's AMIs only, so it cannot bake.
    result = external(planned_query(ami_owners=["111111111111"]))
    assert_one_line_error(
        result, ExitCode.AMI_MISSING, "no ready AMI", "this account only finds it", "image account"
    )
    assert sandbox.log.count(STARTS) == 0


def test_an_account_that_only_finds_never_bakes_at_apply(sandbox: Sandbox) -> None:
    reply = survey(sandbox, base_ami=BASE)
    workload = apply_query(reply, ami_owners=json.dumps(["111111111111"]))
    refused = bake_planned(workload)
    assert refused.code == ExitCode.AMI_MISSING, refused.stderr
    assert sandbox.log.count(STARTS) == 0
