"""Start (or attach to) the one bake of a fingerprint and wait for it.

The bake itself runs in AWS, not in this process: a client that is interrupted leaves it
running, and the next client attaches to it through the lock. The lock is released when the bake
ends, whatever the outcome, by whichever client sees the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code, is_throttling
from tfbake.aws.catalog import find_by_fingerprint
from tfbake.aws.manifests import delete_manifest, store_manifest
from tfbake.bake.execution import (
    CANCELLED,
    EXECUTION_NOT_FOUND,
    SUCCESS,
    TIMED_OUT,
    Snapshot,
    command_output_tail,
    console_link,
    find_active_execution,
    snapshot,
)
from tfbake.bake.lock import BakeLock, Lock
from tfbake.bake.request import image_name, lock_image_name, start_parameters
from tfbake.bake.timing import read_timing, with_breakdown
from tfbake.model import tags
from tfbake.model.bake_timing import BakeTiming
from tfbake.model.errors import AwsError, BakeCancelled, BakeFailed, BakeTimedOut, TfbakeError
from tfbake.model.plan import Plan
from tfbake.model.progress import Progress, ProgressSink
from tfbake.resolve.baseami import verify_architecture

# Poll quickly at first (short bakes), then settle at a rate that stays far below SSM's
# throttling limits: 7.5 GetAutomationExecution calls a minute, 11.5 calls with the recipe's
# output read while it runs. The end of a bake is learnt at most 8 s late.
POLL_FIRST_SECONDS = 2.0
POLL_MAX_SECONDS = 8.0
# The recipe's output is read at most this often while it runs (one ListCommandInvocations).
RECIPE_TAIL_SECONDS = 30.0
# A builder not yet online has its console read at most this often (one GetConsoleOutput).
AGENT_CHECK_SECONDS = 10.0
MAX_TAKEOVERS = 3
MAX_THROTTLED_POLLS = 30


@dataclass(frozen=True)
class BakeRun:
    execution_id: str
    attached: bool
    timing: BakeTiming | None = None  # None when no bake ran, or AWS could not tell


def run_bake(
    plan: Plan,
    aws: AwsContext,
    *,
    on_progress: ProgressSink,
    taken_names: Collection[str] = (),
    recheck: bool = True,
    timeout_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BakeRun:
    """Bake `plan` once, however many clients ask at the same time; returns when it succeeded.

    The one way into a bake: it names the AMI, checks a declared architecture against the base
    AMI, builds and checks the parameters (all before any lock), then starts the bake or attaches
    to the one another client started. `taken_names` are AMI names still in use in the region
    (a failed or revoked AMI of the fingerprint): the new AMI's name is then suffixed from the
    lock's token. With `recheck`, a client that wins the lock looks in the catalog once more
    before starting: another client may have finished the same bake between our lookup and our
    lock. The timeout is the builder's unless given.
    """
    region = aws.effective_region
    ssm = aws.client("ssm")
    builder_timeout = plan.image_set.builder.timeout_minutes * 60
    deadline = time.monotonic() + (builder_timeout if timeout_seconds is None else timeout_seconds)
    if plan.image_set.architecture:
        # The lookup trusted the declared architecture to save a call; a bake must not.
        verify_architecture(plan.base_ami_id, plan.architecture, aws)
    name = image_name(plan)
    request = _Request(plan, aws, name, unique_name=name in taken_names)
    # Built (and checked) before the lock is taken: bad input must never hold a lock.
    start_parameters(plan, region, name)
    lock = BakeLock(ssm, plan.fingerprint.value, region)
    held = lock.acquire_or_read()
    for _ in range(MAX_TAKEOVERS):
        if held.owned and recheck and _already_baked(plan, aws):
            _release(lock, held)
            return BakeRun(execution_id="", attached=True)
        try:
            held = _start_or_attach(request, lock, held)
        except Exception:
            if held.owned and not held.record.execution_id:
                lock.release(held.record)  # nothing started: leave no lock behind
            raise
        first = _first_snapshot(ssm, held, region, sleep, deadline)
        ended = not held.owned and (first is None or not first.active)
        ended_well = ended and first is not None and first.status == SUCCESS
        if ended_well and recheck and _already_baked(plan, aws):
            # The lock names a bake that ended well with nobody watching (its client died
            # before releasing): its AMI is what this client wanted.
            _release(lock, held)
            return BakeRun(execution_id="", attached=True)
        if ended:
            # Stale: a bake SSM no longer knows, or one that ended badly, or well but its AMI
            # has since been revoked (or this is a forced rebake). Taken over exactly once
            # across all the clients that see it; the others attach to the winner's bake.
            held = lock.take_over(held.record) or lock.acquire_or_read()
            continue
        try:
            final = _wait(ssm, held, first, region, on_progress, deadline, sleep, aws)
        except BakeFailed:
            # The wait stopped the bake itself (a builder that never comes online): nothing
            # runs on for the lock to guard.
            _release(lock, held)
            raise
        _release(lock, held)
        timing = read_timing(ssm, final.execution_id, region)
        if final.status == SUCCESS:
            return BakeRun(final.execution_id, attached=not held.owned, timing=timing)
        raise with_breakdown(_failure_error(aws, final, region), timing)
    raise BakeFailed(f"bake of {plan.image_set.name!r} kept failing before this client attached")


@dataclass(frozen=True)
class _Request:
    plan: Plan
    aws: AwsContext
    image_name: str
    unique_name: bool

    def parameters(self, token: str) -> dict[str, list[str]]:
        name = lock_image_name(self.image_name, token, unique=self.unique_name)
        return start_parameters(self.plan, self.aws.effective_region, name)


def _release(lock: BakeLock, held: Lock) -> None:
    # The bake's outcome is what the caller asked for: a lock that cannot be deleted now is
    # stale to the next client (taken over) and listed by `tfbake cleanup`.
    with contextlib.suppress(AwsError):
        lock.release(held.record)


def _first_snapshot(
    ssm: Any, held: Lock, region: str, sleep: Callable[[float], None], deadline: float
) -> Snapshot | None:
    """The execution the lock names; None when SSM does not know it (a stale lock)."""
    try:
        return _patient_snapshot(ssm, held.record.execution_id, region, sleep, deadline)
    except AwsError as err:
        if held.owned or error_code(err) != EXECUTION_NOT_FOUND:
            raise
        return None


def _start_or_attach(request: _Request, lock: BakeLock, held: Lock) -> Lock:
    if held.record.execution_id:
        return held
    if not held.record.token:  # an unreadable lock: replace it
        replaced = lock.take_over(held.record) or lock.acquire_or_read()
        return _start_or_attach(request, lock, replaced)
    # Also when the lock is not ours: its creator may have died before starting. The recorded
    # token and parameters derived from the lock make this start idempotent, so at most one
    # execution exists per lock.
    plan, aws = request.plan, request.aws
    try:
        execution_id = _start(plan, aws, held.record.token, request.parameters(held.record.token))
    except AwsError as err:
        if error_code(err) != "IdempotentParameterMismatch":
            raise
        # The token's execution was started with other parameters (another spec with the same
        # fingerprint but other builder settings): attach to it while it runs, else the token
        # is spent and the lock is stale.
        found = find_active_execution(
            aws.client("ssm"), plan.fingerprint.value, aws.effective_region
        )
        if found is None:
            replaced = lock.take_over(held.record) or lock.acquire_or_read()
            return _start_or_attach(request, lock, replaced)
        execution_id = found
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
    # The version whose content was verified, not whatever is the default by now.
    version: dict[str, Any] = (
        {"DocumentVersion": names.runbook_version} if names.runbook_version else {}
    )
    try:
        with aws_errors("ssm:StartAutomationExecution", region):
            response = ssm.start_automation_execution(
                DocumentName=names.runbook,
                **version,
                Parameters=parameters,
                ClientToken=token,
                Tags=[
                    {"Key": tags.FINGERPRINT, "Value": plan.fingerprint.value},
                    {"Key": tags.NAME, "Value": plan.image_set.name},
                ],
            )
    except AwsError as err:
        # IdempotentParameterMismatch: that token's bake exists, so its record stays.
        if error_code(err) != "IdempotentParameterMismatch":
            _forget_unbaked_manifest(plan, aws)
        raise
    return response["AutomationExecutionId"]


def _forget_unbaked_manifest(plan: Plan, aws: AwsContext) -> None:
    """After a refused start, the record of inputs that no AMI has; a retry records it again.

    Kept when any AMI of the fingerprint exists (a forced rebake's refused start must not take
    the explanation of the AMI already there). Best effort: the start's error is what counts.
    """
    with contextlib.suppress(AwsError):
        lookup = find_by_fingerprint(
            aws.client("ec2"),
            plan.fingerprint.value,
            plan.image_set.ami_owners,
            aws.effective_region,
        )
        if lookup.ready is None and not lookup.unusable:
            delete_manifest(aws.client("ssm"), plan.fingerprint.value, aws.effective_region)


def _wait(
    ssm: Any,
    lock: Lock,
    first: Snapshot | None,
    region: str,
    on_progress: ProgressSink,
    deadline: float,
    sleep: Callable[[float], None],
    aws: AwsContext,
) -> Snapshot:
    """Poll until the execution ends, starting from `first`, the poll just made (if any)."""
    from tfbake.bake.steps import runbook_step_count

    execution_id = lock.record.execution_id
    started = time.monotonic()
    interval = POLL_FIRST_SECONDS
    recipe = _RecipeTail(ssm, region)
    agent = _AgentWatch(aws, execution_id)
    while True:
        state = first or _patient_snapshot(ssm, execution_id, region, sleep, deadline)
        first = None
        agent.check(state)
        elapsed = time.monotonic() - started
        on_progress(Progress(execution_id, state.current_step, state.steps_done + state.active,
                             runbook_step_count(), elapsed, not lock.owned,
                             recipe.last_line(state)))  # fmt: skip
        if not state.active:
            return state
        if time.monotonic() >= deadline:
            raise _timed_out(execution_id, region, f"at step {state.current_step}")
        sleep(min(interval, max(deadline - time.monotonic(), 0.1)))
        interval = min(interval * 2, POLL_MAX_SECONDS)


class _Rate:
    """Says when a read is due: the first at once, then at most once every `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.read_at = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.read_at < self.seconds:
            return False
        self.read_at = now
        return True

    def restart(self) -> None:
        self.read_at = float("-inf")


class _AgentWatch:
    """Ends a bake whose builder will never come online, naming why, long before the runbook's
    WaitForBuilderOnline times out (agent_diagnosis.py reads the builder's console)."""

    STEP = "WaitForBuilderOnline"

    def __init__(self, aws: AwsContext, execution_id: str) -> None:
        self.aws = aws
        self.execution_id = execution_id
        self.since: float | None = None
        self.rate = _Rate(AGENT_CHECK_SECONDS)

    def check(self, state: Snapshot) -> None:
        from tfbake.bake.agent_diagnosis import offline_builder_cause

        if state.current_step != self.STEP or not state.active:
            self.since = None
            return
        now = time.monotonic()
        self.since = self.since if self.since is not None else now
        if not self.rate.due():
            return
        try:
            cause = offline_builder_cause(self.aws, self.execution_id, now - self.since)
        except AwsError:
            return  # a diagnosis is a courtesy: the runbook's own timeout still ends the bake
        if cause is None:
            return
        region = self.aws.effective_region
        # Its cancel workflow terminates the builder; run_bake's sweep covers the rest.
        with contextlib.suppress(AwsError), aws_errors("ssm:StopAutomationExecution", region):
            self.aws.client("ssm").stop_automation_execution(
                AutomationExecutionId=self.execution_id, Type="Cancel"
            )
        builders = _sweep_builders(self.aws, self.execution_id)
        raise BakeFailed(
            f"bake {self.execution_id} stopped at step {self.STEP}: {cause}{builders}; "
            + console_link(region, self.execution_id)
        )


class _RecipeTail:
    """The last line a running recipe printed, read at a bounded rate; '' when AWS has none."""

    def __init__(self, ssm: Any, region: str) -> None:
        self.ssm = ssm
        self.region = region
        self.command_id: str | None = None
        self.rate = _Rate(RECIPE_TAIL_SECONDS)
        self.line = ""

    def last_line(self, state: Snapshot) -> str:
        if state.running_command_id != self.command_id:
            self.command_id, self.line = state.running_command_id, ""
            self.rate.restart()
        if self.command_id and self.rate.due():
            tail = command_output_tail(self.ssm, self.command_id, self.region)
            self.line = tail.splitlines()[-1] if tail else self.line
        return self.line


def _timed_out(execution_id: str, region: str, where: str) -> BakeTimedOut:
    return BakeTimedOut(
        f"bake {execution_id} still running when the client's timeout ran out ({where}); it "
        f"goes on in AWS: rerun to attach to it, or stop it with `tfbake cancel {execution_id}`; "
        + console_link(region, execution_id)
    )


def _patient_snapshot(
    ssm: Any, execution_id: str, region: str, sleep: Callable[[float], None], deadline: float
) -> Snapshot:
    """A poll that outlasts throttling: the client retries, then this skips polls, not bakes.

    Never past the deadline: a throttled poll is no reason to wait longer than the timeout.
    """
    throttled = 0
    while True:
        try:
            return snapshot(ssm, execution_id, region)
        except AwsError as err:
            throttled += 1
            if not is_throttling(err) or throttled >= MAX_THROTTLED_POLLS:
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timed_out(execution_id, region, "GetAutomationExecution throttled") from None
            sleep(min(POLL_FIRST_SECONDS * 2**throttled, POLL_MAX_SECONDS, left))


def _failure_error(aws: AwsContext, state: Snapshot, region: str) -> TfbakeError:
    ssm = aws.client("ssm")
    link = console_link(region, state.execution_id)
    builders = _sweep_builders(aws, state.execution_id)
    if state.status in CANCELLED:
        return BakeCancelled(f"bake {state.execution_id} was cancelled{builders}; {link}")
    failure = state.failure
    step = failure.step if failure else "(unknown step)"
    message = failure.message if failure else ""
    tail = (
        command_output_tail(
            ssm,
            failure.command_id,
            region,
            logs=aws.client("logs") if state.recipe_log_group else None,
            log_group=state.recipe_log_group,
        )
        if failure and failure.command_id
        else ""
    )
    kind = "timed out" if state.status == TIMED_OUT else "failed"
    return BakeFailed(
        f"bake {state.execution_id} {kind} at step {step}: {message or state.status}{builders}; "
        f"{link}",
        details=tail,
    )


def _sweep_builders(aws: AwsContext, execution_id: str) -> str:
    """Terminate a builder the ended bake left running; the note for the error, '' if none.

    The runbook's failure path terminates its builder, unless that path fails too (its role
    lost a permission): then the client does it, or names the instance it could not stop.
    """
    from tfbake.bake.cancellation import live_builders, terminate_builders

    try:
        left = live_builders(aws, execution_id)
    except AwsError as err:
        return f" (its builder may still run: {err.one_line()}; see `tfbake cleanup`)"
    if not left:
        return ""
    try:
        terminate_builders(aws, execution_id)
    except AwsError as err:
        return f" (its builder {', '.join(left)} is still running: {err.one_line()})"
    return f" (its runbook left builder {', '.join(left)} running; tfbake terminated it)"
