"""Following a bake's execution until it ends: polls, progress, and a builder that never comes
online stopped early with its cause.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from tfbake.aws.calls import AwsContext, aws_errors, is_throttling
from tfbake.bake.contract import WAIT_FOR_BUILDER_ONLINE
from tfbake.bake.execution import Snapshot, command_output_tail, console_link, snapshot
from tfbake.model.errors import AwsError, BakeFailed, BakeTimedOut
from tfbake.model.progress import Progress, ProgressSink

# Poll quickly at first (short bakes), then settle at a rate that stays far below SSM's
# throttling limits: 7.5 GetAutomationExecution calls a minute, 11.5 calls with the recipe's
# output read while it runs. The end of a bake is learnt at most 8 s late.
POLL_FIRST_SECONDS = 2.0
POLL_MAX_SECONDS = 8.0
# The recipe's output is read at most this often while it runs (one ListCommandInvocations).
RECIPE_TAIL_SECONDS = 30.0
# A builder not yet online has its console read at most this often (one GetConsoleOutput).
AGENT_CHECK_SECONDS = 10.0
MAX_THROTTLED_POLLS = 30


class BakeStopped(BakeFailed):
    """The watch stopped the bake itself (its builder will never come online)."""


class Watch:
    """Polls of one client's bake, bounded by its deadline (a time.monotonic() value)."""

    def __init__(
        self,
        aws: AwsContext,
        on_progress: ProgressSink,
        deadline: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.aws = aws
        self.on_progress = on_progress
        self.deadline = deadline
        self.sleep = sleep

    def read(self, execution_id: str) -> Snapshot:
        """A poll that outlasts throttling: the client retries, then this skips polls, not
        bakes. Never past the deadline: a throttled poll is no reason to wait longer."""
        ssm, region = self.aws.client("ssm"), self.aws.effective_region
        throttled = 0
        while True:
            try:
                return snapshot(ssm, execution_id, region)
            except AwsError as err:
                throttled += 1
                if not is_throttling(err) or throttled >= MAX_THROTTLED_POLLS:
                    raise
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise timed_out(
                        execution_id, region, "GetAutomationExecution throttled"
                    ) from None
                self.sleep(min(POLL_FIRST_SECONDS * 2**throttled, POLL_MAX_SECONDS, left))

    def until_ended(self, execution_id: str, first: Snapshot | None, *, attached: bool) -> Snapshot:
        """Poll until the execution ends, starting from `first`, a poll just made (if any)."""
        from tfbake.bake.steps import runbook_step_count

        ssm, region = self.aws.client("ssm"), self.aws.effective_region
        started = time.monotonic()
        interval = POLL_FIRST_SECONDS
        recipe = _RecipeTail(ssm, region)
        agent = _AgentWatch(self.aws, execution_id)
        while True:
            state = first or self.read(execution_id)
            first = None
            agent.check(state)
            elapsed = time.monotonic() - started
            self.on_progress(Progress(execution_id, state.current_step,
                                      state.steps_done + state.active, runbook_step_count(),
                                      elapsed, attached, recipe.last_line(state)))  # fmt: skip
            if not state.active:
                return state
            if time.monotonic() >= self.deadline:
                raise timed_out(execution_id, region, f"at step {state.current_step}")
            self.sleep(min(interval, max(self.deadline - time.monotonic(), 0.1)))
            interval = min(interval * 2, POLL_MAX_SECONDS)


def timed_out(execution_id: str, region: str, where: str) -> BakeTimedOut:
    return BakeTimedOut(
        f"bake {execution_id} still running when the client's timeout ran out ({where}); it "
        f"goes on in AWS: rerun to attach to it, or stop it with `tfbake cancel {execution_id}`; "
        + console_link(region, execution_id)
    )


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

    def __init__(self, aws: AwsContext, execution_id: str) -> None:
        self.aws = aws
        self.execution_id = execution_id
        self.since: float | None = None
        self.rate = _Rate(AGENT_CHECK_SECONDS)

    def check(self, state: Snapshot) -> None:
        from tfbake.bake.agent_diagnosis import offline_builder_cause
        from tfbake.bake.cancellation import sweep_builders

        if state.current_step != WAIT_FOR_BUILDER_ONLINE or not state.active:
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
        # Its cancel workflow terminates the builder; the sweep covers the rest.
        with contextlib.suppress(AwsError), aws_errors("ssm:StopAutomationExecution", region):
            self.aws.client("ssm").stop_automation_execution(
                AutomationExecutionId=self.execution_id, Type="Cancel"
            )
        builders = sweep_builders(self.aws, self.execution_id)
        raise BakeStopped(
            f"bake {self.execution_id} stopped at step {WAIT_FOR_BUILDER_ONLINE}: "
            f"{cause}{builders}; " + console_link(region, self.execution_id)
        )


class _RecipeTail:
    """The last line a running recipe printed, read at a bounded rate; '' when AWS has none."""

    def __init__(self, ssm: object, region: str) -> None:
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
