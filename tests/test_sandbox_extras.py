"""What the sandbox adds to moto besides SSM Automation: base images, instance refreshes."""

from __future__ import annotations

from typing import Any

import pytest

from tfbake.aws import AwsContext
from tfbake.sandbox import Sandbox
from tfbake.sandbox.base_images import PARAMETER_PREFIX


@pytest.fixture
def clients(sandbox: Sandbox) -> tuple[Any, Any, Any]:
    aws = AwsContext()
    return aws.client("ec2"), aws.client("autoscaling"), aws.client("ssm")


def test_amazon_linux_parameters_name_existing_images(clients: tuple[Any, Any, Any]) -> None:
    ec2, _, ssm = clients
    for architecture in ("x86_64", "arm64"):
        ami = ssm.get_parameter(Name=PARAMETER_PREFIX + architecture)["Parameter"]["Value"]
        (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
        assert image["Architecture"] == architecture


def test_instance_refresh_completes_and_is_recorded(clients: tuple[Any, Any, Any]) -> None:
    ec2, autoscaling, _ = clients
    base = AwsContext().client("ssm").get_parameter(Name=PARAMETER_PREFIX + "x86_64")
    ec2.create_launch_template(
        LaunchTemplateName="web",
        LaunchTemplateData={"ImageId": base["Parameter"]["Value"], "InstanceType": "t3.micro"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
    )  # fmt: skip
    started = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Preferences={"MinHealthyPercentage": 90}
    )["InstanceRefreshId"]
    refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")
    (refresh,) = refreshes["InstanceRefreshes"]
    assert (refresh["InstanceRefreshId"], refresh["Status"]) == (started, "Successful")
    other = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName="web", InstanceRefreshIds=["0" * 36]
    )
    assert other["InstanceRefreshes"] == []


def test_reset_forgets_refreshes(sandbox: Sandbox, clients: tuple[Any, Any, Any]) -> None:
    _, autoscaling, _ = clients
    autoscaling.start_instance_refresh(AutoScalingGroupName="gone")
    sandbox.reset()
    assert (
        autoscaling.describe_instance_refreshes(AutoScalingGroupName="gone")["InstanceRefreshes"]
        == []
    )


def test_create_image_tags_the_snapshots_as_asked(clients: tuple[Any, Any, Any]) -> None:
    ec2, _, ssm = clients
    base = ssm.get_parameter(Name=PARAMETER_PREFIX + "x86_64")["Parameter"]["Value"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]
    image = ec2.create_image(
        InstanceId=instance["InstanceId"],
        Name="tagged-at-birth",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "kind", "Value": "image"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "kind", "Value": "snapshot"}]},
        ],
    )["ImageId"]
    (described,) = ec2.describe_images(ImageIds=[image])["Images"]
    assert described["Tags"] == [{"Key": "kind", "Value": "image"}]
    snapshot_id = described["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    (snapshot,) = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["Tags"] == [{"Key": "kind", "Value": "snapshot"}]
