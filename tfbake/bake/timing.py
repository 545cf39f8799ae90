"""How long a bake took, part by part: the execution's step times and the recipe's own timings.

AWS records when each step of an execution started and ended (StepExecutions'
ExecutionStartTime and ExecutionEndTime). The phases a user reads group the runbook's steps;
inside the recipe, the recipe prints one line per image pull (and for a Docker install), which
is read back from the command's output. Region copies are timed by the client that makes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tfbake.aws.calls import aws_errors
from tfbake.model.errors import TfbakeError

LAUNCH, ONLINE, RECIPE, STOP, IMAGE, CLEANUP, COPIES = (
    "launch", "online", "recipe", "stop", "image", "cleanup", "copies",
)  # fmt: skip
PHASE_ORDER = (LAUNCH, ONLINE, RECIPE, STOP, IMAGE, CLEANUP, COPIES)
# The runbook's steps by phase; any other step (the failure path's) is cleanup.
STEP_PHASES: Mapping[str, str] = {
    "DescribeBaseImage": LAUNCH,
    "ChooseVolumeKey": LAUNCH,
    "LaunchBuilder": LAUNCH,
    "LaunchBuilderWithKmsKey": LAUNCH,
    "IdentifyBuilder": LAUNCH,
    "WaitForBuilderOnline": ONLINE,
    "RunRecipe": RECIPE,
    "StopBuilder": STOP,
    "CreateImage": IMAGE,
    "WaitForImage": IMAGE,
    "AssertImageAvailable": IMAGE,
    "TagImageExtra": IMAGE,
    "FindImageSnapshots": IMAGE,
    "TagSnapshots": IMAGE,
    "TagSnapshotsExtra": IMAGE,
    "TerminateBuilder": IMAGE,
    "MarkImageReady": IMAGE,
}
RECIPE_STEP = "RunRecipe"
BUILDER_STEP = "IdentifyBuilder"
# What the recipe prints (tfbake/bake/recipe.sh, say_timed).
TIMED_LINE = re.compile(
    r"^tfbake: timed (pull|pulls|install) (\S+) ([0-9]+\.[0-9]{3}) s$", re.MULTILINE
)


@dataclass(frozen=True)
class StepTime:
    name: str
    status: str
    started: float  # seconds since the epoch
    ended: float | None  # None while the step runs

    @property
    def phase(self) -> str:
        return STEP_PHASES.get(self.name, CLEANUP)

    @property
    def seconds(self) -> float:
        return (self.ended - self.started) if self.ended is not None else 0.0


@dataclass(frozen=True)
class RecipePart:
    """A part of the recipe it timed itself: the pull of one image, the Docker install."""

    kind: str  # "pull", "pulls" (all pulls, side by side) or "install"
    subject: str  # the pinned reference pulled, "all", or what was installed
    seconds: float


@dataclass(frozen=True)
class BakeTiming:
    execution_id: str
    started: float | None
    ended: float | None
    steps: tuple[StepTime, ...]
    recipe: tuple[RecipePart, ...] = ()
    copies_seconds: float | None = None  # the region copies, when this client made any

    @property
    def seconds(self) -> float:
        """The execution's span in AWS."""
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started

    @property
    def pulls(self) -> tuple[RecipePart, ...]:
        return tuple(part for part in self.recipe if part.kind == "pull")

    def phases(self) -> dict[str, float]:
        """Seconds per phase that ran, in the bake's order."""
        totals: dict[str, float] = {}
        for step in self.steps:
            totals[step.phase] = totals.get(step.phase, 0.0) + step.seconds
        if self.copies_seconds is not None:
            totals[COPIES] = self.copies_seconds
        return {phase: totals[phase] for phase in PHASE_ORDER if phase in totals}

    def with_copies(self, seconds: float) -> BakeTiming:
        return replace(self, copies_seconds=seconds)


def read_timing(ssm: Any, execution_id: str, region: str) -> BakeTiming | None:
    """The breakdown of an ended execution; None when AWS cannot tell (a courtesy, as the
    recipe's output tail is: it never replaces the outcome a caller reports)."""
    try:
        with aws_errors(f"ssm:GetAutomationExecution {execution_id}", region):
            execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)[
                "AutomationExecution"
            ]
        timing = timing_of(execution)
        output = _recipe_output(ssm, execution, region)
    except TfbakeError:
        return None
    return replace(timing, recipe=recipe_parts(output))


def timing_of(execution: Mapping[str, Any]) -> BakeTiming:
    """The step times of one GetAutomationExecution answer (pure)."""
    steps = tuple(
        StepTime(
            name=str(step.get("StepName", "")),
            status=str(step.get("StepStatus", "")),
            started=_epoch(step["ExecutionStartTime"]),
            ended=_epoch(step.get("ExecutionEndTime")),
        )
        for step in execution.get("StepExecutions", [])
        if step.get("ExecutionStartTime") is not None
    )
    return BakeTiming(
        execution_id=str(execution.get("AutomationExecutionId", "")),
        started=_epoch(execution.get("ExecutionStartTime")),
        ended=_epoch(execution.get("ExecutionEndTime")),
        steps=steps,
    )


def recipe_parts(output: str) -> tuple[RecipePart, ...]:
    """The recipe's timed lines in its output (pure)."""
    return tuple(
        RecipePart(kind, subject, float(seconds))
        for kind, subject, seconds in TIMED_LINE.findall(output)
    )


def _recipe_output(ssm: Any, execution: Mapping[str, Any], region: str) -> str:
    # The builder is named by one step and the command by another: one GetCommandInvocation.
    outputs = {s.get("StepName"): s.get("Outputs") or {} for s in execution["StepExecutions"]}
    command_id = (outputs.get(RECIPE_STEP, {}).get("CommandId") or [""])[0]
    instance_id = (outputs.get(BUILDER_STEP, {}).get("InstanceId") or [""])[0]
    if not command_id or not instance_id:
        return ""
    with aws_errors(f"ssm:GetCommandInvocation {command_id}", region):
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    return str(invocation.get("StandardOutputContent", "") or "")


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, datetime) else float(value)


# ---- as people and programs read it -------------------------------------------------------


def timing_lines(timing: BakeTiming) -> list[str]:
    """The breakdown as text: one line per phase, each pull under the recipe."""
    lines = [f"bake {timing.execution_id} took {_seconds(timing.seconds)} in AWS:"]
    for phase, seconds in timing.phases().items():
        lines.append(f"  {phase:<8} {_seconds(seconds):>8}")
        if phase == RECIPE:
            lines += [
                f"    {part.kind} {part.subject} {_seconds(part.seconds)}" for part in timing.recipe
            ]
    return lines


def timing_json(timing: BakeTiming) -> dict[str, Any]:
    return {
        "execution_id": timing.execution_id,
        "seconds": _rounded(timing.seconds),
        # A list: the bake's order survives a JSON printer that sorts keys.
        "phases": [{"name": p, "seconds": _rounded(s)} for p, s in timing.phases().items()],
        "steps": [
            {
                "name": s.name,
                "phase": s.phase,
                "status": s.status,
                # From the execution's start to the step's.
                "offset": _rounded(s.started - (timing.started or s.started)),
                "seconds": _rounded(s.seconds),
            }
            for s in timing.steps
        ],
        "pulls": [{"image": p.subject, "seconds": p.seconds} for p in timing.pulls],
        "pulls_seconds": next((p.seconds for p in timing.recipe if p.kind == "pulls"), None),
        "installs": [
            {"name": p.subject, "seconds": p.seconds} for p in timing.recipe if p.kind == "install"
        ],
    }


def with_breakdown(err: TfbakeError, timing: BakeTiming | None) -> TfbakeError:
    """A failed bake's error with its breakdown, for the report after the recipe's output."""
    if timing is not None and timing.steps:
        err.breakdown = tuple(timing_lines(timing))
    return err


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s"


def _rounded(seconds: float) -> float:
    return round(seconds, 3)
