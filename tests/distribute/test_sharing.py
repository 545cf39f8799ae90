"""Sharing the baked AMI with accounts, organizations and OUs; customer-managed KMS keys."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakes import BASE, no_progress, plan_for
from tests.support.cli import assert_one_line_error, external, run_tfbake
from tests.support.specs import query, spec_data, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.ensure import ensure
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox
from tfbake.spec.mapping import image_set_from_mapping

ACCOUNTS = ["111122223333", "444455556666"]
ORGANIZATION = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
HOME_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EU_KEY = "arn:aws:kms:eu-west-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab"
SHARE = {"accounts": ACCOUNTS, "organizations": [ORGANIZATION], "organizational_units": [OU]}
SHARED = {
    "share": SHARE,
    "volume": {"kms_key_id": HOME_KEY},
    "regions": ["eu-west-1"],
    "region_kms_keys": {"eu-west-1": EU_KEY},
}


def launch_permissions(aws: AwsContext, region: str, ami_id: str) -> list[dict[str, str]]:
    ec2 = aws.client("ec2", region)
    answer = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
    return answer["LaunchPermissions"]


def snapshot_accounts(aws: AwsContext, region: str, ami_id: str) -> list[list[str]]:
    ec2 = aws.client("ec2", region)
    image = ec2.describe_images(ImageIds=[ami_id])["Images"][0]
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]]
    return [
        sorted(
            p["UserId"]
            for p in ec2.describe_snapshot_attribute(
                SnapshotId=snapshot, Attribute="createVolumePermission"
            )["CreateVolumePermissions"]
        )
        for snapshot in snapshots
    ]


EXPECTED_PERMISSIONS = [
    {"UserId": ACCOUNTS[0]},
    {"UserId": ACCOUNTS[1]},
    {"OrganizationArn": ORGANIZATION},
    {"OrganizationalUnitArn": OU},
]


def test_sharing_grants_launch_and_create_volume_permissions(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    result = ensure(plan_for(aws, **SHARED), aws, on_progress=no_progress)
    ids = {"us-east-1": result.ami_id, **{c.region: c.ami_id for c in result.copies}}
    assert sorted(ids) == ["eu-west-1", "us-east-1"]
    for region, ami_id in ids.items():
        assert launch_permissions(aws, region, ami_id) == EXPECTED_PERMISSIONS
        assert snapshot_accounts(aws, region, ami_id) == [ACCOUNTS]


def test_sharing_again_adds_only_what_is_missing(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws, **SHARED)
    result = ensure(plan, aws, on_progress=no_progress)
    sandbox.log.clear()
    ensure(plan, aws, on_progress=no_progress)
    assert sandbox.log.count("ModifyImageAttribute") == 0
    assert sandbox.log.count("ModifySnapshotAttribute") == 0

    aws.client("ec2").modify_image_attribute(
        ImageId=result.ami_id, LaunchPermission={"Remove": [{"UserId": ACCOUNTS[1]}]}
    )
    sandbox.log.clear()
    ensure(plan, aws, on_progress=no_progress)
    assert sandbox.log.count("ModifyImageAttribute") == 1
    assert sandbox.log.count("StartAutomationExecution") == 0
    permissions = launch_permissions(aws, "us-east-1", result.ami_id)
    assert sorted(map(json.dumps, permissions)) == sorted(map(json.dumps, EXPECTED_PERMISSIONS))


def test_an_unencrypted_ami_is_shared_without_a_key(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws, share={"accounts": ACCOUNTS[:1]}, volume={"encrypted": False})
    result = ensure(plan, aws, on_progress=no_progress)
    assert launch_permissions(aws, "us-east-1", result.ami_id) == [{"UserId": ACCOUNTS[0]}]


def test_the_aws_managed_key_is_refused_before_any_bake(tmp_path: Path, sandbox: Sandbox) -> None:
    # volume.encrypted defaults to true, and without kms_key_id EC2 uses the AWS-managed key.
    spec = write_spec(tmp_path, base_ami=BASE, share={"accounts": ACCOUNTS})
    result = run_tfbake("ensure", str(spec))
    assert_one_line_error(
        result,
        ExitCode.BAD_INPUT,
        "share: AWS cannot share an AMI encrypted with the AWS-managed EBS key",
        "set volume.kms_key_id to a customer-managed key and grant the accounts "
        "kms:Decrypt/CreateGrant",
    )
    reply = external(query(base_ami=BASE, share={"accounts": ACCOUNTS}))
    assert_one_line_error(reply, ExitCode.BAD_INPUT, "AWS-managed EBS key")
    assert sandbox.log.count("StartAutomationExecution") == 0


def test_a_region_copy_without_a_customer_key_is_refused_before_any_bake(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    changes = {**SHARED, "regions": ["eu-west-1", "us-west-2"]}
    result = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE, **changes)))
    assert_one_line_error(
        result, ExitCode.BAD_INPUT, "copies in us-west-2 would be encrypted with the AWS-managed"
    )
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert sandbox.log.count("CopyImage") == 0


@pytest.mark.parametrize(
    ("share", "fragment"),
    [
        ({"accounts": ["12345"]}, "'12345' is not a 12-digit account id"),
        ({"organizations": ["o-abcdefghij"]}, "is not an organization ARN"),
        ({"organizational_units": [ORGANIZATION]}, "is not an organizational unit ARN"),
        ({"acounts": ACCOUNTS}, "did you mean 'accounts'"),
    ],
    ids=["account", "organization", "ou", "typo"],
)
def test_invalid_share_settings_are_refused(share: dict[str, Any], fragment: str) -> None:
    from tfbake.model.errors import SpecError

    with pytest.raises(SpecError) as caught:
        image_set_from_mapping(spec_data(share=share, volume={"kms_key_id": HOME_KEY}))
    assert fragment in caught.value.message


def test_a_customer_managed_key_reaches_the_builders_volume(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    """The key is on the volume the runbook's RunInstances made, and in the step's inputs.

    moto does not carry a volume's encryption into CreateImage's snapshot (every AMI snapshot
    it makes is unencrypted), so the AMI itself cannot show the key in the sandbox: what can be
    observed is the builder's root volume while it runs, and what the runbook asked EC2 for.
    """
    plan = plan_for(aws, volume={"kms_key_id": HOME_KEY})
    sandbox.delay_step("RunRecipe", 2)
    baking = threading.Thread(target=ensure, args=(plan, aws), kwargs={"on_progress": no_progress})
    baking.start()
    ec2 = aws.client("ec2")
    volumes: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not volumes and time.monotonic() < deadline:
        volumes = ec2.describe_volumes(
            Filters=[{"Name": "tag:tfbake:role", "Values": ["builder"]}]
        )["Volumes"]
        time.sleep(0.1)
    baking.join(timeout=60)
    assert [(v["Encrypted"], v["KmsKeyId"]) for v in volumes] == [(True, HOME_KEY)]

    ssm = aws.client("ssm")
    (execution,) = ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    steps = ssm.get_automation_execution(AutomationExecutionId=execution["AutomationExecutionId"])
    launched = {
        s["StepName"]: s["Inputs"]
        for s in steps["AutomationExecution"]["StepExecutions"]
        if s["StepName"].startswith("LaunchBuilder")
    }
    assert list(launched) == ["LaunchBuilderWithKmsKey"]
    (mapping,) = json.loads(launched["LaunchBuilderWithKmsKey"]["BlockDeviceMappings"])
    assert mapping["Ebs"]["KmsKeyId"] == HOME_KEY
    assert str(mapping["Ebs"]["Encrypted"]).lower() == "true"
