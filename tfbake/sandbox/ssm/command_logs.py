"""Run Command's CloudWatch output in the sandbox: what the SSM agent sends to a log group.

With `CloudWatchOutputConfig` enabled, the agent writes each plugin's output to the streams
`<CommandId>/<InstanceId>/<PluginName>/stdout` and `.../stderr` of the group named there (by
default `/aws/ssm/<DocumentName>`), creating the group when it is missing. Unlike
GetCommandInvocation, which keeps the first 24,000 characters, the log holds the whole output.
moto's logs backend stores the events; the sandbox sends them when an invocation's output is
known (the agent streams as it goes, which no test of the sandbox needs).
"""

from __future__ import annotations

import time
from typing import Any

# PutLogEvents takes at most 10,000 events and 1 MiB a call, each event at most 256 KiB.
_EVENTS_PER_CALL = 5_000
_EVENT_CHARACTERS = 200_000
_SHELL_PLUGIN = "aws:runShellScript"


def stream_name(command_id: str, instance_id: str, plugin: str, kind: str) -> str:
    return f"{command_id}/{instance_id}/{plugin}/{kind}"


def default_group(document_name: str) -> str:
    return f"/aws/ssm/{document_name}"


def plugin_name(document: dict[str, Any]) -> str:
    """The plugin name in stream names: the step's name (schema 2.2), else the plugin's own."""
    if str(document.get("schemaVersion")) != "1.2":
        for step in document.get("mainSteps") or []:
            if step.get("action") == _SHELL_PLUGIN:
                return str(step.get("name") or _SHELL_PLUGIN).replace(":", "-")
    return _SHELL_PLUGIN.replace(":", "-")


def log_group_of(config: dict[str, Any] | None, document_name: str) -> str | None:
    """The group a command's CloudWatchOutputConfig sends output to; None when disabled."""
    if not config or str(config.get("CloudWatchOutputEnabled", "")).lower() != "true":
        return None
    return str(config.get("CloudWatchLogGroupName") or default_group(document_name))


def send_output(
    logs: Any, group: str, command_id: str, instance_id: str, plugin: str, stdout: str, stderr: str
) -> None:
    """Append `stdout` and `stderr` to the command's streams, creating group and streams."""
    _create(logs.create_log_group, logGroupName=group)
    for kind, text in (("stdout", stdout), ("stderr", stderr)):
        if not text:
            continue
        stream = stream_name(command_id, instance_id, plugin, kind)
        _create(logs.create_log_stream, logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [
            {"timestamp": now, "message": line[:_EVENT_CHARACTERS] or " "}
            for line in text.splitlines()
        ]
        for start in range(0, len(events), _EVENTS_PER_CALL):
            batch = events[start : start + _EVENTS_PER_CALL]
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def _create(call: Any, **params: Any) -> None:
    from botocore.exceptions import ClientError

    try:
        call(**params)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise
