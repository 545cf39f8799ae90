"""Launch permissions for other accounts, organizations and OUs, and the snapshots' too.

Before the first permission, the AMI's description is made to publish it ready, with its full
fingerprint: that is all a workload account can see of it (model/publication.py), and only a
ready AMI reaches this step. Idempotent: what an AMI already has is read first and only what is
missing is changed, so re-running ensure repairs a share without touching what is in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfbake.aws.calls import aws_errors
from tfbake.model.errors import BadInput
from tfbake.model.image_set import Distribution, Share, Volume
from tfbake.model.publication import published_description


def check_shareable(
    distribution: Distribution, volume: Volume, copy_regions: Sequence[str]
) -> None:
    """Refuse, before any bake, a share AWS would refuse: the AWS-managed EBS key's AMIs.

    Spec validation already refuses an encrypted home AMI without a key; a copy in another
    region is encrypted with that region's AWS-managed key unless region_kms_keys names one.
    """
    if not distribution.share or not volume.encrypted:
        return
    keyless = [region for region in copy_regions if not distribution.kms_key_for(region)]
    if keyless:
        raise BadInput(
            f"share: the copies in {', '.join(keyless)} would be encrypted with the AWS-managed "
            "EBS key of their region, which AWS cannot share; set region_kms_keys for them to "
            "customer-managed keys and grant the accounts kms:Decrypt/CreateGrant"
        )


def launch_permissions(share: Share) -> list[dict[str, str]]:
    return (
        [{"UserId": account} for account in share.accounts]
        + [{"OrganizationArn": arn} for arn in share.organizations]
        + [{"OrganizationalUnitArn": arn} for arn in share.organizational_units]
    )


def publish_ready(ec2: Any, image: dict[str, Any], fingerprint: str, region: str) -> None:
    """Write the ready description on a ready AMI (`image` as DescribeImages shows it)."""
    description = published_description(fingerprint)
    if image.get("Description") != description:
        with aws_errors("ec2:ModifyImageAttribute", region):
            ec2.modify_image_attribute(ImageId=image["ImageId"], Description={"Value": description})


def share_image(ec2: Any, ami_id: str, snapshots: Sequence[str], share: Share, region: str) -> None:
    """Grant what `share` names on the AMI, and create-volume permission on its snapshots."""
    with aws_errors("ec2:DescribeImageAttribute", region):
        granted = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
    current = granted.get("LaunchPermissions", [])
    missing = [p for p in launch_permissions(share) if p not in current]
    if missing:
        with aws_errors("ec2:ModifyImageAttribute", region):
            ec2.modify_image_attribute(ImageId=ami_id, LaunchPermission={"Add": missing})
    # Snapshots take account ids only: organizations reach them through the AMI.
    if not share.accounts:
        return
    for snapshot_id in snapshots:
        with aws_errors("ec2:DescribeSnapshotAttribute", region):
            attribute = ec2.describe_snapshot_attribute(
                SnapshotId=snapshot_id, Attribute="createVolumePermission"
            )
        have = {p.get("UserId") for p in attribute.get("CreateVolumePermissions", [])}
        accounts = [account for account in share.accounts if account not in have]
        if accounts:
            with aws_errors("ec2:ModifySnapshotAttribute", region):
                ec2.modify_snapshot_attribute(
                    SnapshotId=snapshot_id,
                    Attribute="createVolumePermission",
                    OperationType="add",
                    UserIds=accounts,
                )
