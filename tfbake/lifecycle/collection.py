"""Garbage collection of tfbake's AMIs: decide what may go, then deregister and delete snapshots.

Deciding is a pure function of the inventory (`decide`), so a dry run and --apply judge alike;
then the rest of the estate (estate.py) keeps what another account or region still needs.
Applying is a flat list of steps, each AMI's copies in other regions first, then its own
deregistration before its snapshots' deletion: a failure stops at the failing step, so an AMI
whose deregistration failed keeps its snapshots and everything after it is reported as left,
never as done. Just before an AMI's first step, its usage is scanned again: an AMI that came
into use since the plan is kept.

A shared AMI that would otherwise go is given notice instead (estate.py says why): a
DeprecationTime `shared_grace_days` ahead, which the accounts it is shared with see. Once that
time has passed, a later gc removes it like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code
from tfbake.aws.manifests import delete_manifest
from tfbake.lifecycle.estate import Estate
from tfbake.lifecycle.inventory import Inventory, take_inventory
from tfbake.lifecycle.returned import last_returned
from tfbake.lifecycle.usage import Use
from tfbake.model import tags
from tfbake.model.ami import UNKNOWN_CREATED, AmiRecord
from tfbake.model.errors import AwsError

DEREGISTER = "deregister"
DEREGISTER_COPY = "deregister-copy"  # a copy in another region, with its snapshots
DEFAULT_GRACE_DAYS = 14.0
DEFAULT_SHARED_GRACE_DAYS = 30.0
DEPRECATE = "deprecate"  # give a shared AMI (or its copy) a DeprecationTime: notice of removal
DELETE_SNAPSHOT = "delete-snapshot"
DELETE_MANIFEST = "delete-manifest"
# Already gone (another gc, or a person, got there first): the goal of the step is reached.
GONE_CODES = frozenset(
    {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"}
)
USES_SHOWN = 3


@dataclass(frozen=True)
class Verdict:
    ami: AmiRecord
    remove: bool
    reason: str
    uses: tuple[Use, ...]
    deprecate_at: str = ""  # a shared AMI gc gives notice to: its DeprecationTime to be


@dataclass(frozen=True)
class GcPlan:
    region: str
    keep: int
    min_age_days: float
    name: str | None
    verdicts: tuple[Verdict, ...]
    grace_days: float = DEFAULT_GRACE_DAYS
    shared_grace_days: float = DEFAULT_SHARED_GRACE_DAYS

    @property
    def removals(self) -> tuple[AmiRecord, ...]:
        return tuple(v.ami for v in self.verdicts if v.remove)

    @property
    def notices(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.deprecate_at)


@dataclass(frozen=True)
class Step:
    action: str  # DEPRECATE, DEREGISTER, DEREGISTER_COPY, DELETE_SNAPSHOT or DELETE_MANIFEST
    resource: str  # the AMI, copy, snapshot id or fingerprint
    ami_id: str
    region: str = ""  # a copy's region; "" for the plan's region
    at: str = ""  # DEPRECATE's DeprecationTime

    def __str__(self) -> str:
        if self.action == DEPRECATE:
            where = f" in {self.region}" if self.region else ""
            return f"deprecate {self.resource}{where} at {self.at}"
        if self.action == DEREGISTER:
            return f"deregister {self.resource}"
        if self.action == DEREGISTER_COPY:
            return f"deregister copy {self.resource} of {self.ami_id} in {self.region}"
        if self.action == DELETE_MANIFEST:
            return f"delete the recorded inputs of fingerprint {self.resource[:16]}"
        return f"delete snapshot {self.resource} of {self.ami_id}"


@dataclass(frozen=True)
class GcOutcome:
    done: tuple[Step, ...]
    left: tuple[Step, ...]  # the failing step first, then every step not tried
    error: AwsError | None
    kept: tuple[tuple[str, str], ...] = ()  # (AMI id, why) for AMIs the rescan kept


def plan_gc(
    aws: AwsContext,
    *,
    keep: int,
    min_age_days: float = 0,
    name: str | None = None,
    now: datetime | None = None,
    grace_days: float = DEFAULT_GRACE_DAYS,
    shared_grace_days: float = DEFAULT_SHARED_GRACE_DAYS,
) -> GcPlan:
    now = now or datetime.now(timezone.utc)
    inventory = take_inventory(aws, name=name)
    verdicts = decide(inventory, keep, min_age_days, now, grace_days)
    estate = Estate(aws, inventory.usage)
    notice_until = now + timedelta(days=shared_grace_days)
    checked = tuple(_estate_checked(estate, verdict, now, notice_until) for verdict in verdicts)
    return GcPlan(
        inventory.region, keep, min_age_days, name, checked, grace_days, shared_grace_days
    )


def _estate_checked(
    estate: Estate, verdict: Verdict, now: datetime, notice_until: datetime
) -> Verdict:
    if not verdict.remove:
        return verdict
    ami = verdict.ami
    kept_because = estate.why_kept(ami, now)
    if not kept_because:
        return verdict
    if ami.deprecation_time or not _shared(estate, ami):
        return Verdict(ami, False, kept_because, verdict.uses)
    at = deprecation_time(notice_until)
    reason = f"{kept_because}; gc deprecates it at {at}, removable after that"
    return Verdict(ami, False, reason, verdict.uses, deprecate_at=at)


def _shared(estate: Estate, ami: AmiRecord) -> bool:
    return any(estate.shared(region, ami_id) for region, ami_id in ami.regions.items())


def deprecation_time(moment: datetime) -> str:
    """As EC2 keeps a DeprecationTime: UTC, to the minute (it drops seconds)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")


def decide(
    inventory: Inventory,
    keep: int,
    min_age_days: float,
    now: datetime,
    grace_days: float = DEFAULT_GRACE_DAYS,
) -> tuple[Verdict, ...]:
    newest = _newest_ready(inventory.amis, keep)
    verdicts = []
    for ami in inventory.amis:
        uses = inventory.uses_of(ami.ami_id)
        kept_because = _why_kept(
            ami, uses, ami.ami_id in newest, keep, (min_age_days, grace_days), now
        )
        if kept_because:
            verdicts.append(Verdict(ami, False, kept_because, uses))
        else:
            verdicts.append(Verdict(ami, True, _why_removable(ami, keep), uses))
    return tuple(verdicts)


def _newest_ready(amis: Sequence[AmiRecord], keep: int) -> set[str]:
    by_name: dict[str, list[AmiRecord]] = defaultdict(list)
    for ami in amis:
        if ami.usable:
            by_name[ami.name].append(ami)
    return {
        ami.ami_id
        for group in by_name.values()
        for ami in sorted(group, key=lambda a: (a.created, a.ami_id), reverse=True)[:keep]
    }


def _why_kept(
    ami: AmiRecord,
    uses: tuple[Use, ...],
    among_newest: bool,
    keep: int,
    ages: tuple[float, float],  # --min-age and --grace, in days
    now: datetime,
) -> str | None:
    min_age_days, grace_days = ages
    if uses:
        shown = ", ".join(str(use) for use in uses[:USES_SHOWN])
        more = f" and {len(uses) - USES_SHOWN} more" if len(uses) > USES_SHOWN else ""
        return f"in use by {shown}{more}"
    if ami.status == tags.STATUS_PENDING or ami.state == "pending":
        return "pending: a bake may be in progress"
    returned = last_returned(ami.tags)
    if returned is not None and now - returned < timedelta(days=grace_days):
        return (
            f"returned by ensure at {ami.tags[tags.LAST_RETURNED]}, within the grace period "
            f"of {grace_days:g} day(s): a rollback may be about to use it"
        )
    if not ami.status:
        return f"no {tags.STATUS} tag: not made by a tfbake bake that this gc understands"
    if ami.created == UNKNOWN_CREATED:
        return "creation date unknown"
    if now - ami.created < timedelta(days=min_age_days):
        return (
            f"younger than the minimum age of {min_age_days:g} day(s) (created {ami.creation_date})"
        )
    if among_newest:
        return f"one of the newest {keep} ready AMI(s) of {ami.name!r}"
    return None


def _why_removable(ami: AmiRecord, keep: int) -> str:
    if ami.status in (tags.STATUS_FAILED, tags.STATUS_REVOKED):
        return f"{ami.status}, not in use"
    if ami.usable:
        return f"ready, older than the newest {keep} of {ami.name!r}, not in use"
    return f"not usable ({ami.shown_status}), not in use"


def steps_of(plan: GcPlan) -> tuple[Step, ...]:
    # A fingerprint's recorded inputs go with its last AMI (kept ones still need them for diff).
    kept = {v.ami.fingerprint for v in plan.verdicts if not v.remove}
    last_of_fingerprint = {ami.fingerprint: ami.ami_id for ami in plan.removals}
    steps: list[Step] = [
        Step(
            DEPRECATE,
            ami_id,
            v.ami.ami_id,
            "" if region == v.ami.region else region,
            v.deprecate_at,
        )
        for v in plan.notices
        for region, ami_id in v.ami.regions.items()
    ]
    for ami in plan.removals:
        steps.extend(
            Step(DEREGISTER_COPY, copy, ami.ami_id, region)
            for region, copy in ami.regions.items()
            if region != ami.region
        )
        # Snapshot ids come from the listing, taken before deregistration: afterwards the
        # image, and with it the only record of which snapshots were its own, is gone.
        steps.append(Step(DEREGISTER, ami.ami_id, ami.ami_id))
        steps.extend(Step(DELETE_SNAPSHOT, snap, ami.ami_id) for snap in ami.snapshot_ids)
        if ami.fingerprint not in kept and last_of_fingerprint[ami.fingerprint] == ami.ami_id:
            steps.append(Step(DELETE_MANIFEST, ami.fingerprint, ami.ami_id))
    return tuple(steps)


def apply_gc(aws: AwsContext, plan: GcPlan) -> GcOutcome:
    """Run every step in order; stop at the first failure and report what is left."""
    ec2 = aws.client("ec2")
    ssm = aws.client("ssm")
    steps = steps_of(plan)
    now = datetime.now(timezone.utc)
    amis = {ami.ami_id: ami for ami in plan.removals}
    estate = Estate(aws)
    kept: dict[str, str] = {}
    checked: set[str] = set()
    done: list[Step] = []
    for index, step in enumerate(steps):
        if step.action == DEPRECATE:
            try:
                _deprecate(aws, step, plan.region)
            except AwsError as err:
                return GcOutcome(tuple(done), steps[index:], err, tuple(kept.items()))
            done.append(step)
            continue
        if step.ami_id not in checked:
            checked.add(step.ami_id)
            try:
                reason = estate.why_kept(amis[step.ami_id], now, fresh=True)
            except AwsError as err:
                return GcOutcome(tuple(done), steps[index:], err, tuple(kept.items()))
            if reason:
                kept[step.ami_id] = reason
        if step.ami_id in kept or (
            step.action == DELETE_MANIFEST and _fingerprint_kept(step.resource, amis, kept)
        ):
            continue
        try:
            _run(ec2, ssm, aws, step, plan.region)
        except AwsError as err:
            if error_code(err) in GONE_CODES:
                done.append(step)
                continue
            return GcOutcome(tuple(done), steps[index:], err, tuple(kept.items()))
        done.append(step)
    return GcOutcome(tuple(done), (), None, tuple(kept.items()))


def _fingerprint_kept(fingerprint: str, amis: dict[str, AmiRecord], kept: dict[str, str]) -> bool:
    return any(amis[ami_id].fingerprint == fingerprint for ami_id in kept)


def _copy_region(ami: AmiRecord, region: str) -> str:
    return "" if region == ami.region else region


def _deprecate(aws: AwsContext, step: Step, region: str) -> None:
    where = step.region or region
    with aws_errors(f"ec2:EnableImageDeprecation {step.resource}", where):
        aws.client("ec2", where).enable_image_deprecation(
            ImageId=step.resource,
            DeprecateAt=datetime.fromisoformat(step.at.replace("Z", "+00:00")),
        )


def _run(ec2: Any, ssm: Any, aws: AwsContext, step: Step, region: str) -> None:
    if step.action == DEREGISTER:
        with aws_errors(f"ec2:DeregisterImage {step.resource}", region):
            ec2.deregister_image(ImageId=step.resource)
    elif step.action == DEREGISTER_COPY:
        with aws_errors(f"ec2:DeregisterImage {step.resource}", step.region):
            aws.client("ec2", step.region).deregister_image(
                ImageId=step.resource, DeleteAssociatedSnapshots=True
            )
    elif step.action == DELETE_MANIFEST:
        delete_manifest(ssm, step.resource, region)
    else:
        with aws_errors(f"ec2:DeleteSnapshot {step.resource}", region):
            ec2.delete_snapshot(SnapshotId=step.resource)
