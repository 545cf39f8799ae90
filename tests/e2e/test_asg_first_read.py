"""The asg module's first-read lever: the root volume's EBS initialization rate, through real
Terraform against the sandbox."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.terraform import Root, stage
from tfbake.sandbox import Sandbox


@pytest.fixture(scope="module")
def root(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Root:
    tree = tmp_path_factory.mktemp("first-read")
    root = Root(stage(tree, "tests/e2e/launch_template"), terraform_bin)
    root.init().check()
    return root


def ec2(sandbox: Sandbox) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("ec2", endpoint_url=sandbox.url, region_name=sandbox.region, config=config)


def register_ami(sandbox: Sandbox) -> tuple[str, str]:
    """A new AMI's id and its root device name, as DescribeImages reports it."""
    client = ec2(sandbox)
    image_id = client.register_image(Name="first-read-base", Architecture="x86_64")["ImageId"]
    (image,) = client.describe_images(ImageIds=[image_id])["Images"]
    return str(image_id), str(image["RootDeviceName"])


def root_mappings(sandbox: Sandbox, template_id: str) -> list[dict[str, Any]]:
    versions = ec2(sandbox).describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return list(versions[0]["LaunchTemplateData"].get("BlockDeviceMappings", []))


def test_launch_template_sets_the_root_volumes_initialization_rate(
    sandbox: Sandbox, root: Root
) -> None:
    ami_id, root_device = register_ami(sandbox)
    variables = {"ami_id": ami_id, "volume_initialization_rate": 200}
    root.apply(variables).check()
    mappings = root_mappings(sandbox, root.outputs()["launch_template_id"])
    # The AMI's own root device: any other name would add a second, empty volume.
    assert [m["DeviceName"] for m in mappings] == [root_device]
    assert mappings[0]["Ebs"]["VolumeInitializationRate"] == 200
    # Read back as set: the next plan has nothing to change.
    assert root.plan(variables).code == 0
    root.destroy(variables).check()


@pytest.mark.parametrize("rate", [99, 301, 150.5])
def test_rate_outside_ebs_range_fails_at_plan_naming_the_variable(
    sandbox: Sandbox, root: Root, rate: float
) -> None:
    plan = root.plan({"ami_id": "ami-12345678", "volume_initialization_rate": rate})
    assert plan.code == 1
    assert "var.volume_initialization_rate" in plan.stderr
    assert "from 100 to 300" in " ".join(plan.stderr.split())
    assert sandbox.log.count("CreateLaunchTemplate") == 0
