"""Bake a plan once, however many clients ask at the same time: the story of one bake.

The bake runs in AWS, not in this process: a client that is interrupted leaves it running, and
the next client attaches to it through the bake's lock. Every rule about that lock (who starts,
who attaches, who takes over, when it goes) is in claim.py; this module tells the story:

    request = what the bake is told (checked; no side effects)
    with a claim on the fingerprint's bake:
        a new claim whose AMI appeared meanwhile returns it
        the claimed execution, or one started with the claim's token
        watched until it ends (a timeout or Ctrl-C keeps the claim for the next client)
    the outcome of the final poll
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code, was_refused
from tfbake.aws.catalog import find_by_fingerprint
from tfbake.aws.manifests import delete_manifest, store_manifest
from tfbake.bake.claim import claim_bake
from tfbake.bake.execution import CANCELLED, SUCCESS, TIMED_OUT, Snapshot, console_link
from tfbake.bake.lock import BakeLock
from tfbake.bake.request import image_name, lock_image_name, start_parameters
from tfbake.bake.timing import read_timing, with_breakdown
from tfbake.bake.watch import BakeStopped, Watch
from tfbake.model import tags
from tfbake.model.bake_timing import BakeTiming
from tfbake.model.errors import AwsError, BakeCancelled, BakeFailed, TfbakeError
from tfbake.model.plan import Plan
from tfbake.model.progress import ProgressSink, note
from tfbake.resolve.baseami import verify_architecture


@dataclass(frozen=True)
class BakeRun:
    execution_id: str
    attached: bool
    timing: BakeTiming | None = None  # None when no bake ran, or AWS could not tell
    # The ended execution as the last poll read it (GetAutomationExecution); empty when none.
    execution: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


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

    `taken_names` are AMI names still in use in the region (a failed or revoked AMI of the
    fingerprint): the new AMI's name is then suffixed from the lock's token. With `recheck`, a
    client that claims the bake anew looks in the catalog once more before starting: another
    client may have finished the same bake between our lookup and our claim. The timeout is the
    builder's unless given.
    """
    request = bake_request(plan, aws, taken_names)
    seconds = plan.image_set.builder.timeout_minutes * 60
    deadline = time.monotonic() + (seconds if timeout_seconds is None else timeout_seconds)
    watch = Watch(aws, on_progress, deadline, sleep)
    lock = BakeLock(aws.client("ssm"), plan.fingerprint.value, aws.effective_region)

    def tell(text: str) -> None:
        on_progress(note(text))

    with claim_bake(lock, aws, starter=request.start, read=watch.read, note=tell) as claim:
        if claim.is_new and recheck and _already_baked(plan, aws):
            return BakeRun(execution_id="", attached=True)
        execution_id = claim.record.execution_id or claim.start()
        try:
            final = watch.until_ended(execution_id, claim.execution, attached=not claim.is_new)
        except BakeStopped:
            claim.ended()  # stopped by the watch: nothing runs on for the lock to guard
            raise
        claim.ended()
    return _outcome(final, aws, attached=not claim.is_new)


@dataclass(frozen=True)
class BakeRequest:
    """What the bake of one plan is told; its start is idempotent by the claim's token."""

    plan: Plan
    aws: AwsContext
    image_name: str
    unique_name: bool

    def parameters(self, token: str) -> dict[str, list[str]]:
        # Derived from the token, not the clock: every client that starts the bake of one lock
        # must send the same parameters, or SSM refuses the retry.
        name = lock_image_name(self.image_name, token, unique=self.unique_name)
        return start_parameters(self.plan, self.aws.effective_region, name)

    def start(self, token: str) -> str:
        from tfbake.bake.documents import ensure_documents

        plan, aws = self.plan, self.aws
        region, ssm = aws.effective_region, aws.client("ssm")
        names = ensure_documents(ssm, runbook_name=plan.image_set.builder.document_name)
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
                    Parameters=self.parameters(token),
                    ClientToken=token,
                    Tags=[
                        {"Key": tags.FINGERPRINT, "Value": plan.fingerprint.value},
                        {"Key": tags.NAME, "Value": plan.image_set.name},
                    ],
                )
        except AwsError as err:
            # Only a start AWS refused leaves no bake behind; after a lost answer the bake may
            # run, and its record of inputs stays with it.
            if was_refused(err) and error_code(err) != "IdempotentParameterMismatch":
                _forget_unbaked_manifest(plan, aws)
            raise
        return str(response["AutomationExecutionId"])


def bake_request(plan: Plan, aws: AwsContext, taken_names: Collection[str]) -> BakeRequest:
    """The bake's request, checked before any lock is taken: bad input never holds a lock."""
    if plan.image_set.architecture:
        # The lookup trusted the declared architecture to save a call; a bake must not.
        verify_architecture(plan.base_ami_id, plan.architecture, aws)
    name = image_name(plan)
    start_parameters(plan, aws.effective_region, name)
    return BakeRequest(plan, aws, name, unique_name=name in taken_names)


def _already_baked(plan: Plan, aws: AwsContext) -> bool:
    lookup = find_by_fingerprint(
        aws.client("ec2"), plan.fingerprint.value, plan.image_set.ami_owners, aws.effective_region
    )
    return lookup.ready is not None


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


def _outcome(final: Snapshot, aws: AwsContext, *, attached: bool) -> BakeRun:
    region = aws.effective_region
    timing = read_timing(aws.client("ssm"), final.execution, region)
    if final.status == SUCCESS:
        return BakeRun(final.execution_id, attached, timing, final.execution)
    raise with_breakdown(_failure_error(aws, final), timing)


def _failure_error(aws: AwsContext, state: Snapshot) -> TfbakeError:
    from tfbake.bake.cancellation import sweep_builders
    from tfbake.bake.execution import command_output_tail

    region = aws.effective_region
    link = console_link(region, state.execution_id)
    builders = sweep_builders(aws, state.execution_id)
    if state.status in CANCELLED:
        return BakeCancelled(f"bake {state.execution_id} was cancelled{builders}; {link}")
    failure = state.failure
    step = failure.step if failure else "(unknown step)"
    message = failure.message if failure else ""
    tail = (
        command_output_tail(
            aws.client("ssm"),
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
