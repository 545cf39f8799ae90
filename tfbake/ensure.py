"""Look up the AMI of a plan and bake it when it is missing: the end of the one flow."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from tfbake.aws.calls import AwsContext
from tfbake.model import tags
from tfbake.model.errors import AmiMissing, BakeFailed
from tfbake.model.image_set import Distribution
from tfbake.model.plan import BAKED, COPIED, FOUND, ON_MISSING_BAKE, ON_MISSING_FAIL, Plan, Result
from tfbake.model.progress import ProgressSink
from tfbake.pipeline import look_up

if TYPE_CHECKING:
    from tfbake.bake.runner import BakeRun

# The bake and distribution machinery is imported where it is used: the common path (the AMI
# exists, nothing to copy) is a whole process per `terraform plan` and should not pay for it.


def ensure(
    plan: Plan,
    aws: AwsContext,
    *,
    on_missing: str = ON_MISSING_BAKE,
    on_progress: ProgressSink,
    force: bool = False,
) -> Result:
    """The ready AMI of `plan`, baking it first if needed (or always, with `force`).

    Then its distribution (region copies, sharing, fast restore), also for an AMI that was
    found: that is how a missing copy or permission gets repaired. The AMI returned is tagged
    with when it was (tfbake/lifecycle/returned.py), so that gc spares an AMI a rollback chose.
    """
    from tfbake.lifecycle.returned import record_returned

    result = _ensure(plan, aws, on_missing=on_missing, on_progress=on_progress, force=force)
    if result.ami is not None:
        record_returned(aws.client("ec2"), result.ami)
    return result


def _ensure(
    plan: Plan,
    aws: AwsContext,
    *,
    on_missing: str,
    on_progress: ProgressSink,
    force: bool,
) -> Result:
    distributed = plan.image_set.distribution != Distribution()
    if distributed:
        from tfbake.distribute.apply import preflight

        # Before any lookup or bake: a distribution AWS would refuse fails now, not after one.
        preflight(plan, aws.effective_region)
    found = look_up(plan, aws)
    if found.status == FOUND and not force:
        if on_missing != ON_MISSING_FAIL:
            _release_lock_of_a_fresh_bake(found, aws)
        if not distributed:
            return found
        if on_missing == ON_MISSING_FAIL:
            return _require_copies(found, aws)
        return _distribute(found, aws)
    if on_missing == ON_MISSING_FAIL:
        raise AmiMissing(missing_message(found, "on_missing is fail, so no bake"))
    from tfbake.bake.runner import run_bake

    # AMI names are unique per account and region: a forced rebake, or a rebake after the
    # fingerprint's AMI was revoked or failed, must not reuse the name of an AMI still there.
    taken = {ami.ami_name for ami in (found.ami, *found.unusable) if ami is not None}
    run = run_bake(plan, aws, on_progress=on_progress, taken_names=taken, recheck=not force)
    baked = look_up(plan, aws)
    if baked.status != FOUND:
        raise BakeFailed(
            f"bake {run.execution_id} succeeded but no AMI of fingerprint "
            f"{plan.fingerprint.short} is marked ready in {baked.region}"
        )
    if run.execution_id:
        baked = _proven(baked, run, aws)
    # An attached client did not bake; it reports what it found, like any other lookup.
    status = FOUND if run.attached else BAKED
    result = Result(plan, baked.region, status, baked.ami, baked.unusable, run.timing)
    started = time.monotonic()
    spread = _distribute(result, aws)
    # The copies belong to the bake's time: without them the AMI is not where it is used.
    if run.timing is not None and any(copy.status == COPIED for copy in spread.copies):
        spread = replace(spread, timing=run.timing.with_copies(time.monotonic() - started))
    return spread


# A lock can be left only by a client killed while its bake ran: look for one only while the
# AMI is young, so that the lookup of an older AMI stays one DescribeImages call.
FRESH_BAKE = timedelta(hours=2)


def _release_lock_of_a_fresh_bake(found: Result, aws: AwsContext) -> None:
    ami = found.ami
    execution_id = ami.tags.get(tags.EXECUTION_ID, "") if ami else ""
    if ami is None or not execution_id:
        return
    if datetime.now(timezone.utc) - ami.created > FRESH_BAKE:
        return
    from tfbake.bake.claim import release_after_lookup
    from tfbake.bake.execution import snapshot
    from tfbake.bake.lock import BakeLock

    region, ssm = aws.effective_region, aws.client("ssm")
    lock = BakeLock(ssm, found.plan.fingerprint.value, region)
    release_after_lookup(lock, execution_id, lambda named: snapshot(ssm, named, region))


def _proven(baked: Result, run: BakeRun, aws: AwsContext) -> Result:
    # The newest ready AMI by tag is not necessarily the one this bake made: return the one the
    # execution provably created (tfbake/bake/provenance.py).
    from tfbake.bake.provenance import proven_image

    candidates = tuple(r for r in (baked.ami, *baked.unusable) if r is not None)
    ami = proven_image(
        aws.client("ssm"),
        run.execution_id,
        candidates,
        configured_runbook=baked.plan.image_set.builder.document_name,
        region=baked.region,
        execution=run.execution,
    )
    others = tuple(r for r in candidates if r is not ami)
    return Result(baked.plan, baked.region, FOUND, ami, others)


def _distribute(result: Result, aws: AwsContext) -> Result:
    from tfbake.distribute.apply import distribute

    return distribute(result, aws)


def _require_copies(found: Result, aws: AwsContext) -> Result:
    # `on_missing = fail` promises a run without side effects (a CI plan): a missing region
    # copy fails like a missing AMI instead of being copied, and nothing is shared or enabled.
    from tfbake.distribute.apply import check_copies

    checked = check_copies(found, aws)
    missing = checked.missing_regions
    if missing:
        raise AmiMissing(
            f"no ready copy of {found.ami_id} (fingerprint {found.plan.fingerprint.short}) in "
            f"{', '.join(missing)}; on_missing is fail, so no copy"
        )
    return checked


def missing_message(result: Result, why: str) -> str:
    plan = result.plan
    text = (
        f"no ready AMI for image set {plan.image_set.name!r} "
        f"(fingerprint {plan.fingerprint.short}) in {result.region}"
    )
    if result.unusable:
        states = ", ".join(f"{ami.ami_id} is {ami.status or ami.state}" for ami in result.unusable)
        text += f" ({states})"
    return f"{text}; {why}"
