"""Reading an SSM Automation execution: its status, its progress and why it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfbake.aws.calls import aws_errors, error_code, paginate
from tfbake.bake.contract import RECIPE_PLUGIN
from tfbake.model import tags
from tfbake.model.errors import AwsError

# Statuses of an execution that has not ended yet.
ACTIVE = frozenset(
    {
        "Pending",
        "InProgress",
        "Waiting",
        "Cancelling",
        "Scheduled",
        "RunbookInProgress",
        "PendingApproval",
        "Approved",
        "PendingChangeCalendarOverride",
    }
)
# What DescribeAutomationExecutions is asked for: a bake another client can attach to, and,
# adding one that is cancelling (its cancel workflow still runs), a bake still reading its
# documents. Both within ACTIVE.
ATTACHABLE = ["Pending", "InProgress", "Waiting"]
READING_DOCUMENTS = [*ATTACHABLE, "Cancelling"]
SUCCESS = "Success"
CANCELLED = frozenset({"Cancelled"})
TIMED_OUT = "TimedOut"
EXECUTION_NOT_FOUND = "AutomationExecutionNotFoundException"
OUTPUT_TAIL_LINES = 20


@dataclass(frozen=True)
class Snapshot:
    """One poll of an execution."""

    execution_id: str
    status: str
    current_step: str
    steps_done: int
    failure: Failure | None
    running_command_id: str | None = None  # the Run Command of a running aws:runCommand step
    # CloudWatch Logs group with the recipe's whole output, when the bake sends it there.
    recipe_log_group: str | None = None
    fingerprint: str = ""  # the Fingerprint parameter the execution was started with
    # GetAutomationExecution's answer this poll was made of: the final poll's is what the
    # outcome, its time breakdown and its proof of provenance are read from, once.
    execution: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class Failure:
    step: str
    message: str
    command_id: str | None


def console_link(region: str, execution_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/systems-manager/automation/execution/"
        f"{execution_id}?region={region}"
    )


def read_execution(ssm: Any, execution_id: str, region: str) -> dict[str, Any]:
    """GetAutomationExecution's answer; an AwsError (EXECUTION_NOT_FOUND when SSM does not know
    the id) otherwise."""
    with aws_errors(f"ssm:GetAutomationExecution {execution_id}", region):
        execution: dict[str, Any] = ssm.get_automation_execution(
            AutomationExecutionId=execution_id
        )["AutomationExecution"]
    return execution


def snapshot(ssm: Any, execution_id: str, region: str) -> Snapshot:
    execution = read_execution(ssm, execution_id, region)
    steps = step_executions(ssm, execution, region)
    done = [s for s in steps if s.get("StepStatus") in ("Success", "Failed", "TimedOut")]
    running = next((s for s in steps if s.get("StepStatus") in ("InProgress", "Pending")), None)
    current = running or (steps[-1] if steps else None)
    return Snapshot(
        execution_id=execution_id,
        status=execution.get("AutomationExecutionStatus", "Pending"),
        current_step=current.get("StepName", "") if current else "",
        steps_done=len(done),
        failure=_failure(execution, steps),
        running_command_id=_command_id(running) if running else None,
        recipe_log_group=_recipe_log_group(execution.get("Parameters") or {}),
        fingerprint=((execution.get("Parameters") or {}).get("Fingerprint") or [""])[0],
        execution=execution,
    )


def _recipe_log_group(parameters: dict[str, list[str]]) -> str | None:
    # The bake's own parameters, not the caller's spec: an attached client reads the same log.
    if (parameters.get("RecipeLogEnabled") or ["false"])[0].lower() != "true":
        return None
    groups = parameters.get("RecipeLogGroup") or []
    return groups[0] if groups else None


def step_executions(ssm: Any, execution: dict[str, Any], region: str) -> list[dict[str, Any]]:
    """Every step execution of `execution` (GetAutomationExecution's), truncated or not.

    GetAutomationExecution returns only the first step executions of a long execution and sets
    StepExecutionsTruncated; the whole list is then read, page by page, from
    DescribeAutomationStepExecutions.
    """
    if not execution.get("StepExecutionsTruncated"):
        return list(execution.get("StepExecutions", []))
    execution_id = execution["AutomationExecutionId"]
    with aws_errors(f"ssm:DescribeAutomationStepExecutions {execution_id}", region):
        return list(
            paginate(
                ssm,
                "describe_automation_step_executions",
                "StepExecutions",
                AutomationExecutionId=execution_id,
            )
        )


def _command_id(step: dict[str, Any]) -> str | None:
    command_ids = (step.get("Outputs", {}) or {}).get("CommandId") or []
    return command_ids[0] if command_ids else None


def _failure(execution: dict[str, Any], steps: list[dict[str, Any]]) -> Failure | None:
    failed = [s for s in steps if s.get("StepStatus") in ("Failed", "TimedOut", "Cancelled")]
    if not failed and execution.get("AutomationExecutionStatus") in ACTIVE | {SUCCESS}:
        return None
    # The first failure is the cause; later ones are the cleanup path reacting to it.
    step = failed[0] if failed else {}
    return Failure(
        step=step.get("StepName", "") or "(none)",
        message=(step.get("FailureMessage") or execution.get("FailureMessage") or "").strip(),
        command_id=_command_id(step),
    )


def command_output_tail(
    ssm: Any, command_id: str, region: str, *, logs: Any = None, log_group: str | None = None
) -> str:
    """The last lines the recipe printed; '' when unavailable.

    With a log group (and a CloudWatch Logs client), from the recipe's streams there: the real
    end of the output. Else from the command invocation, which keeps only the start:
    GetCommandInvocation the first 24,000 characters of stdout and 8,000 of stderr, far more
    than ListCommandInvocations' 2,500 of both, so it is read for each instance (the recipe
    ends a long output that AWS would cut with a summary of its failure).
    """
    try:
        with aws_errors(f"ssm:ListCommandInvocations {command_id}", region):
            invocations = ssm.list_command_invocations(CommandId=command_id)
        if logs is not None and log_group:
            instance_ids = [i["InstanceId"] for i in invocations.get("CommandInvocations", [])]
            tail = _logged_tail(logs, log_group, command_id, instance_ids, region)
            if tail:
                return tail
        texts = []
        for listed in invocations.get("CommandInvocations", []):
            with aws_errors(f"ssm:GetCommandInvocation {command_id}", region):
                invocation = ssm.get_command_invocation(
                    CommandId=command_id, InstanceId=listed["InstanceId"]
                )
            texts.append(invocation.get("StandardOutputContent", "") or "")
            texts.append(invocation.get("StandardErrorContent", "") or "")
    except Exception:  # the tail is a courtesy on an error path; never mask the real failure
        return ""
    lines = "\n".join(texts).strip().splitlines()
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


def _logged_tail(
    logs: Any, group: str, command_id: str, instance_ids: list[str], region: str
) -> str:
    lines: list[str] = []
    for instance_id in instance_ids:
        for kind in ("stdout", "stderr"):
            stream = f"{command_id}/{instance_id}/{RECIPE_PLUGIN}/{kind}"
            try:
                with aws_errors(f"logs:GetLogEvents {group} {stream}", region):
                    events = logs.get_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        startFromHead=False,
                        limit=OUTPUT_TAIL_LINES,
                    )["events"]
            except AwsError as err:
                if error_code(err) != "ResourceNotFoundException":  # no stderr at all: no stream
                    return ""  # an unreadable log: the invocation's start is all there is
                continue
            lines.extend(event["message"] for event in events)
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


def find_active_execution(ssm: Any, fingerprint: str, region: str) -> str | None:
    """The running bake of `fingerprint` (by its tag and parameter), None when there is none."""
    filters = [
        {"Key": "ExecutionStatus", "Values": ATTACHABLE},
        {"Key": "TagKey", "Values": [tags.FINGERPRINT]},
    ]
    with aws_errors("ssm:DescribeAutomationExecutions", region):
        listed = list(
            paginate(
                ssm,
                "describe_automation_executions",
                "AutomationExecutionMetadataList",
                Filters=filters,
            )
        )
    for metadata in listed:
        execution_id = metadata["AutomationExecutionId"]
        parameters = read_execution(ssm, execution_id, region).get("Parameters", {})
        if (parameters.get("Fingerprint") or [""])[0] == fingerprint:
            return str(execution_id)
    return None


def execution_status(ssm: Any, execution_id: str, region: str) -> str | None:
    """The execution's status, or None when SSM does not know it."""
    try:
        execution = read_execution(ssm, execution_id, region)
    except AwsError as err:
        if error_code(err) == EXECUTION_NOT_FOUND:
            return None
        raise
    return str(execution.get("AutomationExecutionStatus", ""))
