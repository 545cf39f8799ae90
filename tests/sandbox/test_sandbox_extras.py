"""What the sandbox adds to moto besides SSM Automation: base images, instance refreshes."""

from __future__ import annotations

from typing import Any

import pytest

from tfbake.aws.calls import AwsContext
from tfbake.sandbox import Sandbox
from tfbake.sandbox.moto_patches.base_images import PARAMETER_PREFIX


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


def _builder_image(ec2: Any, ssm: Any, name: str) -> tuple[str, str]:
    """An image made from a fresh instance: (instance id, image id)."""
    base = ssm.get_parameter(Name=PARAMETER_PREFIX + "x86_64")["Parameter"]["Value"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]
    image = ec2.create_image(InstanceId=instance["InstanceId"], Name=name)["ImageId"]
    return instance["InstanceId"], image


def test_deregistering_with_associated_snapshots_deletes_them(
    clients: tuple[Any, Any, Any],
) -> None:
    ec2, _, ssm = clients
    _, image = _builder_image(ec2, ssm, "short-lived")
    (described,) = ec2.describe_images(ImageIds=[image])["Images"]
    snapshot_id = described["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.deregister_image(ImageId=image, DeleteAssociatedSnapshots=True)
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidSnapshot\.NotFound"):
        ec2.describe_snapshots(SnapshotIds=[snapshot_id])


def test_racing_image_creations_with_one_name_create_one(
    clients: tuple[Any, Any, Any],
) -> None:
    import threading

    ec2, _, ssm = clients
    base = ssm.get_parameter(Name=PARAMETER_PREFIX + "x86_64")["Parameter"]["Value"]
    instances = ec2.run_instances(ImageId=base, MinCount=8, MaxCount=8)["Instances"]
    for name in ("one-name", "two-name", "three-name", "four-name"):
        outcomes: list[str] = []
        start = threading.Barrier(len(instances))
        threads = [
            threading.Thread(target=_create_image, args=(i["InstanceId"], name, start, outcomes))
            for i in instances
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["InvalidAMIName.Duplicate"] * 7 + ["created"]
        named = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])
        assert len(named["Images"]) == 1


def _create_image(instance_id: str, name: str, start: Any, outcomes: list[str]) -> None:
    client = AwsContext().client("ec2")
    start.wait()
    try:
        client.create_image(InstanceId=instance_id, Name=name)
        outcomes.append("created")
    except client.exceptions.ClientError as err:
        outcomes.append(err.response["Error"]["Code"])


def test_launch_template_versions_are_paged_not_cut_off(clients: tuple[Any, Any, Any]) -> None:
    ec2, _, _ = clients
    template = ec2.create_launch_template(
        LaunchTemplateName="many", LaunchTemplateData={"ImageId": "ami-00000000000000001"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    for n in range(2, 41):
        ec2.create_launch_template_version(
            LaunchTemplateId=template, LaunchTemplateData={"ImageId": f"ami-{n:017x}"}
        )
    first = ec2.describe_launch_template_versions(LaunchTemplateId=template, MaxResults=10)
    assert len(first["LaunchTemplateVersions"]) == 10
    assert first["NextToken"]
    pages = ec2.get_paginator("describe_launch_template_versions").paginate(
        LaunchTemplateId=template
    )
    numbers = [v["VersionNumber"] for page in pages for v in page["LaunchTemplateVersions"]]
    assert sorted(numbers) == list(range(1, 41))


@pytest.mark.parametrize(
    ("operation", "key"),
    [
        ("describe_launch_configurations", "LaunchConfigurations"),
        ("describe_auto_scaling_groups", "AutoScalingGroups"),
    ],
)
def test_autoscaling_listings_are_paged(
    clients: tuple[Any, Any, Any], operation: str, key: str
) -> None:
    _, autoscaling, ssm = clients
    base = ssm.get_parameter(Name=PARAMETER_PREFIX + "x86_64")["Parameter"]["Value"]
    for n in range(120):
        autoscaling.create_launch_configuration(
            LaunchConfigurationName=f"lc-{n:03d}", ImageId=base, InstanceType="t3.micro"
        )
        if key == "AutoScalingGroups":
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=f"group-{n:03d}", LaunchConfigurationName=f"lc-{n:03d}",
                MinSize=0, MaxSize=0, AvailabilityZones=["us-east-1a"],
            )  # fmt: skip
    first = getattr(autoscaling, operation)(MaxRecords=100)
    assert len(first[key]) == 100 and first["NextToken"]
    pages = autoscaling.get_paginator(operation).paginate()
    assert len([item for page in pages for item in page[key]]) == 120


def test_run_instances_gives_its_instance_profile_to_every_instance(
    sandbox: Sandbox, clients: tuple[Any, Any, Any]
) -> None:
    ec2, _, _ = clients
    AwsContext().client("iam").create_instance_profile(InstanceProfileName="every-one")
    base = AwsContext().client("ssm").get_parameter(Name=PARAMETER_PREFIX + "x86_64")
    launched = ec2.run_instances(
        ImageId=base["Parameter"]["Value"],
        MinCount=3,
        MaxCount=3,
        IamInstanceProfile={"Name": "every-one"},
    )["Instances"]
    ids = [instance["InstanceId"] for instance in launched]
    described = ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"]
    profiles = [instance.get("IamInstanceProfile", {}).get("Arn", "") for instance in described]
    assert len(profiles) == 3 and all(arn.endswith("/every-one") for arn in profiles), profiles
    associations = ec2.describe_iam_instance_profile_associations()
    associated = {a["InstanceId"] for a in associations["IamInstanceProfileAssociations"]}
    assert associated >= set(ids)
