"""An image account bakes and shares; a workload account that trusts it finds and launches the
AMI without seeing its tags, never takes a look-alike of another account, and stops finding it
once it is invalidated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts import (
    OTHER_ACCOUNT,
    SANDBOX_ACCOUNT,
    WORKLOAD_ACCOUNT,
    account_client,
    account_environment,
)
from tests.support.bakes import BASE
from tests.support.cli import Completed, run_tfbake
from tests.support.specs import query, write_spec
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

# The sandbox's own account bakes: its SSM Automation runs there.
IMAGE_ACCOUNT = SANDBOX_ACCOUNT
# A customer-managed key: AWS shares no AMI encrypted with the AWS-managed one. The volume is a
# fingerprint input, so both accounts' specs name it.
KEY = f"arn:aws:kms:us-east-1:{IMAGE_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VOLUME = {"volume": {"kms_key_id": KEY}, "base_ami": BASE}
TRUSTING_IMAGES = {"ami_owners": [IMAGE_ACCOUNT], **VOLUME}


def as_workload(*args: str, stdin: str = "") -> Completed:
    return run_tfbake(*args, stdin=stdin, env=account_environment(WORKLOAD_ACCOUNT))


def bake_and_share(directory: Path) -> dict[str, Any]:
    image_spec = write_spec(directory, share={"accounts": [WORKLOAD_ACCOUNT]}, **VOLUME)
    baked = run_tfbake("--json", "ensure", str(image_spec))
    assert baked.code == 0, baked.stderr
    result: dict[str, Any] = json.loads(baked.stdout)
    return result


def copy_onto_own_ami(ami_id: str, account: str, share_with: str) -> str:
    """Another account's AMI with the image account's name, description and tags."""
    image = account_client("ec2", IMAGE_ACCOUNT).describe_images(ImageIds=[ami_id])["Images"][0]
    ec2 = account_client("ec2", account)
    look_alike: str = ec2.register_image(Name=image["Name"], Description=image["Description"])[
        "ImageId"
    ]
    ec2.create_tags(Resources=[look_alike], Tags=image["Tags"])
    ec2.modify_image_attribute(
        ImageId=look_alike, LaunchPermission={"Add": [{"UserId": share_with}]}
    )
    return look_alike


@pytest.fixture
def workload_spec(tmp_path: Path) -> Path:
    directory = tmp_path / "workload"
    directory.mkdir()
    return write_spec(directory, **TRUSTING_IMAGES)


def test_a_workload_account_finds_launches_and_loses_the_image_accounts_ami(
    tmp_path: Path, workload_spec: Path, sandbox: Sandbox
) -> None:
    baked = bake_and_share(tmp_path)
    ami_id = baked["ami_id"]
    look_alike = copy_onto_own_ami(ami_id, OTHER_ACCOUNT, share_with=WORKLOAD_ACCOUNT)

    checked = as_workload("check", str(workload_spec))
    assert (checked.code, checked.stdout.strip()) == (0, ami_id), checked.stderr
    sandbox.log.clear()
    answer = as_workload("external", stdin=json.dumps(query(**TRUSTING_IMAGES)))
    assert answer.code == 0, answer.stderr
    # Nothing written: the image account's gc would never see a tag put here.
    assert "CreateTags" not in sandbox.log.actions()
    assert answer.external_result()["ami_id"] == ami_id
    assert answer.external_result()["fingerprint"] == baked["fingerprint"]

    workload_ec2 = account_client("ec2", WORKLOAD_ACCOUNT)
    (seen,) = workload_ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert seen["OwnerId"] == IMAGE_ACCOUNT
    assert seen.get("Tags", []) == []
    (instance,) = workload_ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1)["Instances"]
    assert instance["ImageId"] == ami_id

    invalidated = run_tfbake("invalidate", baked["fingerprint"])
    assert invalidated.code == 0, invalidated.stderr

    after = as_workload("--json", "check", str(workload_spec))
    assert after.code == ExitCode.AMI_MISSING, after.stdout
    assert json.loads(after.stdout)["ami_id"] in ("", None)
    assert look_alike not in after.stdout
    refused = as_workload("external", stdin=json.dumps(query(on_missing="fail", **TRUSTING_IMAGES)))
    assert refused.code == ExitCode.AMI_MISSING
    # Launching what already runs it stays possible: invalidation withdraws it from lookups.
    workload_ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1)


def test_a_look_alike_of_an_untrusted_account_is_never_returned(
    tmp_path: Path, workload_spec: Path, sandbox: Sandbox
) -> None:
    baked = bake_and_share(tmp_path)
    copy_onto_own_ami(baked["ami_id"], OTHER_ACCOUNT, share_with=WORKLOAD_ACCOUNT)
    account_client("ec2", IMAGE_ACCOUNT).deregister_image(ImageId=baked["ami_id"])

    checked = as_workload("check", str(workload_spec))

    assert checked.code == ExitCode.AMI_MISSING, checked.stdout


def test_an_ami_the_image_account_did_not_share_is_not_found(
    tmp_path: Path, workload_spec: Path, sandbox: Sandbox
) -> None:
    baked = run_tfbake("ensure", str(write_spec(tmp_path, **VOLUME)))
    assert baked.code == 0, baked.stderr

    checked = as_workload("check", str(workload_spec))

    assert checked.code == ExitCode.AMI_MISSING, checked.stdout


def test_a_shared_ami_that_was_never_published_ready_is_not_taken(
    tmp_path: Path, workload_spec: Path, sandbox: Sandbox
) -> None:
    """Shared by hand, outside tfbake: its description does not say ready, so it is not used."""
    baked = run_tfbake("--json", "ensure", str(write_spec(tmp_path, **VOLUME)))
    ami_id = json.loads(baked.stdout)["ami_id"]
    account_client("ec2", IMAGE_ACCOUNT).modify_image_attribute(
        ImageId=ami_id, LaunchPermission={"Add": [{"UserId": WORKLOAD_ACCOUNT}]}
    )

    checked = as_workload("--json", "check", str(workload_spec))

    assert checked.code == ExitCode.AMI_MISSING, checked.stdout
    assert json.loads(checked.stdout)["status"] == "not-ready"
