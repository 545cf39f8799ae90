"""SSM actions about managed instances and commands that moto lacks or cannot answer.

Instances: every running EC2 instance is an online managed instance, so builders come online as
soon as they run. Commands: the invocations of commands the sandbox recorded for aws:runCommand
steps (see actions.py); any other command is left to moto.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tfbake.sandbox.controls import SandboxControls
from tfbake.sandbox.ssm_api import ApiError, Handler, NotHandled, Request, paged


def describe_instance_information(controls: SandboxControls, request: Request) -> dict[str, Any]:
    # Every running instance has an online agent: builders come online as soon as they run.
    ec2 = controls.client("ec2", request.region)
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
    started = datetime.fromtimestamp(command.requested_at, timezone.utc).isoformat()
    return {
        "CommandId": command.command_id,
        "InstanceId": instance_id,
        "DocumentName": command.document_name,
        "DocumentVersion": "1",
        "PluginName": "RunRecipe",
        "ResponseCode": 0 if command.status == "Success" else 1,
        "ExecutionStartDateTime": started,
        "ExecutionEndDateTime": started,
        "Status": command.status,
        "StatusDetails": command.status,
        "StandardOutputContent": command.output,
        "StandardOutputUrl": "",
        "StandardErrorContent": "",
        "StandardErrorUrl": "",
    }


def list_command_invocations(controls: SandboxControls, request: Request) -> dict[str, Any]:
    body = request.body
    invocations = []
    for command in controls.commands.all():
        if body.get("CommandId") not in (None, command.command_id):
            continue
        for instance_id in command.instance_ids:
            if body.get("InstanceId") not in (None, instance_id):
                continue
            invocation: dict[str, Any] = {
                "CommandId": command.command_id,
                "InstanceId": instance_id,
                "DocumentName": command.document_name,
                "DocumentVersion": "1",
                "RequestedDateTime": command.requested_at,
                "Status": command.status,
                "StatusDetails": command.status,
            }
            if body.get("Details"):
                plugin = {
                    "Name": "RunRecipe",
                    "Status": command.status,
                    "Output": command.output,
                    "ResponseCode": 0 if command.status == "Success" else 1,
                }
                invocation["CommandPlugins"] = [plugin]
            invocations.append(invocation)
    items, token = paged(invocations, body, default_size=50)
    return {"CommandInvocations": items, **token}


COMMAND_HANDLERS: dict[str, Handler] = {
    "DescribeInstanceInformation": describe_instance_information,
    "GetCommandInvocation": get_command_invocation,
    "ListCommandInvocations": list_command_invocations,
}
