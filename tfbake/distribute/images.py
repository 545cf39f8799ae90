"""One AMI as EC2 describes it, and the snapshots behind it."""

from __future__ import annotations

from typing import Any

from tfbake.aws.calls import aws_errors
from tfbake.model.errors import AwsError


def describe_image(ec2: Any, ami_id: str, region: str) -> dict[str, Any]:
    with aws_errors("ec2:DescribeImages", region):
        images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    if not images:
        raise AwsError(f"{ami_id} is gone from {region}", code="InvalidAMIID.NotFound")
    return images[0]
