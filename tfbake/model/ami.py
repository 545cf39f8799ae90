"""One of tfbake's AMIs as EC2 describes it, and the rule that makes it usable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tfbake.model import tags
from tfbake.model.publication import published_fingerprint, published_status

UNKNOWN_CREATED = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class AmiRecord:
    ami_id: str
    ami_name: str  # EC2's name of the image, tfbake-<name>-<fp16>[-suffix]
    state: str  # EC2's: pending, available, failed, ...
    # tfbake:status; on another account's AMI, whose tags EC2 hides, what its description
    # publishes (model/publication.py); "" when neither says
    status: str
    creation_date: str  # EC2's CreationDate as it reported it
    region: str
    snapshot_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)
    owner_id: str = ""
    description: str = ""
    deprecation_time: str = ""  # EC2's DeprecationTime, "" when none is set

    @property
    def name(self) -> str:
        """The image set's name (tfbake:name), "" when absent."""
        return self.tags.get(tags.NAME, "")

    @property
    def fingerprint(self) -> str:
        if self.tags_visible:
            return self.tags.get(tags.FINGERPRINT, "")
        return published_fingerprint(self.description)

    @property
    def tags_visible(self) -> bool:
        """Whether tfbake's tags are on the record: EC2 shows them to the AMI's owner only."""
        return tags.FINGERPRINT in self.tags

    @property
    def fingerprint_short(self) -> str:
        return self.fingerprint[:16]

    @property
    def created(self) -> datetime:
        return parse_creation_date(self.creation_date)

    def deprecated_by(self, now: datetime) -> bool:
        """Whether its DeprecationTime has come."""
        return bool(self.deprecation_time) and parse_creation_date(self.deprecation_time) <= now

    @property
    def usable(self) -> bool:
        """Marked ready by a bake that passed every step, and available in EC2."""
        return self.status == tags.STATUS_READY and self.state == "available"

    @property
    def shown_status(self) -> str:
        """tfbake's status, and EC2's state too when the image is not available."""
        status = self.status or "untagged"
        return status if self.state == "available" else f"{status} ({self.state})"

    @property
    def regions(self) -> dict[str, str]:
        """Region -> AMI id: this image, and the copies ensure recorded on it."""
        copies = {
            key[len(tags.COPY_PREFIX) :]: value
            for key, value in self.tags.items()
            if key.startswith(tags.COPY_PREFIX)
        }
        return {self.region: self.ami_id, **dict(sorted(copies.items()))}


def ami_record(image: Mapping[str, Any], region: str) -> AmiRecord:
    """The record of one image of a DescribeImages answer."""
    image_tags = tag_map(image)
    description = image.get("Description", "")
    own = tags.FINGERPRINT in image_tags
    return AmiRecord(
        ami_id=image["ImageId"],
        ami_name=image.get("Name", ""),
        state=image.get("State", ""),
        status=image_tags.get(tags.STATUS, "") if own else published_status(description),
        creation_date=image.get("CreationDate", ""),
        region=region,
        snapshot_ids=snapshot_ids(image),
        tags=image_tags,
        owner_id=image.get("OwnerId", ""),
        description=description,
        deprecation_time=image.get("DeprecationTime", ""),
    )


def newest_first(records: list[AmiRecord]) -> list[AmiRecord]:
    return sorted(records, key=lambda r: (r.created, r.ami_id), reverse=True)


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


def parse_creation_date(text: str) -> datetime:
    """EC2 writes 2026-01-31T12:00:00.000Z; an unreadable date is UNKNOWN_CREATED."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return UNKNOWN_CREATED
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
