"""Run Command inside a machine, the way the SSM agent runs a document on an instance.

For each `aws:runShellScript` step the agent writes the step's commands to
`/var/lib/amazon/ssm/<instance-id>/document/orchestration/<command-id>/awsrunShellScript/<step>/
_script.sh`, runs it with `sh` from that directory as root with a bare environment, as a
process of the agent's own unit (where the machine's systemd expects the agent's commands), and
keeps stdout and stderr beside it. Parameters reach the script two ways, as on the agent: every
`{{ Name }}` in the commands is replaced by the value (a StringList that stands alone on a line
becomes one line per item), and a parameter with `interpolationType: ENV_VAR` is also the
environment variable `SSM_<Name>`. The exit code decides Success or Failed; a step that runs
past its `timeoutSeconds` is killed and the command is TimedOut.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from tfbake.sandbox.machines.machine import AGENT_PATH, AGENT_UNIT, Machine, MachineError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.:-]+)\s*\}\}")
DEFAULT_TIMEOUT_SECONDS = 3600

# AWS's own document, as AWS publishes it (schema 1.2): moto does not ship it.
RUN_SHELL_SCRIPT = {
    "schemaVersion": "1.2",
    "description": "Run a shell script or specify the commands to run.",
    "parameters": {
        "commands": {
            "type": "StringList",
            "description": "(Required) Specify a shell script or a command to run.",
            "minItems": 1,
            "displayType": "textarea",
        },
        "workingDirectory": {
            "type": "String",
            "default": "",
            "description": "(Optional) The path to the working directory on your instance.",
            "maxChars": 4096,
        },
        "executionTimeout": {
            "type": "String",
            "default": "3600",
            "description": "(Optional) The time in seconds for a command to complete before it "
            "is considered to have failed. Default is 3600 (1 hour). Maximum is 172800 (48 hours).",
            "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|"
            "(172[0-7][0-9]{2})|(172800)",
        },
    },
    "runtimeConfig": {
        "aws:runShellScript": {
            "properties": [
                {
                    "id": "0.aws:runShellScript",
                    "runCommand": "{{ commands }}",
                    "workingDirectory": "{{ workingDirectory }}",
                    "timeoutSeconds": "{{ executionTimeout }}",
                }
            ]
        }
    },
}


@dataclass(frozen=True)
class Outcome:
    status: str  # Success, Failed or TimedOut
    response_code: int
    stdout: str
    stderr: str
    started: float
    ended: float


@dataclass(frozen=True)
class _Step:
    name: str
    lines: list[str]
    working_directory: str
    timeout_seconds: int


def run_document(
    machine: Machine,
    command_id: str,
    document: dict[str, Any],
    parameters: dict[str, list[str]],
    cancelled: Any = None,
) -> Outcome:
    """Run every shell step of `document` in order; stops at the first that does not succeed."""
    started = time.time()
    declared = document.get("parameters") or {}
    env = {
        "PATH": AGENT_PATH,
        "AWS_SSM_INSTANCE_ID": machine.instance_id,
        **{
            f"SSM_{name}": " ".join(parameters.get(name, []))
            for name, spec in declared.items()
            if spec.get("interpolationType") == "ENV_VAR"
        },
    }
    stdout, stderr, code, status = [], [], 0, "Success"
    for step in _shell_steps(document, parameters):
        out, err, code, status = _run_step(machine, command_id, step, env, cancelled)
        stdout.append(out)
        stderr.append(err)
        if status != "Success":
            break
    return Outcome(status, code, "".join(stdout), "".join(stderr), started, time.time())


def _shell_steps(document: dict[str, Any], parameters: dict[str, list[str]]) -> list[_Step]:
    if str(document.get("schemaVersion")) == "1.2":
        plugins = (document.get("runtimeConfig") or {}).get("aws:runShellScript") or {}
        raw = [(p.get("id", "0.aws:runShellScript"), p) for p in plugins.get("properties", [])]
    else:
        raw = [
            (step.get("name", "runShellScript"), step.get("inputs") or {})
            for step in document.get("mainSteps") or []
            if step.get("action") == "aws:runShellScript"
        ]
    steps = []
    for name, inputs in raw:
        timeout = _interpolate_text(str(inputs.get("timeoutSeconds", "")), parameters)
        steps.append(
            _Step(
                name=name.replace(":", ""),
                lines=_interpolate_lines(inputs.get("runCommand") or [], parameters),
                working_directory=_interpolate_text(
                    str(inputs.get("workingDirectory", "")), parameters
                ),
                timeout_seconds=int(timeout) if timeout.strip() else DEFAULT_TIMEOUT_SECONDS,
            )
        )
    return steps


def _interpolate_lines(commands: Any, parameters: dict[str, list[str]]) -> list[str]:
    lines = [commands] if isinstance(commands, str) else list(commands)
    result: list[str] = []
    for line in lines:
        alone = _PLACEHOLDER.fullmatch(line.strip())
        if alone and alone.group(1) in parameters:
            result.extend(parameters[alone.group(1)])
        else:
            result.append(_interpolate_text(line, parameters))
    return result


def _interpolate_text(text: str, parameters: dict[str, list[str]]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return ",".join(parameters[name]) if name in parameters else match.group(0)

    return _PLACEHOLDER.sub(value, text)


def _run_step(
    machine: Machine, command_id: str, step: _Step, env: dict[str, str], cancelled: Any
) -> tuple[str, str, int, str]:
    inside = (
        f"/var/lib/amazon/ssm/{machine.instance_id}/document/orchestration/{command_id}"
        f"/awsrunShellScript/{step.name}"
    )
    on_host = machine.root / inside.lstrip("/")
    on_host.mkdir(parents=True, exist_ok=True)
    script = on_host / "_script.sh"
    script.write_text("\n".join(step.lines) + "\n")
    script.chmod(0o700)
    workdir = step.working_directory or inside
    script_inside = f"{inside}/_script.sh"
    stdout_path, stderr_path = on_host / "stdout", on_host / "stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        try:
            process = machine.enter(
                # The shell waits for the script, as the agent's does: a script that
                # replaced the shell (exec) was seen to report exit 1 after ending with 0.
                ["sh", "-c", 'cd "$1" || exit 1; "$2"; exit $?', "sh", workdir, script_inside],
                env,
                unit=AGENT_UNIT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        except MachineError as error:
            return "", f"{error}\n", 1, "Failed"
        status = _wait(process, step.timeout_seconds, cancelled)
    code = process.returncode if status != "TimedOut" else 124
    if status == "Success" and code != 0:
        status = "Failed"
    return (
        stdout_path.read_text(errors="replace"),
        stderr_path.read_text(errors="replace"),
        code,
        status,
    )


def _wait(process: subprocess.Popen[bytes], timeout: int, cancelled: Any) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            process.wait(timeout=0.2)
            return "Success"
        except subprocess.TimeoutExpired:
            pass
        late = time.monotonic() >= deadline
        if late or (cancelled is not None and cancelled.is_set()):
            # The script and everything it started share its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "TimedOut" if late else "Cancelled"
