"""Failure injection and the record of Run Command invocations, shared by every execution.

Faults are set by tests, in-process or over HTTP (other processes, such as a `tfbake` CLI run
by Terraform, use the same endpoint), and stay until cleared: a fault on a step applies to
every execution that reaches that step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class RecordedCommand:
    """What a builder would have been told to do: the sandbox records commands, runs none."""

    command_id: str
    execution_id: str
    step_name: str
    document_name: str
    instance_ids: tuple[str, ...]
    parameters: dict[str, list[str]]
    status: str = "Success"
    output: str = ""
    requested_at: float = 0.0

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
        if "fail" not in body and "delay_seconds" not in body:
            raise ValueError("a step fault needs 'fail' or 'delay_seconds'")


@dataclass
class CommandLog:
    _commands: dict[str, RecordedCommand] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, command: RecordedCommand) -> None:
        with self._lock:
            self._commands[command.command_id] = replace(command, requested_at=time.time())

    def fail(self, command_id: str, message: str) -> None:
        with self._lock:
            command = self._commands.get(command_id)
            if command is not None:
                output = f"{command.output}tfbake: error: {message}\n"
                self._commands[command_id] = replace(command, status="Failed", output=output)

    def get(self, command_id: str) -> RecordedCommand | None:
        with self._lock:
            return self._commands.get(command_id)

    def all(self) -> list[RecordedCommand]:
        with self._lock:
            return sorted(self._commands.values(), key=lambda c: c.requested_at)

    def clear(self) -> None:
        with self._lock:
            self._commands.clear()
