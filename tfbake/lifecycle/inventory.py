"""tfbake's AMIs in a region, whatever their status, with what still uses each of them and, when
asked, with whom each is shared."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import tagged_images
from tfbake.lifecycle.shares import launch_permissions
from tfbake.lifecycle.usage import Use, scan_usage
from tfbake.model import tags
from tfbake.model.ami import AmiRecord, newest_first


@dataclass(frozen=True)
class Inventory:
    region: str
    amis: tuple[AmiRecord, ...]  # newest first
    usage: Mapping[str, tuple[Use, ...]]  # AMI id -> what uses it (any AMI of the region)
    # AMI id -> who else may launch it (lifecycle/shares.py); empty unless asked for
    shares: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def uses_of(self, ami_id: str) -> tuple[Use, ...]:
        return self.usage.get(ami_id, ())

    def shares_of(self, ami_id: str) -> tuple[str, ...]:
        return self.shares.get(ami_id, ())


def take_inventory(
    aws: AwsContext,
    *,
    name: str | None = None,
    status: str | None = None,
    with_shares: bool = False,
) -> Inventory:
    """tfbake's AMIs (optionally of one name or status) and the region's in-use scan; with
    `with_shares`, each AMI's launch permissions too (one call per AMI)."""
    amis = list_amis(aws, name=name, status=status)
    usage = scan_usage(aws) if amis else {}
    region = aws.effective_region
    shares = (
        {ami.ami_id: launch_permissions(aws, region, ami.ami_id) for ami in amis}
        if with_shares
        else {}
    )
    return Inventory(region, amis, usage, shares)


def list_amis(
    aws: AwsContext,
    *,
    name: str | None = None,
    status: str | None = None,
    fingerprint: str | None = None,
) -> tuple[AmiRecord, ...]:
    """tfbake's own AMIs in the region, newest first, every page of them."""
    values = {} if fingerprint is None else {tags.FINGERPRINT: fingerprint}
    if name is not None:
        values[tags.NAME] = name
    if status is not None:
        values[tags.STATUS] = status
    records = tagged_images(
        aws.client("ec2"),
        ["self"],
        values,
        aws.effective_region,
        tag_keys=(tags.FINGERPRINT,) if fingerprint is None else (),
    )
    return tuple(newest_first(records))
