"""Base images for the sandbox: what a bake starts from.

moto's SSM already answers Amazon Linux 2023's public parameters, but with default AMIs turned
off (they make start-up and every DescribeImages slow) the AMIs they name do not exist. Register
exactly those, owned by "amazon", so `base_ami = "ssm:/aws/service/ami-amazon-linux-latest/..."`
resolves and launches in the sandbox as it does in AWS.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfbake.sandbox.machines.roots import BuiltRoot

ACCOUNT = "123456789012"
AMAZON_OWNER = "137112412989"
DEBIAN_OWNER = "136693071363"  # the account Debian publishes its cloud images from
PARAMETER_PREFIX = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"
ARCHITECTURES = ("x86_64", "arm64")


def seed_base_images(region: str) -> dict[str, str]:
    """Register one Amazon Linux 2023 stand-in per architecture; returns architecture -> id."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ssm.models import ssm_backends

    ec2 = ec2_backends[ACCOUNT][region]
    ssm = ssm_backends[ACCOUNT][region]
    seeded = {}
    for architecture in ARCHITECTURES:
        parameter = ssm.get_parameter(PARAMETER_PREFIX + architecture)
        ami_id = parameter.value if parameter else f"ami-0sandbox{architecture[:3]}0000000"
        if ami_id not in ec2.amis:
            ec2.amis[ami_id] = Ami(
                ec2,
                ami_id,
                name=f"al2023-ami-2023.0.0-kernel-6.1-{architecture} (tfbake sandbox)",
                description="Amazon Linux 2023 stand-in served by the tfbake sandbox",
                owner_id=AMAZON_OWNER,
                owner_alias="amazon",
                public=True,
                architecture=architecture,
                virtualization_type="hvm",
                root_device_type="ebs",
                root_device_name="/dev/xvda",
                creation_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
                region_name=region,
            )
        seeded[architecture] = ami_id
    return seeded


def debian_base_ami(variant: str) -> dict[str, object]:
    """A spec's `base_ami` that finds the seeded root of `variant` (real mode), newest first."""
    from tfbake.sandbox.machines.roots import VARIANTS

    return {"owners": [DEBIAN_OWNER], "name": f"{VARIANTS[variant].ami_name_prefix}-*"}


def seed_debian_images(region: str, roots: list[BuiltRoot]) -> dict[str, BuiltRoot]:
    """Register one public AMI per real root (real mode); returns AMI id -> root.

    Named as Debian names its own AMIs, so `base_ami = {owners = ["136693071363"], name =
    "debian-12-amd64-*"}` finds the variant without Docker; the variant with Docker is named
    apart. The id follows from the root's build key: the same root, the same AMI.
    """
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    ec2 = ec2_backends[ACCOUNT][region]
    seeded = {}
    for root in roots:
        ami_id = f"ami-{root.key[:17]}"
        if ami_id not in ec2.amis:
            ec2.amis[ami_id] = Ami(
                ec2,
                ami_id,
                name=root.ami_name,
                description=f"Debian 12 (bookworm), {root.variant.name} (tfbake sandbox root)",
                owner_id=DEBIAN_OWNER,
                public=True,
                architecture="x86_64",
                virtualization_type="hvm",
                root_device_type="ebs",
                root_device_name="/dev/xvda",
                creation_date=datetime.strptime(root.built_at, "%Y%m%d").replace(
                    tzinfo=timezone.utc
                ),
                region_name=region,
            )
        seeded[ami_id] = root
    return seeded
