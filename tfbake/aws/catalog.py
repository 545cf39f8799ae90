"""The AMI catalog: tfbake's AMIs found by their tags.

One DescribeImages call per lookup. It filters on the fingerprint only, not on the status, so the
same call also reports a matching AMI that exists but is not usable (pending, failed, revoked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfbake.aws.calls import aws_errors, paginate
from tfbake.model import tags

# None: EC2 answers in one page when no page size is asked for, which keeps the no-op path to a
# single call. Tests set it to prove every page is followed.
PAGE_SIZE: int | None = None


@dataclass(frozen=True)
class AmiRecord:
    ami_id: str
    name: str
    state: str  # EC2's: pending, available, failed, ...
    status: str  # tfbake:status tag, "" when absent
    created: str
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def usable(self) -> bool:
        return self.status == tags.STATUS_READY and self.state == "available"


@dataclass(frozen=True)
class Lookup:
    fingerprint: str
    ready: AmiRecord | None  # the newest usable AMI
    unusable: tuple[AmiRecord, ...]  # matching AMIs that must not be used, newest first


def find_by_fingerprint(ec2: Any, fingerprint: str, owners: Sequence[str], region: str) -> Lookup:
    filters = {tags.FINGERPRINT: fingerprint}
    records = _tagged_images(ec2, owners, filters, region)
    records.sort(key=lambda r: (r.created, r.ami_id), reverse=True)
    ready = next((record for record in records if record.usable), None)
    return Lookup(fingerprint, ready, tuple(r for r in records if r is not ready))


def tag_map(resource: Mapping[str, Any]) -> dict[str, str]:
    """An EC2 resource's tags as a mapping, from the Key/Value list EC2 describes them in."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def snapshot_ids(image: Mapping[str, Any]) -> tuple[str, ...]:
    """The EBS snapshots behind an AMI, from its block device mappings."""
    return tuple(
        mapping["Ebs"]["SnapshotId"]
        for mapping in image.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    )


def _record(image: dict[str, Any]) -> AmiRecord:
    image_tags = tag_map(image)
    return AmiRecord(
        ami_id=image["ImageId"],
        name=image.get("Name", ""),
        state=image.get("State", ""),
        status=image_tags.get(tags.STATUS, ""),
        created=image.get("CreationDate", ""),
        tags=image_tags,
    )


def newest_ready_by_name(
    ec2: Any, name: str, owners: Sequence[str], region: str
) -> AmiRecord | None:
    """The newest usable AMI of an image set, whatever its fingerprint."""
    filters = {tags.NAME: name, tags.STATUS: tags.STATUS_READY}
    usable = [r for r in _tagged_images(ec2, owners, filters, region) if r.usable]
    return max(usable, key=lambda r: (r.created, r.ami_id), default=None)


def _tagged_images(
    ec2: Any, owners: Sequence[str], tag_values: dict[str, str], region: str
) -> list[AmiRecord]:
    """Every AMI of `owners` carrying these tag values, across all pages."""
    with aws_errors("ec2:DescribeImages", region):
        images = paginate(
            ec2,
            "describe_images",
            "Images",
            Owners=list(owners),
            Filters=[{"Name": f"tag:{key}", "Values": [v]} for key, v in tag_values.items()],
            **({"PaginationConfig": {"PageSize": PAGE_SIZE}} if PAGE_SIZE else {}),
        )
        return [_record(image) for image in images]
