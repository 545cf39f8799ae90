"""With whom an AMI is shared: its launch permissions, read by its owner."""

from __future__ import annotations

from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code
from tfbake.model.errors import AwsError

_GONE = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})


def launch_permissions(aws: AwsContext, region: str, ami_id: str) -> tuple[str, ...]:
    """Who may launch `ami_id` besides its owner, as `tfbake list` shows them: account ids,
    `organization/<id>`, `ou/<id>`, `public`. Empty for an AMI already gone."""
    ec2: Any = aws.client("ec2", region)
    try:
        with aws_errors(f"ec2:DescribeImageAttribute {ami_id}", region):
            granted = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
    except AwsError as err:
        if error_code(err) in _GONE:
            return ()
        raise
    return tuple(_shown(permission) for permission in granted.get("LaunchPermissions", []))


def _shown(permission: dict[str, str]) -> str:
    if permission.get("Group") == "all":
        return "public"
    if "UserId" in permission:
        return permission["UserId"]
    # arn:aws:organizations::<management>:organization/o-x, ...:ou/o-x/ou-y: the last part names it.
    if "OrganizationArn" in permission:
        return "organization/" + permission["OrganizationArn"].rsplit("/", 1)[-1]
    if "OrganizationalUnitArn" in permission:
        return "ou/" + permission["OrganizationalUnitArn"].rsplit("/", 1)[-1]
    return "unknown"
