"""tfbake's AMIs in a region, whatever their status, with what still uses each of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import tagged_images
from tfbake.lifecycle.usage import Use, scan_usage
from tfbake.model import tags
from tfbake.model.ami import AmiRecord, newest_first


@dataclass(frozen=True)
class Inventory:
    region: str
    amis: tuple[AmiRecord, ...]  # newest first
    usage: Mapping[str, tuple[Use, ...]]  # AMI id -> what uses it (any AMI of the region)

    def uses_of(self, ami_id: str) -> tuple[Use, ...]:
        return self.usage.get(ami_id, ())


def take_inventory(
    aws: AwsContext, *, name: str | None = None, status: str | None = None
) -> Inventory:
    """tfbake's AMIs (optionally of one name or status) and the region's in-use scan."""
    amis = list_amis(aws, name=name, status=status)
    usage = scan_usage(aws) if amis else {}
    return Inventory(aws.effective_region, amis, usage)


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
