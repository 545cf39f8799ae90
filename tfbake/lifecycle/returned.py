"""The last time `ensure` returned an AMI, recorded on the AMI, as Image Builder records the
last launch: gc keeps an AMI returned within its grace period even though nothing launches from
it yet (a rollback hands Terraform an older AMI before any instance or template uses it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tfbake.model import tags
from tfbake.model.ami import UNKNOWN_CREATED, AmiRecord, parse_creation_date

# One write per AMI and half a day at most: a `terraform plan` per minute must not mean a
# CreateTags per minute.
REFRESH_AFTER = timedelta(hours=12)


def last_returned(image_tags: dict[str, str] | Any) -> datetime | None:
    value = image_tags.get(tags.LAST_RETURNED, "")
    when = parse_creation_date(value) if value else UNKNOWN_CREATED
    return None if when == UNKNOWN_CREATED else when


def record_returned(ec2: Any, ami: AmiRecord, now: datetime | None = None) -> None:
    """Tag the AMI as returned now, unless it was recently; never fails the lookup itself."""
    if not ami.tags_visible:
        # Another account's AMI: its owner's gc never sees the tags this account puts on it.
        return
    now = now or datetime.now(timezone.utc)
    previous = last_returned(ami.tags)
    if previous is not None and now - previous < REFRESH_AFTER:
        return
    stamp = tags.timestamp(now)
    try:
        ec2.create_tags(Resources=[ami.ami_id], Tags=[{"Key": tags.LAST_RETURNED, "Value": stamp}])
    except Exception:  # bookkeeping: the AMI is returned whether or not it could be tagged
        return
