"""Failure injection and the record of Run Command invocations, shared by every execution.

Faults are set by tests, in-process or over HTTP (other processes, such as a `tfbake` CLI run
by Terraform, use the same endpoint), and stay until cleared: a fault on a step applies to
every execution that reaches that step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

# What Run Command keeps of a command's output (GetCommandInvocation, ListCommandInvocations).
STDOUT_KEPT_CHARS = 24_000
STDERR_KEPT_CHARS = 8_000
PLUGIN_OUTPUT_KEPT_CHARS = 2_500
# What EC2 answers a read of a resource it does not know (yet).
NOT_FOUND_ERRORS = {
    "DescribeImages": "InvalidAMIID.NotFound",
    "DescribeInstances": "InvalidInstanceID.NotFound",
}


@dataclass(frozen=True)
class Invocation:
    """One instance's run of a command: its status, exit code and whole output."""

    status: str = "InProgress"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0

    def plugin_output(self) -> str:
        # Stdout, then stderr after the agent's separator, cut to what AWS keeps.
        text = self.stdout + (f"\n----------ERROR-------\n{self.stderr}" if self.stderr else "")
        return text[:PLUGIN_OUTPUT_KEPT_CHARS]


@dataclass(frozen=True)
class RecordedCommand:
    """A Run Command invocation: recorded only (recorded mode), or run in machines (real mode).

    A recorded command has one status and output for every instance; a command that ran has an
    Invocation per instance, which is what the invocation APIs report.
    """

    command_id: str
    execution_id: str
    step_name: str
    document_name: str
    instance_ids: tuple[str, ...]
    parameters: dict[str, list[str]]
    status: str = "Success"
    output: str = ""
    requested_at: float = 0.0
    invocations: dict[str, Invocation] = field(default_factory=dict)
    # Where the agent sends the output (CloudWatchOutputConfig), None when it does not; the
    # plugin names the streams (ssm/command_logs.py).
    log_group: str | None = None
    plugin: str = ""
    region: str = ""

    def invocation(self, instance_id: str) -> Invocation:
        if instance_id in self.invocations:
            return self.invocations[instance_id]
        code = 0 if self.status == "Success" else 1
        return Invocation(self.status, code, self.output, "", self.requested_at, self.requested_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "CommandId": self.command_id,
            "ExecutionId": self.execution_id,
            "StepName": self.step_name,
            "DocumentName": self.document_name,
            "InstanceIds": list(self.instance_ids),
            "Parameters": self.parameters,
            "Status": self.status,
            "Output": self.output,
        }


@dataclass
class Faults:
    failures: dict[str, str] = field(default_factory=dict)  # step name -> failure message
    delays: dict[str, float] = field(default_factory=dict)  # step name -> seconds
    throttles: dict[str, int] = field(default_factory=dict)  # API action -> responses left
    denials: dict[str, int] = field(default_factory=dict)  # API action -> responses left
    # step name -> reads left that, like an eventually consistent read on AWS, do not find
    # their resource yet (what was just created): DescribeImages, DescribeInstances.
    not_found: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_step(self, step: str, message: str) -> None:
        with self._lock:
            self.failures[step] = message

    def delay_step(self, step: str, seconds: float) -> None:
        with self._lock:
            self.delays[step] = seconds

    def throttle(self, action: str, times: int) -> None:
        with self._lock:
            self.throttles[action] = times

    def deny(self, action: str, times: int) -> None:
        with self._lock:
            self.denials[action] = times

    def not_found_reads(self, step: str, times: int = 1) -> None:
        with self._lock:
            self.not_found[step] = times

    def take_not_found(self, step: str, api: str) -> str | None:
        """EC2's error code when this read by `step` must not find its resource yet, else None."""
        code = NOT_FOUND_ERRORS.get(api)
        return code if code and self._take(self.not_found, step) else None

    def failure_for(self, step: str) -> str | None:
        with self._lock:
            return self.failures.get(step)

    def delay_for(self, step: str) -> float:
        with self._lock:
            return self.delays.get(step, 0.0)

    def take_throttle(self, action: str) -> bool:
        """True when this call of `action` must be throttled (and counts it)."""
        return self._take(self.throttles, action)

    def take_denial(self, action: str) -> bool:
        """True when this call of `action` must be refused as unauthorised (and counts it)."""
        return self._take(self.denials, action)

    def _take(self, counters: dict[str, int], action: str) -> bool:
        with self._lock:
            left = counters.get(action, 0)
            if left <= 0:
                return False
            counters[action] = left - 1
            return True

    def clear(self) -> None:
        with self._lock:
            self.failures.clear()
            self.delays.clear()
            self.throttles.clear()
            self.denials.clear()
            self.not_found.clear()

    def apply_json(self, body: dict[str, Any]) -> None:
        """One fault from the HTTP API's JSON body (see middleware.py)."""
        if "throttle" in body:
            spec = body["throttle"]
            self.throttle(str(spec["action"]), int(spec.get("times", 1)))
            return
        if "deny" in body:
            spec = body["deny"]
            self.deny(str(spec["action"]), int(spec.get("times", 1)))
            return
        step = str(body["step"])
        if "fail" in body:
            self.fail_step(step, str(body["fail"]))
        if "delay_seconds" in body:
            self.delay_step(step, float(body["delay_seconds"]))
        if "not_found_reads" in body:
            self.not_found_reads(step, int(body["not_found_reads"]))
        if not {"fail", "delay_seconds", "not_found_reads"} & set(body):
            raise ValueError("a step fault needs 'fail', 'delay_seconds' or 'not_found_reads'")


# (command, instance id, stdout, stderr): output an instance's agent sends to CloudWatch Logs.
OutputSink = Callable[[RecordedCommand, str, str, str], None]


@dataclass
class CommandLog:
    _commands: dict[str, RecordedCommand] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Receives the output of commands sent with CloudWatch output (set by SandboxControls).
    on_output: OutputSink | None = None

    def _send(self, command: RecordedCommand, instance_id: str, stdout: str, stderr: str) -> None:
        if self.on_output is not None and command.log_group:
            self.on_output(command, instance_id, stdout, stderr)

    def record(self, command: RecordedCommand) -> None:
        with self._lock:
            self._commands[command.command_id] = replace(command, requested_at=time.time())
        if command.status != "InProgress" and not command.invocations:
            for instance_id in command.instance_ids:  # recorded: its output is known at once
                self._send(command, instance_id, command.output, "")

    def annotate(self, command_id: str, execution_id: str, step_name: str) -> None:
        """Name the automation step that sent a command (the SendCommand call cannot)."""
        with self._lock:
            command = self._commands.get(command_id)
            if command is not None:
                self._commands[command_id] = replace(
                    command, execution_id=execution_id, step_name=step_name
                )

    def set_invocation(self, command_id: str, instance_id: str, invocation: Invocation) -> None:
        with self._lock:
            command = self._commands[command_id]
            invocations = {**command.invocations, instance_id: invocation}
            statuses = {i.status for i in invocations.values()}
            # The command's own status: InProgress while any runs, else the worst outcome.
            status = next(
                (s for s in ("InProgress", "TimedOut", "Failed", "Cancelled") if s in statuses),
                "Success",
            )
            self._commands[command_id] = replace(command, invocations=invocations, status=status)
        if invocation.status != "InProgress":
            self._send(command, instance_id, invocation.stdout, invocation.stderr)

    def fail(self, command_id: str, message: str) -> None:
        line = f"tfbake: error: {message}\n"
        with self._lock:
            command = self._commands.get(command_id)
            if command is None:
                return
            output = f"{command.output}{line}"
            invocations = {
                iid: replace(i, status="Failed", response_code=1, stdout=i.stdout + line)
                for iid, i in command.invocations.items()
            }
            self._commands[command_id] = replace(
                command, status="Failed", output=output, invocations=invocations
            )
        for instance_id in command.instance_ids:
            self._send(command, instance_id, line, "")

    def get(self, command_id: str) -> RecordedCommand | None:
        with self._lock:
            return self._commands.get(command_id)

    def all(self) -> list[RecordedCommand]:
        with self._lock:
            return sorted(self._commands.values(), key=lambda c: c.requested_at)

    def clear(self) -> None:
        with self._lock:
            self._commands.clear()
