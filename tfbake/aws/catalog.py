"""The AMI catalog: tfbake's AMIs found by their tags, or by what their owner publishes.

One DescribeImages call per lookup of the account's own AMIs (`self`). It filters on the
fingerprint only, not on the status, so the same call also reports a matching AMI that exists
but is not usable (pending, failed, revoked). Other accounts named in `ami_owners` cannot show
their tags: one more call finds their AMIs by the description tfbake publishes on them
(model/publication.py), with EC2 checking the owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tfbake.aws.calls import aws_errors, error_code, paginate
from tfbake.model import tags
from tfbake.model.ami import AmiRecord, ami_record, newest_first
from tfbake.model.errors import AwsError
from tfbake.model.image_set import SELF_OWNER as SELF
from tfbake.model.publication import description_filter, published_status

# None: EC2 answers in one page when no page size is asked for, which keeps the no-op path to a
# single call. Tests set it to prove every page is followed.
PAGE_SIZE: int | None = None


@dataclass(frozen=True)
class Lookup:
    fingerprint: str
    ready: AmiRecord | None  # the newest usable AMI
    unusable: tuple[AmiRecord, ...]  # matching AMIs that must not be used, newest first


def find_by_fingerprint(ec2: Any, fingerprint: str, owners: Sequence[str], region: str) -> Lookup:
    """The AMI of `fingerprint` among `owners`': `self`'s by their tags, then, only when that
    found none ready, the other owners' by the description they publish."""
    others = [owner for owner in owners if owner != SELF]
    records: list[AmiRecord] = []
    if SELF in owners:
        records = tagged_images(ec2, [SELF], {tags.FINGERPRINT: fingerprint}, region)
    if others and not any(record.usable for record in records):
        records += published_images(ec2, fingerprint, others, region)
    records = newest_first(records)
    ready = next((record for record in records if record.usable), None)
    return Lookup(fingerprint, ready, tuple(r for r in records if r is not ready))


def published_images(
    ec2: Any, fingerprint: str, owners: Sequence[str], region: str
) -> list[AmiRecord]:
    """The AMIs of `owners` (account ids) whose description names `fingerprint`, across all
    pages. Deprecated ones too: deprecation is the image account's notice of a coming gc, and a
    workload account still on that fingerprint keeps its AMI until then."""
    filters = [{"Name": "description", "Values": [description_filter(fingerprint)]}]
    images = _described(ec2, owners, filters, region, IncludeDeprecated=True)
    records = [_as_published(record) for record in images]
    # The filter's wildcard matches any prefix: the full fingerprint decides.
    return [record for record in records if record.fingerprint == fingerprint]


def _as_published(record: AmiRecord) -> AmiRecord:
    """The record as its owner's description vouches for it, whatever tags it shows: EC2 shows
    an account the tags it put on another account's AMI itself, which vouch for nothing. (An
    owner named by its account id rather than `self` is read the same way.)"""
    return replace(record, status=published_status(record.description), tags={})


def newest_ready_by_name(
    ec2: Any, name: str, owners: Sequence[str], region: str
) -> AmiRecord | None:
    """The newest usable AMI of an image set, whatever its fingerprint."""
    filters = {tags.NAME: name, tags.STATUS: tags.STATUS_READY}
    usable = [r for r in tagged_images(ec2, owners, filters, region) if r.usable]
    return next(iter(newest_first(usable)), None)


def tagged_images(
    ec2: Any,
    owners: Sequence[str],
    tag_values: Mapping[str, str],
    region: str,
    *,
    tag_keys: Sequence[str] = (),
) -> list[AmiRecord]:
    """Every AMI of `owners` carrying these tag values (and these tag keys), across all pages."""
    filters = [{"Name": "tag-key", "Values": [key]} for key in tag_keys]
    filters += [{"Name": f"tag:{key}", "Values": [v]} for key, v in tag_values.items()]
    return _described(ec2, owners, filters, region)


def _described(
    ec2: Any, owners: Sequence[str], filters: list[dict[str, Any]], region: str, **extra: Any
) -> list[AmiRecord]:
    """The records of one DescribeImages of `owners`' AMIs, across all pages."""
    with aws_errors("ec2:DescribeImages", region):
        images = paginate(
            ec2,
            "describe_images",
            "Images",
            Owners=list(owners),
            Filters=filters,
            **extra,
            **({"PaginationConfig": {"PageSize": PAGE_SIZE}} if PAGE_SIZE else {}),
        )
        return [ami_record(image, region) for image in images]


def describe_image(ec2: Any, ami_id: str, region: str) -> dict[str, Any] | None:
    """One AMI as EC2 describes it, or None when there is no such AMI visible to this account."""
    try:
        with aws_errors(f"ec2:DescribeImages {ami_id}", region):
            images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    except AwsError as err:
        # EC2 refuses an id it does not know (InvalidAMIID.NotFound, .Unavailable, .Malformed)
        # rather than answering with no image; both mean the same here.
        if not error_code(err).startswith("InvalidAMIID"):
            raise
        return None
    return images[0] if images else None
