"""Seed the sandbox account with AMIs the way a finished (or broken) bake leaves them."""

from __future__ import annotations

import itertools
from typing import Any

from tfbake.model import tags

_names = itertools.count()


def seed_ami(
    ec2: Any, fingerprint: str, *, status: str | None = tags.STATUS_READY, name: str = "web"
) -> str:
    """Create an AMI tagged with a fingerprint (and a status, unless None) and return its id."""
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    ami_id = ec2.create_image(
        InstanceId=instance["InstanceId"], Name=f"tfbake-{name}-{fingerprint[:16]}-{next(_names)}"
    )["ImageId"]
    image_tags = [
        {"Key": tags.FINGERPRINT, "Value": fingerprint},
        {"Key": tags.NAME, "Value": name},
    ]
    if status is not None:
        image_tags.append({"Key": tags.STATUS, "Value": status})
    ec2.create_tags(Resources=[ami_id], Tags=image_tags)
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    return ami_id
