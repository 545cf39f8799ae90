"""SSM actions about managed instances and commands that moto lacks or cannot answer.

Instances: an instance without an instance profile never registers (its agent has no
credentials). Otherwise, in recorded mode every running EC2 instance is an online managed
instance at once; in real mode once its machine's agent unit is active.

Commands: the invocations of the commands the sandbox recorded or ran (see
automation/actions.py and machines/agent.py); in real mode SendCommand runs in the machines,
and ListCommands lists them. Any other command is left to moto.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from tfbake.sandbox.controls import SandboxControls
from tfbake.sandbox.faults import STDERR_KEPT_CHARS, STDOUT_KEPT_CHARS, RecordedCommand
from tfbake.sandbox.ssm.command_logs import log_group_of, plugin_name
from tfbake.sandbox.ssm.run_command import (
    AWS_RUN_SHELL_SCRIPT,
    InvalidCommandParameters,
    command_parameters,
    parse_document,
    run_in_machines,
)
from tfbake.sandbox.ssm_api.automation import (
    ApiError,
    Handler,
    NotHandled,
    Request,
    paged,
    refuse_oversized,
)


def describe_instance_information(controls: SandboxControls, request: Request) -> dict[str, Any]:
    # Recorded mode: every running instance has an online agent at once. Real mode: only once
    # its machine's agent unit is active.
    ec2 = controls.client("ec2", request.region)
    fleet = controls.fleet
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
    )
    wanted: dict[str, list[str]] = {}
    for item in request.body.get("InstanceInformationFilterList") or []:
        wanted[item["key"]] = item["valueSet"]
    for item in request.body.get("Filters") or []:
        wanted[item["Key"]] = item["Values"]
    infos = []
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                # Without an instance profile the agent has no credentials and never registers.
                if not instance.get("IamInstanceProfile"):
                    continue
                if fleet is not None and not fleet.agent_online(instance["InstanceId"]):
                    continue
                info = _instance_information(instance)
                if all(_info_matches(info, key, values) for key, values in wanted.items()):
                    infos.append(info)
    page_items, token = paged(infos, request.body, default_size=50)
    return {"InstanceInformationList": page_items, **token}


def _instance_information(instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "InstanceId": instance["InstanceId"],
        "PingStatus": "Online",
        "LastPingDateTime": datetime.now(timezone.utc).timestamp(),
        "AgentVersion": "3.3.2746.0",
        "IsLatestVersion": True,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "ResourceType": "EC2Instance",
        "IPAddress": instance.get("PrivateIpAddress", ""),
        "ComputerName": instance.get("PrivateDnsName", ""),
    }


_INFO_FILTER_FIELDS = {
    "InstanceIds": "InstanceId",
    "PingStatus": "PingStatus",
    "PlatformTypes": "PlatformType",
    "ResourceType": "ResourceType",
    "AgentVersion": "AgentVersion",
}


def _info_matches(info: dict[str, Any], key: str, values: list[str]) -> bool:
    field = _INFO_FILTER_FIELDS.get(key)
    if field is None:
        raise ApiError("InvalidInstanceInformationFilterValue", f"unsupported filter {key}")
    return str(info[field]) in values


def get_command_invocation(controls: SandboxControls, request: Request) -> dict[str, Any]:
    command = controls.commands.get(request.body["CommandId"])
    if command is None:
        raise NotHandled()
    instance_id = request.body["InstanceId"]
    if instance_id not in command.instance_ids:
        raise ApiError("InvocationDoesNotExist", f"{instance_id} was not sent this command")
    invocation = command.invocation(instance_id)
    return {
        "CommandId": command.command_id,
        "InstanceId": instance_id,
        "DocumentName": command.document_name,
        "DocumentVersion": "1",
        "PluginName": command.step_name,
        "ResponseCode": invocation.response_code,
        "ExecutionStartDateTime": _timestamp(invocation.started_at),
        "ExecutionEndDateTime": _timestamp(invocation.ended_at),
        "Status": invocation.status,
        "StatusDetails": _STATUS_DETAILS.get(invocation.status, invocation.status),
        # Run Command keeps only the start of long output here.
        "StandardOutputContent": invocation.stdout[:STDOUT_KEPT_CHARS],
        "StandardOutputUrl": "",
        "StandardErrorContent": invocation.stderr[:STDERR_KEPT_CHARS],
        "StandardErrorUrl": "",
    }


_STATUS_DETAILS = {"TimedOut": "ExecutionTimedOut"}


def _timestamp(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat() if at else ""


def list_command_invocations(controls: SandboxControls, request: Request) -> dict[str, Any]:
    body = request.body
    invocations = []
    for command in controls.commands.all():
        if body.get("CommandId") not in (None, command.command_id):
            continue
        for instance_id in command.instance_ids:
            if body.get("InstanceId") not in (None, instance_id):
                continue
            result = command.invocation(instance_id)
            invocation: dict[str, Any] = {
                "CommandId": command.command_id,
                "InstanceId": instance_id,
                "DocumentName": command.document_name,
                "DocumentVersion": "1",
                "RequestedDateTime": command.requested_at,
                "Status": result.status,
                "StatusDetails": _STATUS_DETAILS.get(result.status, result.status),
            }
            if body.get("Details"):
                plugin = {
                    "Name": command.step_name,
                    "Status": result.status,
                    "Output": result.plugin_output(),
                    "ResponseCode": result.response_code,
                }
                invocation["CommandPlugins"] = [plugin]
            invocations.append(invocation)
    items, token = paged(invocations, body, default_size=50)
    return {"CommandInvocations": items, **token}


def send_command(controls: SandboxControls, request: Request) -> dict[str, Any]:
    """Both modes check the parameters as Run Command does (the 64 KB with the document, each
    allowedPattern as SSM's engines take it). Real mode then runs the document in each
    instance's machine; recorded mode leaves it to moto, which records it."""
    body = request.body
    name, ids = body["DocumentName"], list(body.get("InstanceIds") or [])
    fleet = controls.fleet
    content = _command_content(controls, request.region, name)
    if content is None:
        if fleet is None:
            raise NotHandled()
        raise ApiError("InvalidDocument", f"Document {name} does not exist")
    refuse_oversized(name, content, body.get("Parameters") or {}, "MaxDocumentSizeExceeded")
    document = parse_document(content)
    try:
        parameters = command_parameters(
            name, document.get("parameters") or {}, body.get("Parameters") or {}
        )
    except InvalidCommandParameters as err:
        raise ApiError("InvalidParameters", str(err)) from err
    if fleet is None:
        raise NotHandled()
    if not ids:
        raise ApiError("InvalidInstanceId", "SendCommand names no instance")
    offline = [i for i in ids if not fleet.agent_online(i)]
    if offline:
        raise ApiError("InvalidInstanceId", f"Instances {offline} not in a valid state for account")
    plugin = "aws:runShellScript"
    command = RecordedCommand(
        str(uuid.uuid4()),
        "",
        plugin,
        name,
        tuple(ids),
        parameters,
        log_group=log_group_of(body.get("CloudWatchOutputConfig"), name),
        plugin=plugin_name(document),
        region=request.region,
    )
    run_in_machines(fleet, controls.commands, command, document)
    now = datetime.now(timezone.utc).timestamp()
    return {
        "Command": {
            "CommandId": command.command_id,
            "DocumentName": name,
            "DocumentVersion": "1",
            "InstanceIds": ids,
            "Parameters": parameters,
            "RequestedDateTime": now,
            "Status": "Pending",
            "StatusDetails": "Pending",
            "TimeoutSeconds": int(body.get("TimeoutSeconds") or 3600),
            "TargetCount": len(ids),
        }
    }


def _command_content(controls: SandboxControls, region: str, name: str) -> str | None:
    """The document's content as SSM stores it, or None when there is no such document."""
    if name == AWS_RUN_SHELL_SCRIPT:
        from tfbake.sandbox.machines.agent import RUN_SHELL_SCRIPT

        return json.dumps(RUN_SHELL_SCRIPT)
    ssm = controls.client("ssm", region)
    try:
        return str(ssm.get_document(Name=name)["Content"])
    except ssm.exceptions.InvalidDocument:
        return None


def list_commands(controls: SandboxControls, request: Request) -> dict[str, Any]:
    """Real mode's commands never reach moto, so the sandbox lists them itself."""
    if controls.fleet is None:
        raise NotHandled()
    wanted = request.body.get("CommandId")
    commands = [
        {
            "CommandId": command.command_id,
            "DocumentName": command.document_name,
            "InstanceIds": list(command.instance_ids),
            "Parameters": command.parameters,
            "RequestedDateTime": command.requested_at,
            "Status": command.status,
            "StatusDetails": _STATUS_DETAILS.get(command.status, command.status),
        }
        for command in controls.commands.all()
        if wanted in (None, command.command_id)
    ]
    items, token = paged(commands, request.body, default_size=50)
    return {"Commands": items, **token}


COMMAND_HANDLERS: dict[str, Handler] = {
    "SendCommand": send_command,
    "ListCommands": list_commands,
    "DescribeInstanceInformation": describe_instance_information,
    "GetCommandInvocation": get_command_invocation,
    "ListCommandInvocations": list_command_invocations,
}
