"""Garbage collection of tfbake's AMIs: decide what may go, then deregister and delete snapshots.

Deciding is a pure function of the inventory (`decide`), so a dry run and --apply judge alike.
Applying is a flat list of steps, each AMI's deregistration before its snapshots' deletion: a
failure stops at the failing step, so an AMI whose deregistration failed keeps its snapshots and
everything after it is reported as left, never as done.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tfbake import tags
from tfbake.aws import AwsContext, aws_errors
from tfbake.errors import AwsError
from tfbake.lifecycle.inventory import UNKNOWN_CREATED, Inventory, TfbakeAmi, take_inventory
from tfbake.lifecycle.usage import Use
from tfbake.manifests import delete_manifest

DEREGISTER = "deregister"
DELETE_SNAPSHOT = "delete-snapshot"
DELETE_MANIFEST = "delete-manifest"
# Already gone (another gc, or a person, got there first): the goal of the step is reached.
GONE_CODES = frozenset(
    {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"}
)
USES_SHOWN = 3


@dataclass(frozen=True)
class Verdict:
    ami: TfbakeAmi
    remove: bool
    reason: str
    uses: tuple[Use, ...]


@dataclass(frozen=True)
class GcPlan:
    region: str
    keep: int
    min_age_days: float
    name: str | None
    verdicts: tuple[Verdict, ...]

    @property
    def removals(self) -> tuple[TfbakeAmi, ...]:
        return tuple(v.ami for v in self.verdicts if v.remove)


@dataclass(frozen=True)
class Step:
    action: str  # DEREGISTER or DELETE_SNAPSHOT
    resource: str  # the AMI or snapshot id
    ami_id: str

    def __str__(self) -> str:
        if self.action == DEREGISTER:
            return f"deregister {self.resource}"
        if self.action == DELETE_MANIFEST:
            return f"delete the recorded inputs of fingerprint {self.resource[:16]}"
        return f"delete snapshot {self.resource} of {self.ami_id}"


@dataclass(frozen=True)
class GcOutcome:
    done: tuple[Step, ...]
    left: tuple[Step, ...]  # the failing step first, then every step not tried
    error: AwsError | None


def plan_gc(
    aws: AwsContext,
    *,
    keep: int,
    min_age_days: float = 0,
    name: str | None = None,
    now: datetime | None = None,
) -> GcPlan:
    inventory = take_inventory(aws, name=name)
    verdicts = decide(inventory, keep, min_age_days, now or datetime.now(timezone.utc))
    return GcPlan(inventory.region, keep, min_age_days, name, verdicts)


def decide(
    inventory: Inventory, keep: int, min_age_days: float, now: datetime
) -> tuple[Verdict, ...]:
    newest = _newest_ready(inventory.amis, keep)
    verdicts = []
    for ami in inventory.amis:
        uses = inventory.uses_of(ami.ami_id)
        kept_because = _why_kept(ami, uses, ami.ami_id in newest, keep, min_age_days, now)
        if kept_because:
            verdicts.append(Verdict(ami, False, kept_because, uses))
        else:
            verdicts.append(Verdict(ami, True, _why_removable(ami, keep), uses))
    return tuple(verdicts)


def _newest_ready(amis: Sequence[TfbakeAmi], keep: int) -> set[str]:
    by_name: dict[str, list[TfbakeAmi]] = defaultdict(list)
    for ami in amis:
        if ami.ready:
            by_name[ami.name].append(ami)
    return {
        ami.ami_id
        for group in by_name.values()
        for ami in sorted(group, key=lambda a: (a.created, a.ami_id), reverse=True)[:keep]
    }


def _why_kept(
    ami: TfbakeAmi,
    uses: tuple[Use, ...],
    among_newest: bool,
    keep: int,
    min_age_days: float,
    now: datetime,
) -> str | None:
    if uses:
        shown = ", ".join(str(use) for use in uses[:USES_SHOWN])
        more = f" and {len(uses) - USES_SHOWN} more" if len(uses) > USES_SHOWN else ""
        return f"in use by {shown}{more}"
    if ami.status == tags.STATUS_PENDING or ami.state == "pending":
        return "pending: a bake may be in progress"
    if not ami.status:
        return f"no {tags.STATUS} tag: not made by a tfbake bake that this gc understands"
    if ami.created == UNKNOWN_CREATED:
        return "creation date unknown"
    if now - ami.created < timedelta(days=min_age_days):
        return f"younger than --min-age {min_age_days:g} day(s) (created {ami.creation_date})"
    if among_newest:
        return f"one of the newest {keep} ready AMI(s) of {ami.name!r}"
    return None


def _why_removable(ami: TfbakeAmi, keep: int) -> str:
    if ami.status in (tags.STATUS_FAILED, tags.STATUS_REVOKED):
        return f"{ami.status}, not in use"
    if ami.status == tags.STATUS_READY and ami.state == "available":
        return f"ready, older than the newest {keep} of {ami.name!r}, not in use"
    return f"not usable ({ami.shown_status}), not in use"


def steps_of(plan: GcPlan) -> tuple[Step, ...]:
    # A fingerprint's recorded inputs go with its last AMI (kept ones still need them for diff).
    kept = {v.ami.fingerprint for v in plan.verdicts if not v.remove}
    last_of_fingerprint = {ami.fingerprint: ami.ami_id for ami in plan.removals}
    steps = []
    for ami in plan.removals:
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
    for index, step in enumerate(steps):
        try:
            _run(ec2, ssm, step, plan.region)
        except AwsError as err:
            if err.code in GONE_CODES:
                continue
            return GcOutcome(steps[:index], steps[index:], err)
    return GcOutcome(steps, (), None)


def _run(ec2: Any, ssm: Any, step: Step, region: str) -> None:
    if step.action == DEREGISTER:
        with aws_errors(f"ec2:DeregisterImage {step.resource}", region):
            ec2.deregister_image(ImageId=step.resource)
    elif step.action == DELETE_MANIFEST:
        delete_manifest(ssm, step.resource, region)
    else:
        with aws_errors(f"ec2:DeleteSnapshot {step.resource}", region):
            ec2.delete_snapshot(SnapshotId=step.resource)
