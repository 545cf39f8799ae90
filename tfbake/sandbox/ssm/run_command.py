"""Run Command in the sandbox: parameters checked as the service checks them, then, in real
mode, the document run on each instance's machine (machines/agent.py) in the background.

Both the automation's aws:runCommand steps and SendCommand come here, so a document behaves
the same whichever way it is sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Any

from tfbake.sandbox.faults import CommandLog, Invocation, RecordedCommand
from tfbake.sandbox.ssm.allowed_patterns import value_problem
from tfbake.sandbox.ssm.values import text_of

AWS_RUN_SHELL_SCRIPT = "AWS-RunShellScript"


class InvalidCommandParameters(Exception):
    """Parameters the document does not declare, lacks, or whose values fail allowedPattern."""


def command_parameters(
    document_name: str, declared: dict[str, Any], given: dict[str, Any]
) -> dict[str, list[str]]:
    """Every declared parameter's values (defaults applied), as Run Command validates them."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidCommandParameters(f"{document_name} has no parameters {unknown}")
    result: dict[str, list[str]] = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif "default" in spec:
            value = spec["default"]
        else:
            raise InvalidCommandParameters(f"{document_name} needs parameter {name}")
        values = [text_of(v) for v in value] if isinstance(value, list) else [text_of(value)]
        pattern = spec.get("allowedPattern")
        for item in values:
            # The agent checks again with Go's RE2 (allowed_patterns.py).
            problem = pattern and value_problem(name, pattern, item, agent=True)
            if problem:
                raise InvalidCommandParameters(problem)
        result[name] = values
    return result


def parse_document(content: str) -> dict[str, Any]:
    import yaml

    try:
        return json.loads(content)
    except ValueError:
        return yaml.safe_load(content) or {}


def run_in_machines(
    fleet: Any,
    commands: CommandLog,
    command: RecordedCommand,
    document: dict[str, Any],
    cancelled: threading.Event | None = None,
) -> None:
    """Record `command` as in progress and run it on each of its instances' machines."""
    from tfbake.sandbox.machines.agent import run_document

    pending = {iid: Invocation(started_at=time.time()) for iid in command.instance_ids}
    commands.record(replace(command, status="InProgress"))
    for instance_id, invocation in pending.items():
        commands.set_invocation(command.command_id, instance_id, invocation)

    def run(instance_id: str) -> None:
        machine = fleet.machine(instance_id)
        if machine is None or not fleet.agent_online(instance_id):
            message = f"{instance_id} is not an online managed instance\n"
            result = Invocation("Failed", -1, "", message, time.time(), time.time())
        else:
            outcome = run_document(
                machine, command.command_id, document, command.parameters, cancelled
            )
            result = Invocation(
                outcome.status,
                outcome.response_code,
                outcome.stdout,
                outcome.stderr,
                outcome.started,
                outcome.ended,
            )
        commands.set_invocation(command.command_id, instance_id, result)

    for instance_id in command.instance_ids:
        threading.Thread(
            target=run, args=(instance_id,), name=f"command-{instance_id}", daemon=True
        ).start()


def wait_for(
    commands: CommandLog, command_id: str, cancelled: threading.Event, timeout: float
) -> RecordedCommand | None:
    """The finished command, or None if `cancelled` was set or `timeout` passed first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command = commands.get(command_id)
        if command is not None and command.status != "InProgress":
            return command
        if cancelled.wait(0.2):
            return None
    return None
