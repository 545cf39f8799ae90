"""Shape the sandbox account for lifecycle tests: dated AMIs, their snapshots, who uses them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.support.amis import seed_ami
from tfbake.model import tags

ACCOUNT = "123456789012"
REGION = "us-east-1"


def ec2_backend() -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT][REGION]


def dated_ami(
    ec2: Any,
    fingerprint: str,
    *,
    days_old: float,
    name: str = "web",
    status: str | None = tags.STATUS_READY,
) -> str:
    """A tfbake AMI created `days_old` days ago (moto stamps the present; set it server-side)."""
    ami_id = seed_ami(ec2, fingerprint, status=status, name=name)
    set_created(ami_id, datetime.now(timezone.utc) - timedelta(days=days_old))
    return ami_id


def set_created(ami_id: str, when: datetime) -> None:
    ec2_backend().amis[ami_id].creation_date = when


def snapshots_of(ec2: Any, ami_id: str) -> list[str]:
    image = ec2.describe_images(ImageIds=[ami_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def existing_snapshots(ec2: Any, snapshot_ids: list[str]) -> set[str]:
    """Which of these snapshots exist, asked one by one (a missing id fails the whole call)."""
    from botocore.exceptions import ClientError

    found = set()
    for snapshot_id in snapshot_ids:
        try:
            ec2.describe_snapshots(SnapshotIds=[snapshot_id])
        except ClientError as err:
            assert err.response["Error"]["Code"] == "InvalidSnapshot.NotFound", err
            continue
        found.add(snapshot_id)
    return found


def existing_amis(ec2: Any, ami_ids: list[str]) -> set[str]:
    images = ec2.describe_images(Owners=["self"])["Images"]
    return {image["ImageId"] for image in images} & set(ami_ids)


def pin_snapshot_to(snapshot_id: str, ami_id: str) -> None:
    """Make the snapshot back `ami_id` too, as a register-image from it would in AWS."""
    ec2_backend().snapshots[snapshot_id].from_ami = ami_id


def launch_template(ec2: Any, name: str, images: list[str], default_version: int) -> str:
    """A launch template with one version per image (version N uses images[N-1])."""
    template_id = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": images[0]}
    )["LaunchTemplate"]["LaunchTemplateId"]
    for image in images[1:]:
        ec2.create_launch_template_version(
            LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": image}
        )
    ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(default_version))
    return template_id


def instance_from(ec2: Any, ami_id: str, state: str) -> str:
    instance_id = ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance_id])
    elif state == "terminated":
        ec2.terminate_instances(InstanceIds=[instance_id])
    return instance_id
