"""Copies of the home AMI in the spec's other regions, found by fingerprint or copied.

A region that holds a ready AMI of the fingerprint is left alone. A missing copy is made with
CopyImage from the home AMI, never by baking again: the content is the same everywhere. Each
copy is tagged like the home AMI (CopyImage's CopyImageTags is not relied on: tags are written
explicitly, snapshots included), `pending` until EC2 reports it available, then `ready`.
Regions are handled in parallel, and one region's failure does not stop the others.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.aws.catalog import Lookup, describe_image, find_by_fingerprint
from tfbake.model import tags
from tfbake.model.ami import AmiRecord, snapshot_ids
from tfbake.model.errors import AwsError, TfbakeError
from tfbake.model.plan import Plan

MAX_PARALLEL_REGIONS = 8
# A cross-region copy of a 30 GiB AMI takes minutes; polling faster buys nothing.
POLL_SECONDS = 15.0
FAILED_STATES = frozenset({"failed", "error", "invalid", "deregistered", "disabled"})

# What to do with a copy once it is ready in its region (sharing): ec2 client, AMI id, region.
AfterReady = Callable[[Any, str, str], None]


@dataclass(frozen=True)
class RegionOutcome:
    region: str
    ami_id: str | None  # the ready copy; None when this region failed
    copied: bool  # True when this run made the copy
    error: TfbakeError | None = None


def copy_regions(plan: Plan, home_region: str) -> tuple[str, ...]:
    """The spec's regions other than the home region, in the order given."""
    return tuple(r for r in plan.image_set.distribution.regions if r != home_region)


def look_up_copies(plan: Plan, aws: AwsContext, home_region: str) -> dict[str, AmiRecord | None]:
    """Region -> its ready AMI of the fingerprint, or None; read-only, for `check`."""
    regions = copy_regions(plan, home_region)
    lookups = _in_parallel(aws, regions, lambda ec2, region: _look_up(plan, ec2, region))
    return {region: lookup.ready for region, lookup in zip(regions, lookups, strict=True)}


def ensure_copies(
    plan: Plan,
    aws: AwsContext,
    home: AmiRecord,
    home_region: str,
    after_ready: AfterReady,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RegionOutcome]:
    """A ready copy of `home` in every other region; failures are reported, not raised."""
    timeout = plan.image_set.builder.timeout_minutes * 60

    def one_region(ec2: Any, region: str) -> RegionOutcome:
        try:
            ami_id, copied = _ensure_copy(plan, ec2, home, home_region, region, timeout, sleep)
            after_ready(ec2, ami_id, region)
        except TfbakeError as err:
            return RegionOutcome(region, None, False, err)
        return RegionOutcome(region, ami_id, copied)

    return _in_parallel(aws, copy_regions(plan, home_region), one_region)


def _in_parallel(aws: AwsContext, regions: Sequence[str], work: Callable[[Any, str], Any]) -> list:
    if not regions:
        return []
    # Clients are made here, in one thread: creating clients from one boto3 session is not
    # thread-safe, while using them from several threads is.
    clients = [aws.client("ec2", region) for region in regions]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_REGIONS, len(regions))) as pool:
        return list(pool.map(work, clients, regions))


def _look_up(plan: Plan, ec2: Any, region: str) -> Lookup:
    return find_by_fingerprint(ec2, plan.fingerprint.value, plan.image_set.ami_owners, region)


def _ensure_copy(
    plan: Plan,
    ec2: Any,
    home: AmiRecord,
    home_region: str,
    region: str,
    timeout: float,
    sleep: Callable[[float], None],
) -> tuple[str, bool]:
    lookup = _look_up(plan, ec2, region)
    if lookup.ready:
        return lookup.ready.ami_id, False
    # A copy an earlier run started (or finished without marking ready, if its client died):
    # wait for it instead of copying again.
    started = next(
        (
            ami
            for ami in lookup.unusable
            if ami.status == tags.STATUS_PENDING and ami.state not in FAILED_STATES
        ),
        None,
    )
    ami_id = (
        started.ami_id if started else _start_copy(plan, ec2, home, home_region, region, lookup)
    )
    image = _wait_until_available(ec2, ami_id, home_region, region, timeout, sleep)
    ready = {tags.STATUS: tags.STATUS_READY}
    tag_set = _tag_list({**_copy_tags(home, home_region), **ready})
    snapshots = list(snapshot_ids(image))
    with aws_errors("ec2:CreateTags", region):
        if snapshots:
            ec2.create_tags(Resources=snapshots, Tags=tag_set)
        # Last: the copy is used only from here on.
        ec2.create_tags(Resources=[ami_id], Tags=_tag_list(ready))
    return ami_id, True


def _start_copy(
    plan: Plan, ec2: Any, home: AmiRecord, home_region: str, region: str, lookup: Lookup
) -> str:
    # AMI names are unique per region: a failed or revoked copy may still hold the home name.
    name = home.ami_name
    if name in {ami.ami_name for ami in lookup.unusable}:
        name += f"-{int(time.time())}"
    # The same token for the same copy: a retried request after a lost response, or a run
    # that died between CopyImage and CreateTags, gets the copy that was already started.
    token = "tfbake-" + hashlib.sha256(f"{home.ami_id}/{region}/{name}".encode()).hexdigest()[:32]
    params: dict[str, Any] = {
        "SourceImageId": home.ami_id,
        "SourceRegion": home_region,
        "Name": name,
        "Description": f"tfbake copy of {home.ami_id} from {home_region}",
        "ClientToken": token,
    }
    key = plan.image_set.distribution.kms_key_for(region)
    if key:
        params.update(Encrypted=True, KmsKeyId=key)
    with aws_errors("ec2:CopyImage", region):
        ami_id = ec2.copy_image(**params)["ImageId"]
    pending = {**_copy_tags(home, home_region), tags.STATUS: tags.STATUS_PENDING}
    with aws_errors("ec2:CreateTags", region):
        ec2.create_tags(Resources=[ami_id], Tags=_tag_list(pending))
    return ami_id


def _wait_until_available(
    ec2: Any,
    ami_id: str,
    home_region: str,
    region: str,
    timeout: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        # A fresh copy may not be visible yet to DescribeImages (eventual consistency).
        image = describe_image(ec2, ami_id, region) or {"ImageId": ami_id, "State": "pending"}
        state = image.get("State", "")
        if state == "available":
            return image
        if state in FAILED_STATES:
            reason = image.get("StateReason", {}).get("Message", "")
            raise AwsError(
                f"copy {ami_id} of the {home_region} AMI ended {state} in {region}"
                + (f": {reason}" if reason else ""),
                code="CopyFailed",
            )
        if time.monotonic() >= deadline:
            raise AwsError(
                f"copy {ami_id} still {state or 'pending'} in {region} after "
                f"{int(timeout // 60)} min; it goes on in AWS: rerun to wait for it",
                code="CopyTimedOut",
            )
        sleep(POLL_SECONDS)


def _copy_tags(home: AmiRecord, home_region: str) -> dict[str, str]:
    # `aws:` tags belong to AWS and cannot be written by anyone else; the home AMI's record of
    # its copies describes the home AMI only.
    copied = {
        k: v
        for k, v in home.tags.items()
        # tfbake:last-returned is the home AMI's own bookkeeping, not a property of the image.
        if not k.lower().startswith("aws:")
        and not k.startswith(tags.COPY_PREFIX)
        and k != tags.LAST_RETURNED
    }
    return {**copied, tags.SOURCE_AMI: home.ami_id, tags.SOURCE_REGION: home_region}


def _tag_list(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(values.items())]
