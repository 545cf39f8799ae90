"""examples/two-accounts through real Terraform: the image account's root bakes and shares, the
workload account's root, run with that account's credentials, finds the AMI and launches it
from a launch template, with bake-infra giving it only the lookup policy."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.accounts import (
    SANDBOX_ACCOUNT,
    WORKLOAD_ACCOUNT,
    account_client,
    account_environment,
)
from tests.support.terraform import Root, stage, tfbake_command
from tfbake.sandbox import Sandbox

EXAMPLE = "examples/two-accounts"


@contextmanager
def credentials_of(account_id: str) -> Iterator[None]:
    """The process environment of a Terraform run in `account_id` (Terraform and the tfbake it
    starts read the same variables)."""
    environment = account_environment(account_id)
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_the_workload_account_launches_the_image_accounts_ami(
    sandbox_server: Sandbox, terraform_bin: str, tmp_path: Path
) -> None:
    sandbox_server.reset()  # a fresh account, with the managed policies bake-infra attaches
    example = stage(tmp_path, EXAMPLE)
    image, workload = (
        Root(example / "image", terraform_bin),
        Root(example / "workload", terraform_bin),
    )
    image.init().check()
    image.apply(
        {"workload_account_ids": [WORKLOAD_ACCOUNT], "tfbake_command": tfbake_command()}
    ).check()
    baked = image.outputs()
    assert baked["account_id"] == SANDBOX_ACCOUNT

    with credentials_of(WORKLOAD_ACCOUNT):
        (workload.directory / "terraform.tfvars.json").write_text(
            json.dumps(
                {
                    "image_account_id": baked["account_id"],
                    "image_kms_key_arn": baked["kms_key_arn"],
                    "tfbake_command": tfbake_command(),
                }
            )
        )
        workload.init().check()
        # As a pipeline runs it: the plan finds the AMI, the apply of the saved plan uses it.
        sandbox_server.log.clear()
        plan = workload.command("plan", "-input=false", "-no-color", "-out=tfplan").check()
        assert baked["ami_id"] in plan.stdout
        workload.command("apply", "-input=false", "-no-color", "tfplan").check()
        assert sandbox_server.log.count("StartAutomationExecution") == 0
        found = workload.outputs()
        state = subprocess.run(
            [terraform_bin, "state", "list"],
            cwd=workload.directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    assert found["ami_id"] == baked["ami_id"]
    ec2 = account_client("ec2", WORKLOAD_ACCOUNT)
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=found["launch_template_id"], Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"]["ImageId"] == baked["ami_id"]
    ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": found["launch_template_id"]}, MinCount=1, MaxCount=1
    )
    managed = [address for address in state if address.startswith("module.bake_infra.aws_")]
    assert managed == ["module.bake_infra.aws_iam_policy.lookup"]
    iam = account_client("iam", WORKLOAD_ACCOUNT)
    policy = iam.get_policy(PolicyArn=found["lookup_policy_arn"])["Policy"]
    document = iam.get_policy_version(
        PolicyArn=found["lookup_policy_arn"], VersionId=policy["DefaultVersionId"]
    )["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert [statement["Action"] for statement in document["Statement"]] == ["ec2:DescribeImages"]
