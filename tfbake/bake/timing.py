"""How long a bake took, part by part: the execution's step times and the recipe's own timings.

AWS records when each step of an execution started and ended (StepExecutions'
ExecutionStartTime and ExecutionEndTime). The phases a user reads group the runbook's steps;
inside the recipe, the recipe prints one line per image pull (and for a Docker install), which
is read back from the command's output. Region copies are timed by the client that makes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from tfbake.aws.calls import aws_errors
from tfbake.bake.contract import (
    COMMAND_ID_OUTPUT,
    IDENTIFY_BUILDER,
    INSTANCE_ID_OUTPUT,
    RUN_RECIPE,
    step_output,
)
from tfbake.model.bake_timing import BakeTiming, RecipePart, StepTime, timing_lines
from tfbake.model.errors import TfbakeError

# What the recipe prints (tfbake/bake/recipe.sh, say_timed).
TIMED_LINE = re.compile(
    r"^tfbake: timed (pull|pulls|install) (\S+) ([0-9]+\.[0-9]{3}) s$", re.MULTILINE
)
# Where the recipe's closing summary begins (recipe.sh, finish_bounded_output).
SUMMARY_LINE = re.compile(r"^tfbake: summary: ", re.MULTILINE)


def read_timing(ssm: Any, execution: Mapping[str, Any], region: str) -> BakeTiming | None:
    """The breakdown of an ended execution (GetAutomationExecution's answer, as the last poll
    read it); None when AWS cannot tell (a courtesy, as the recipe's output tail is: it never
    replaces the outcome a caller reports)."""
    try:
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
            started=_epoch(step["ExecutionStartTime"]) or 0.0,
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
    """The recipe's timed lines in its output (pure). A failed recipe's summary repeats its
    last lines; only what comes before it counts."""
    body = SUMMARY_LINE.split(output, maxsplit=1)[0]
    return tuple(
        RecipePart(kind, subject, float(seconds))
        for kind, subject, seconds in TIMED_LINE.findall(body)
    )


def _recipe_output(ssm: Any, execution: Mapping[str, Any], region: str) -> str:
    # The builder is named by one step and the command by another: one GetCommandInvocation.
    command_id = step_output(dict(execution), RUN_RECIPE, COMMAND_ID_OUTPUT)
    instance_id = step_output(dict(execution), IDENTIFY_BUILDER, INSTANCE_ID_OUTPUT)
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


def with_breakdown(err: TfbakeError, timing: BakeTiming | None) -> TfbakeError:
    """A failed bake's error with its breakdown, for the report after the recipe's output."""
    if timing is not None and timing.steps:
        err.breakdown = tuple(timing_lines(timing))
    return err
