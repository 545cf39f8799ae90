"""The sandbox's own state beside moto's: automation executions, faults, recorded commands.

One instance per server. The executions run in background threads and reach EC2 and SSM
through boto3 clients pointed at the server itself, marked with INTERNAL_HEADER.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tfbake.sandbox.automation.engine import Execution, Runner
from tfbake.sandbox.faults import CommandLog, Faults, RecordedCommand

INTERNAL_HEADER = "X-Tfbake-Sandbox-Internal"
# How long reset() waits for running executions to notice they were stopped.
_RESET_JOIN_SECONDS = 5.0


@dataclass
class Limits:
    """AWS's account limits that tests lower to reach them cheaply; reset() restores them."""

    documents: int = 500  # documents an account owns (CreateDocument: DocumentLimitExceeded)
    # GetAutomationExecution's StepExecutions, past which it sets StepExecutionsTruncated.
    step_executions_kept: int = 100
    # How long a cancelled execution's onCancel workflow may run (AWS: two minutes).
    cancel_workflow_seconds: float = 120.0


@dataclass
class SandboxControls:
    faults: Faults = field(default_factory=Faults)
    commands: CommandLog = field(default_factory=CommandLog)
    lock: threading.RLock = field(default_factory=threading.RLock)
    executions: dict[str, Execution] = field(default_factory=dict)
    client_tokens: dict[str, str] = field(default_factory=dict)
    runners: list[Runner] = field(default_factory=list)
    endpoint_url: str = ""
    fleet: Any = None  # the real-instances mode's machines (machines/fleet.py), or None
    limits: Limits = field(default_factory=Limits)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.commands.on_output = self._send_command_output

    def _send_command_output(
        self, command: RecordedCommand, instance_id: str, stdout: str, stderr: str
    ) -> None:
        from tfbake.sandbox.ssm.command_logs import send_output

        assert command.log_group is not None
        logs = self.client("logs", command.region or "us-east-1")
        send_output(
            logs, command.log_group, command.command_id, instance_id, command.plugin, stdout, stderr
        )

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for the sandbox itself, whose requests are marked internal."""
        with self.lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._new_client(service, region)
            return self._clients[key]

    def _new_client(self, service: str, region: str) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            # A private session: boto3's default one is not safe to share across threads.
            self._session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
            )
        client = self._session.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

        def mark_internal(request: Any, **_: Any) -> None:
            request.headers[INTERNAL_HEADER] = "1"

        client.meta.events.register("before-sign", mark_internal)
        return client

    def start(self, execution: Execution) -> None:
        runner = Runner(
            execution,
            self.client,
            self.faults,
            self.commands,
            self.lock,
            self.fleet,
            cancel_workflow_seconds=self.limits.cancel_workflow_seconds,
        )
        with self.lock:
            self.executions[execution.execution_id] = execution
            if execution.client_token:
                self.client_tokens[execution.client_token] = execution.execution_id
            self.runners = [r for r in self.runners if r.thread.is_alive()] + [runner]
        runner.thread.start()

    def reset(self) -> None:
        """Stop every execution, then forget executions, faults and recorded commands."""
        with self.lock:
            runners = list(self.runners)
            for execution in self.executions.values():
                execution.cancelled.set()
        for runner in runners:
            runner.thread.join(timeout=_RESET_JOIN_SECONDS)
        with self.lock:
            self.executions.clear()
            self.client_tokens.clear()
            self.runners.clear()
        self.faults.clear()
        self.commands.clear()
        self.limits = Limits()
