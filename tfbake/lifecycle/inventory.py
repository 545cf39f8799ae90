"""tfbake's AMIs in a region, whatever their status, with what still uses each of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, paginate
from tfbake.aws.catalog import snapshot_ids, tag_map
from tfbake.lifecycle.usage import Use, scan_usage
from tfbake.model import tags

# None: one page, as EC2 answers when no page size is asked for. Tests set it to prove that
# every page of DescribeImages is followed.
PAGE_SIZE: int | None = None
UNKNOWN_CREATED = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class TfbakeAmi:
    ami_id: str
    ami_name: str  # EC2's name of the image, tfbake-<name>-<fp16>[-suffix]
    name: str  # tfbake:name, the image set's name
    fingerprint: str
    status: str  # tfbake:status, "" when absent
    state: str  # EC2's: pending, available, failed, ...
    created: datetime
    creation_date: str  # EC2's CreationDate as it reported it
    region: str
    snapshot_ids: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def fingerprint_short(self) -> str:
        return self.fingerprint[:16]

    @property
    def ready(self) -> bool:
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


@dataclass(frozen=True)
class Inventory:
    region: str
    amis: tuple[TfbakeAmi, ...]  # newest first
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
) -> tuple[TfbakeAmi, ...]:
    """tfbake's own AMIs in the region, newest first, every page of them."""
    region = aws.effective_region
    if fingerprint is None:
        filters = [{"Name": "tag-key", "Values": [tags.FINGERPRINT]}]
    else:
        filters = [{"Name": f"tag:{tags.FINGERPRINT}", "Values": [fingerprint]}]
    if name is not None:
        filters.append({"Name": f"tag:{tags.NAME}", "Values": [name]})
    if status is not None:
        filters.append({"Name": f"tag:{tags.STATUS}", "Values": [status]})
    with aws_errors("ec2:DescribeImages", region):
        images = list(
            paginate(
                aws.client("ec2"),
                "describe_images",
                "Images",
                Owners=["self"],
                Filters=filters,
                **({"PaginationConfig": {"PageSize": PAGE_SIZE}} if PAGE_SIZE else {}),
            )
        )
    records = [ami_of(image, region) for image in images]
    return tuple(sorted(records, key=lambda r: (r.created, r.ami_id), reverse=True))


def ami_of(image: Mapping[str, Any], region: str) -> TfbakeAmi:
    image_tags = tag_map(image)
    creation_date = image.get("CreationDate", "")
    return TfbakeAmi(
        ami_id=image["ImageId"],
        ami_name=image.get("Name", ""),
        name=image_tags.get(tags.NAME, ""),
        fingerprint=image_tags.get(tags.FINGERPRINT, ""),
        status=image_tags.get(tags.STATUS, ""),
        state=image.get("State", ""),
        created=parse_creation_date(creation_date),
        creation_date=creation_date,
        region=region,
        snapshot_ids=snapshot_ids(image),
        tags=image_tags,
    )


def parse_creation_date(text: str) -> datetime:
    """EC2 writes 2026-01-31T12:00:00.000Z; an unreadable date is UNKNOWN_CREATED."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return UNKNOWN_CREATED
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
