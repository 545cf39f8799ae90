"""Start (or attach to) the one bake of a fingerprint and wait for it.

The bake itself runs in AWS, not in this process: a client that is interrupted leaves it
running, and the next client attaches to it through the lock. The lock is released when the bake
ends, whatever the outcome, by whichever client sees the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfbake import tags
from tfbake.aws import AwsContext, aws_errors, is_throttling
from tfbake.bake.execution import (
    CANCELLED,
    SUCCESS,
    TIMED_OUT,
    Snapshot,
    command_output_tail,
    console_link,
    snapshot,
)
from tfbake.bake.lock import BakeLock, Lock
from tfbake.bake.request import start_parameters
from tfbake.catalog import find_by_fingerprint
from tfbake.errors import AwsError, BakeCancelled, BakeFailed, BakeTimedOut
from tfbake.manifests import store_manifest
from tfbake.pipeline import Plan
from tfbake.progress import Progress, ProgressSink

# Poll quickly at first (short bakes, attaching to a finished one), then settle at a rate that
# stays far below SSM's throttling limits: 4 GetAutomationExecution calls a minute. A bake takes
# minutes; learning of its end up to 15 s late costs little.
POLL_FIRST_SECONDS = 1.0
POLL_MAX_SECONDS = 15.0
MAX_TAKEOVERS = 3
MAX_THROTTLED_POLLS = 30


@dataclass(frozen=True)
class BakeRun:
    execution_id: str
    attached: bool


def run_bake(
    plan: Plan,
    aws: AwsContext,
    *,
    on_progress: ProgressSink,
    timeout_seconds: float,
    image_name: str,
    recheck: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> BakeRun:
    """Bake `plan` once, however many clients ask at the same time; returns when it succeeded.

    With `recheck`, a client that wins the lock looks in the catalog once more before starting:
    another client may have finished the same bake between our lookup and our lock.
    """
    region = aws.effective_region
    ssm = aws.client("ssm")
    # Built (and validated) before the lock is taken: bad input must never hold a lock.
    parameters = start_parameters(plan, region, image_name)
    lock = BakeLock(ssm, plan.fingerprint.value, region)
    for _ in range(MAX_TAKEOVERS):
        held = lock.acquire_or_read()
        if held.owned and recheck and _already_baked(plan, aws):
            lock.release(held.record)
            return BakeRun(execution_id="", attached=True)
        try:
            held = _start_or_attach(plan, aws, lock, held, parameters)
        except Exception:
            if held.owned and not held.record.execution_id:
                lock.release(held.record)  # nothing started: leave no lock behind
            raise
        first = _patient_snapshot(ssm, held.record.execution_id, region, sleep)
        if (
            not held.owned
            and not first.active
            and (first.status != SUCCESS or not _already_baked(plan, aws))
        ):
            # The lock names a bake that ended with nobody watching (its client died before
            # releasing): badly, or well but its AMI has since been revoked. Stale: take over.
            lock.release(held.record)
            continue
        final = _wait(ssm, held, region, on_progress, timeout_seconds, sleep)
        lock.release(held.record)
        if final.status == SUCCESS:
            return BakeRun(final.execution_id, attached=not held.owned)
        raise _failure_error(ssm, final, region)
    raise BakeFailed(f"bake of {plan.image_set.name!r} kept failing before this client attached")


def _start_or_attach(
    plan: Plan, aws: AwsContext, lock: BakeLock, held: Lock, parameters: dict[str, list[str]]
) -> Lock:
    if held.record.execution_id:
        return held
    if not held.record.token:  # an unreadable lock: replace it
        lock.release(held.record)
        return _start_or_attach(plan, aws, lock, lock.acquire_or_read(), parameters)
    # Also when the lock is not ours: its creator may have died before starting. The recorded
    # token makes this start idempotent, so at most one execution exists per lock.
    execution_id = _start(plan, aws, held.record.token, parameters)
    return lock.record_execution(held, execution_id)


def _already_baked(plan: Plan, aws: AwsContext) -> bool:
    lookup = find_by_fingerprint(
        aws.client("ec2"), plan.fingerprint.value, plan.image_set.ami_owners, aws.effective_region
    )
    return lookup.ready is not None


def _start(plan: Plan, aws: AwsContext, token: str, parameters: dict[str, list[str]]) -> str:
    from tfbake.bake.documents import ensure_documents

    region = aws.effective_region
    ssm = aws.client("ssm")
    builder = plan.image_set.builder
    names = ensure_documents(ssm, runbook_name=builder.document_name)
    # Recorded before the bake starts, so `tfbake diff` can later explain what went into it.
    store_manifest(ssm, plan.fingerprint.value, plan.fingerprint.manifest, region)
    with aws_errors("ssm:StartAutomationExecution", region):
        response = ssm.start_automation_execution(
            DocumentName=names.runbook,
            # The version whose content was verified, not whatever is the default by now.
            **({"DocumentVersion": names.runbook_version} if names.runbook_version else {}),
            Parameters=parameters,
            ClientToken=token,
            Tags=[
                {"Key": tags.FINGERPRINT, "Value": plan.fingerprint.value},
                {"Key": tags.NAME, "Value": plan.image_set.name},
            ],
        )
    return response["AutomationExecutionId"]


def _wait(
    ssm: Any,
    lock: Lock,
    region: str,
    on_progress: ProgressSink,
    timeout_seconds: float,
    sleep: Callable[[float], None],
) -> Snapshot:
    from tfbake.bake.steps import runbook_step_count

    execution_id = lock.record.execution_id
    started = time.monotonic()
    interval = POLL_FIRST_SECONDS
    while True:
        state = _patient_snapshot(ssm, execution_id, region, sleep)
        elapsed = time.monotonic() - started
        on_progress(Progress(execution_id, state.current_step, state.steps_done + state.active,
                             runbook_step_count(), elapsed, not lock.owned))  # fmt: skip
        if not state.active:
            return state
        if elapsed >= timeout_seconds:
            raise BakeTimedOut(
                f"bake {execution_id} still running after {int(elapsed // 60)} min "
                f"(at step {state.current_step}); it goes on in AWS: rerun to attach to it, "
                f"or stop it with `tfbake cancel {execution_id}`; "
                + console_link(region, execution_id)
            )
        sleep(min(interval, max(timeout_seconds - elapsed, 0.1)))
        interval = min(interval * 2, POLL_MAX_SECONDS)


def _patient_snapshot(
    ssm: Any, execution_id: str, region: str, sleep: Callable[[float], None]
) -> Snapshot:
    """A poll that outlasts throttling: the client retries, then this skips polls, not bakes."""
    throttled = 0
    while True:
        try:
            return snapshot(ssm, execution_id, region)
        except AwsError as err:
            throttled += 1
            if not is_throttling(err) or throttled >= MAX_THROTTLED_POLLS:
                raise
            sleep(min(POLL_FIRST_SECONDS * 2**throttled, POLL_MAX_SECONDS))


def _failure_error(ssm: Any, state: Snapshot, region: str) -> Exception:
    link = console_link(region, state.execution_id)
    if state.status in CANCELLED:
        return BakeCancelled(f"bake {state.execution_id} was cancelled; {link}")
    failure = state.failure
    step = failure.step if failure else "(unknown step)"
    message = failure.message if failure else ""
    tail = (
        command_output_tail(ssm, failure.command_id, region)
        if failure and failure.command_id
        else ""
    )
    kind = "timed out" if state.status == TIMED_OUT else "failed"
    return BakeFailed(
        f"bake {state.execution_id} {kind} at step {step}: {message or state.status}; {link}",
        details=tail,
    )
