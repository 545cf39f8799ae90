"""SSM Automation executions in the sandbox: the runbook document itself, run step by step.

Flow control follows AWS: after a step succeeds the execution goes to its `nextStep`, else to
the next step in the document, and ends at `isEnd` or after the last step. After a failure,
`onFailure` decides: Abort (the default) ends the execution, Continue goes on as after a
success, `step:NAME` jumps to NAME. The final status is Failed when any critical step failed,
even if the execution went on to clean up; `isCritical` defaults to true unless onFailure is
Continue. A stopped execution runs none of its further steps, exactly as on AWS, so the
failure path does not run after a stop.

A step may name a cancel workflow (`onCancel: step:NAME`): when the execution is stopped during
that step, the execution runs from NAME (following nextStep as usual) for at most two minutes,
then ends Cancelled. AWS refuses onCancel on some actions; check_document refuses it too. A
step with `maxAttempts` runs again after a failure, up to that many times in all.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfbake.sandbox.automation.actions import (
    ACTIONS,
    ActionContext,
    CommandFailed,
    StepCancelled,
    StepFailed,
)
from tfbake.sandbox.automation.expressions import ExpressionError, select, substitute, typed_output
from tfbake.sandbox.faults import CommandLog, Faults
from tfbake.sandbox.ssm.allowed_patterns import value_problem

TERMINAL_STATUSES = frozenset({"Success", "Failed", "Cancelled", "TimedOut"})
_DEFAULT_STEP_TIMEOUT_SECONDS = 3600.0
# What AWS allows a cancel workflow, and the actions whose steps may not declare one.
CANCEL_WORKFLOW_SECONDS = 120.0
NO_ON_CANCEL_ACTIONS = frozenset({"aws:runInstances", "aws:createImage", "aws:createTags"})


class InvalidParameters(Exception):
    """Parameters that do not satisfy the document: StartAutomationExecution refuses them."""


def document_problems(document: dict[str, Any]) -> list[str]:
    """What CreateDocument refuses in an Automation document's flow control, '' for none."""
    steps = list(document.get("mainSteps") or [])
    names = {step.get("name") for step in steps}
    problems = []
    for step in steps:
        on_cancel = step.get("onCancel")
        if on_cancel is None or on_cancel == "Abort":
            continue
        name, action = step.get("name"), step.get("action")
        if action in NO_ON_CANCEL_ACTIONS:
            problems.append(f"step {name}: onCancel is not supported for {action}")
        elif not str(on_cancel).startswith("step:") or on_cancel[5:] not in names:
            problems.append(f"step {name}: onCancel {on_cancel!r} names no step of the document")
    for step in steps:
        attempts = step.get("maxAttempts", 1)
        if not isinstance(attempts, int) or attempts < 1:
            problems.append(f"step {step.get('name')}: maxAttempts must be a positive integer")
    return problems


@dataclass
class StepExecution:
    name: str
    action: str
    on_failure: str
    is_critical: bool
    is_end: bool
    next_step: str | None
    max_attempts: int = 1
    status: str = "InProgress"
    start: float = field(default_factory=time.time)
    end: float | None = None
    failure_message: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    step_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Execution:
    execution_id: str
    document_name: str
    document: dict[str, Any]
    parameters: dict[str, list[str]]  # as given, for GetAutomationExecution
    values: dict[str, Any]  # typed, defaults applied: what `{{ Name }}` resolves to
    region: str
    account: str
    tags: list[dict[str, str]]
    client_token: str | None
    document_version: str = "1"
    status: str = "Pending"
    start: float = field(default_factory=time.time)
    end: float | None = None
    failure_message: str | None = None
    outputs: dict[str, list[str]] = field(default_factory=dict)
    steps: list[StepExecution] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)


def resolve_parameters(document: dict[str, Any], given: dict[str, list[str]]) -> dict[str, Any]:
    declared: dict[str, Any] = document.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidParameters(f"Parameters {unknown} are not defined in the document")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = _typed(name, spec.get("type", "String"), given[name])
        elif "default" in spec:
            values[name] = spec["default"]
        else:
            raise InvalidParameters(f"Parameter {name} is required and has no default")
        _check_allowed(name, spec, values[name])
    return values


def _typed(name: str, kind: str, raw: list[str]) -> Any:
    import json

    try:
        if kind == "StringList":
            return list(raw)
        if kind == "MapList":
            return [json.loads(item) for item in raw]
        if len(raw) != 1:
            raise InvalidParameters(f"Parameter {name} of type {kind} takes exactly one value")
        if kind == "Integer":
            return int(raw[0])
        if kind == "Boolean":
            if raw[0].lower() not in ("true", "false"):
                raise ValueError(raw[0])
            return raw[0].lower() == "true"
        if kind == "StringMap":
            return json.loads(raw[0])
        return raw[0]
    except ValueError as err:
        raise InvalidParameters(f"Parameter {name} is not a valid {kind}: {err}") from err


def _check_allowed(name: str, spec: dict[str, Any], value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    pattern, allowed = spec.get("allowedPattern"), spec.get("allowedValues")
    for item in items:
        problem = (
            pattern and isinstance(item, str) and value_problem(name, pattern, item, agent=False)
        )
        if problem:
            raise InvalidParameters(problem)
        if allowed and item not in allowed:
            raise InvalidParameters(f"Parameter {name}={item!r} is not one of {allowed}")


class Runner:
    """Runs one execution in a background thread."""

    def __init__(
        self,
        execution: Execution,
        client: Callable[[str, str], Any],
        faults: Faults,
        commands: CommandLog,
        lock: threading.RLock,
        fleet: Any = None,
        cancel_workflow_seconds: float = CANCEL_WORKFLOW_SECONDS,
    ) -> None:
        self._fleet = fleet
        self._cancel_workflow_seconds = cancel_workflow_seconds
        self._execution = execution
        self._client = client
        self._faults = faults
        self._commands = commands
        self._lock = lock
        self.thread = threading.Thread(
            target=self._run, name=f"automation-{execution.execution_id}", daemon=True
        )

    def _run(self) -> None:
        ex = self._execution
        steps = list(ex.document.get("mainSteps") or [])
        index_of = {step["name"]: i for i, step in enumerate(steps)}
        variables: dict[str, Any] = {
            **ex.values,
            "automation:EXECUTION_ID": ex.execution_id,
            "global:REGION": ex.region,
            "global:ACCOUNT_ID": ex.account,
            "global:AWS_PARTITION": "aws",
        }
        with self._lock:
            cancelled_early = ex.cancelled.is_set()
            if not cancelled_early:
                ex.status = "InProgress"
        if cancelled_early:
            self._finish("Cancelled")
            return
        critical_failure: str | None = None
        position: int | None = 0 if steps else None
        while position is not None:
            step = steps[position]
            record, next_step = self._run_step(step, variables, ex.cancelled)
            if record.status == "Cancelled":
                on_cancel = str(step.get("onCancel") or "Abort")
                if on_cancel.startswith("step:"):
                    self._run_cancel_workflow(steps, index_of, on_cancel[5:], variables)
                self._finish("Cancelled")
                return
            if record.status == "Success":
                if step.get("isEnd"):
                    break
                target = next_step or step.get("nextStep")
            else:
                if record.is_critical and critical_failure is None:
                    critical_failure = f"Step {record.name} failed: {record.failure_message}"
                on_failure = record.on_failure
                if on_failure == "Abort":
                    break
                target = on_failure[5:] if on_failure.startswith("step:") else step.get("nextStep")
                if on_failure == "Continue" and step.get("isEnd"):
                    break
            if target is not None:
                position = index_of.get(target)
                if position is None:
                    critical_failure = critical_failure or f"Step {target} does not exist"
            else:
                position = position + 1 if position + 1 < len(steps) else None
        self._set_outputs(variables)
        self._finish("Failed" if critical_failure else "Success", critical_failure)

    def _run_cancel_workflow(
        self,
        steps: list[dict[str, Any]],
        index_of: dict[str, int],
        first: str,
        variables: dict[str, Any],
    ) -> None:
        """Run from `first` until an end, a failure that aborts, or AWS's time limit."""
        out_of_time = threading.Event()
        timer = threading.Timer(self._cancel_workflow_seconds, out_of_time.set)
        timer.daemon = True
        timer.start()
        try:
            position = index_of.get(first)
            while position is not None and not out_of_time.is_set():
                step = steps[position]
                record, next_step = self._run_step(step, variables, out_of_time)
                if record.status == "Success":
                    target = None if step.get("isEnd") else next_step or step.get("nextStep")
                elif record.status == "Failed" and record.on_failure.startswith("step:"):
                    target = record.on_failure[5:]
                elif record.status == "Failed" and record.on_failure == "Continue":
                    target = None if step.get("isEnd") else step.get("nextStep")
                else:
                    break
                if target is None and not step.get("isEnd"):
                    position = position + 1 if position + 1 < len(steps) else None
                else:
                    position = index_of.get(target) if target else None
        finally:
            timer.cancel()

    def _run_step(
        self, step: dict[str, Any], variables: dict[str, Any], cancelled: threading.Event
    ) -> tuple[StepExecution, str | None]:
        attempts = int(step.get("maxAttempts", 1))
        for attempt in range(1, attempts + 1):
            record, next_step = self._attempt_step(step, variables, cancelled)
            if record.status != "Failed" or attempt == attempts:
                return record, next_step
            with self._lock:  # as on AWS, one step execution whatever the attempts
                self._execution.steps.remove(record)
        raise AssertionError("unreachable")

    def _attempt_step(
        self, step: dict[str, Any], variables: dict[str, Any], cancelled: threading.Event
    ) -> tuple[StepExecution, str | None]:
        ex = self._execution
        on_failure = str(step.get("onFailure", "Abort"))
        record = StepExecution(
            name=step["name"],
            action=step["action"],
            on_failure=on_failure,
            is_critical=bool(step.get("isCritical", on_failure != "Continue")),
            is_end=bool(step.get("isEnd", False)),
            next_step=step.get("nextStep"),
            max_attempts=int(step.get("maxAttempts", 1)),
        )
        with self._lock:
            ex.steps.append(record)
        next_step: str | None = None
        try:
            delay = self._faults.delay_for(record.name)
            if delay and cancelled.wait(delay):
                raise StepCancelled()
            if cancelled.is_set():
                raise StepCancelled()
            inputs = substitute(step.get("inputs") or {}, variables)
            record.inputs = {k: _text(v) for k, v in inputs.items()}
            action = ACTIONS.get(record.action)
            if action is None:
                raise StepFailed(f"the sandbox does not implement {record.action}")
            context = ActionContext(
                client=lambda service: self._client(service, ex.region),
                cancelled=cancelled,
                execution_id=ex.execution_id,
                step_name=record.name,
                timeout_seconds=float(step.get("timeoutSeconds", _DEFAULT_STEP_TIMEOUT_SECONDS)),
                commands=self._commands,
                fleet=self._fleet,
                not_found=lambda api: self._faults.take_not_found(record.name, api),
            )
            result = action(context, inputs)
            outputs = dict(result.outputs)
            for declared in step.get("outputs") or []:
                found = select(result.response, declared["Selector"])
                kind = declared.get("Type", "String")
                outputs[declared["Name"]] = typed_output(found, kind, declared["Selector"])
            # An injected failure strikes after the action ran: the worst case for cleanup,
            # since whatever the step created now exists and must be undone.
            injected = self._faults.failure_for(record.name)
            if injected is not None:
                if result.command_id:
                    # As on AWS, a failed command step still names its command, whose output
                    # is where a user finds out why the recipe failed.
                    self._commands.fail(result.command_id, injected)
                    record.outputs = {"CommandId": [result.command_id], "Status": ["Failed"]}
                raise StepFailed(injected)
            for name, value in outputs.items():
                variables[f"{record.name}.{name}"] = value
            next_step = result.next_step
            status, message = "Success", None
            record.outputs = {k: _text_list(v) for k, v in outputs.items()}
        except StepCancelled:
            status, message = "Cancelled", None
        except CommandFailed as err:
            # As on AWS, a failed command step still names its command, whose output is where
            # a user finds out why it failed.
            record.outputs = {"CommandId": [err.command_id], "Status": ["Failed"]}
            status, message = "Failed", str(err)
        except (StepFailed, ExpressionError) as err:
            status, message = "Failed", str(err)
        except Exception as err:  # a sandbox bug must still end the step, never hang the client
            status, message = "Failed", f"{type(err).__name__}: {err}"
        with self._lock:
            record.status, record.failure_message, record.end = status, message, time.time()
        return record, next_step

    def _set_outputs(self, variables: dict[str, Any]) -> None:
        outputs = {}
        for name in self._execution.document.get("outputs") or []:
            if name in variables:
                outputs[name] = _text_list(variables[name])
        with self._lock:
            self._execution.outputs = outputs

    def _finish(self, status: str, failure: str | None = None) -> None:
        with self._lock:
            ex = self._execution
            ex.status = status
            ex.failure_message = failure if status == "Failed" else None
            ex.end = time.time()


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _text_list(value: Any) -> list[str]:
    from tfbake.sandbox.ssm.values import text_of

    return [text_of(v) for v in value] if isinstance(value, list) else [text_of(value)]
