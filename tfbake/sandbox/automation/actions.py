"""The Automation actions the sandbox can run, against the sandbox's own EC2 and SSM.

Each action calls the endpoint over HTTP with boto3, exactly as AWS's automation service calls
the APIs: responses have AWS's shape, so output selectors written for AWS work unchanged, and
moto stays the one source of truth for resources. These calls are marked internal (see
middleware.py) so they neither appear in the request log nor meet injected throttling: the log
counts what clients do, as AWS would bill it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tfbake.sandbox.automation.expressions import select
from tfbake.sandbox.faults import CommandLog, RecordedCommand
from tfbake.sandbox.ssm.command_logs import log_group_of, plugin_name
from tfbake.sandbox.ssm.run_command import (
    InvalidCommandParameters,
    command_parameters,
    parse_document,
    wait_for,
)
from tfbake.sandbox.ssm.values import text_of


class StepFailed(Exception):
    """The step's action failed; the message is what GetAutomationExecution reports."""


class StepCancelled(Exception):
    """The execution was stopped while the step was waiting."""


class CommandFailed(StepFailed):
    """A command step whose command ran and did not succeed; the step still names it."""

    def __init__(self, command_id: str, message: str) -> None:
        super().__init__(message)
        self.command_id = command_id


@dataclass(frozen=True)
class ActionContext:
    client: Callable[[str], Any]  # service name -> boto3 client in the execution's region
    cancelled: threading.Event
    execution_id: str
    step_name: str
    timeout_seconds: float
    commands: CommandLog
    fleet: Any = None  # real mode's machines: commands run in them instead of being recorded
    poll_seconds: float = 0.05
    # API name -> EC2's NotFound code when this read must not find its resource yet (faults.py)
    not_found: Callable[[str], str | None] = lambda _api: None


@dataclass(frozen=True)
class ActionResult:
    outputs: dict[str, Any] = field(default_factory=dict)  # the action's built-in outputs
    response: Any = None  # what the step's declared output selectors read
    next_step: str | None = None  # set by aws:branch
    command_id: str | None = None  # set by aws:runCommand


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def call_api(ctx: ActionContext, service: str, api: str, params: dict[str, Any]) -> Any:
    from botocore import xform_name
    from botocore.exceptions import ClientError, ParamValidationError

    client = ctx.client(service.lower())
    method = getattr(client, xform_name(api), None)
    if method is None:
        raise StepFailed(f"{service}:{api} is not an API of {service}")
    stale = ctx.not_found(api)
    if stale:
        raise StepFailed(f"{api}: {stale}: the resource does not exist (yet)")
    try:
        response = method(**params)
    except ClientError as err:
        error = err.response.get("Error", {})
        raise StepFailed(f"{api}: {error.get('Code')}: {error.get('Message')}") from err
    except ParamValidationError as err:
        raise StepFailed(f"{api}: invalid parameters: {err}") from err
    response.pop("ResponseMetadata", None)
    # Selectors work on the JSON AWS would return: timestamps become text.
    return json.loads(json.dumps(response, default=_json_default))


def execute_aws_api(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    params = dict(inputs)
    service, api = params.pop("Service"), params.pop("Api")
    return ActionResult(response=call_api(ctx, service, api, params))


def _property_call(ctx: ActionContext, inputs: dict[str, Any]) -> tuple[Any, list[str], str, list]:
    params = dict(inputs)
    service, api = params.pop("Service"), params.pop("Api")
    selector = params.pop("PropertySelector")
    desired = [text_of(v) for v in params.pop("DesiredValues")]
    response = call_api(ctx, service, api, params)
    return response, [text_of(v) for v in select(response, selector)], selector, desired


def wait_for_property(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    deadline = time.monotonic() + ctx.timeout_seconds
    while True:
        response, values, selector, desired = _property_call(ctx, inputs)
        if any(value in desired for value in values):
            return ActionResult(response=response)
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"timed out after {ctx.timeout_seconds:g}s waiting for {selector} to be one of "
                f"{desired}; it is {values}"
            )
        if ctx.cancelled.wait(ctx.poll_seconds):
            raise StepCancelled()


def assert_property(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    response, values, selector, desired = _property_call(ctx, inputs)
    if not any(value in desired for value in values):
        raise StepFailed(f"{selector} is {values}, not one of {desired}")
    return ActionResult(response=response)


def run_instances(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    # Like AWS's action, empty optional inputs (no subnet, no instance profile) are left out.
    params = {k: v for k, v in inputs.items() if v not in ("", [], None)}
    params["MinCount"] = int(params.pop("MinInstanceCount", 1))
    params["MaxCount"] = int(params.pop("MaxInstanceCount", 1))
    if "IamInstanceProfileName" in params:
        params["IamInstanceProfile"] = {"Name": params.pop("IamInstanceProfileName")}
    if "IamInstanceProfileArn" in params:
        params["IamInstanceProfile"] = {"Arn": params.pop("IamInstanceProfileArn")}
    if "UserData" in params:
        # The action takes it base64-encoded; boto3 encodes RunInstances' UserData itself. The
        # bytes as they are: user data may be gzipped, which cloud-init undoes.
        try:
            params["UserData"] = base64.b64decode(str(params["UserData"]), validate=True)
        except ValueError as err:
            raise StepFailed(f"UserData is not base64: {err}") from err
    response = call_api(ctx, "ec2", "RunInstances", params)
    ids = [instance["InstanceId"] for instance in response["Instances"]]
    _wait_for_instances(ctx, ids, "running")
    return ActionResult({"InstanceIds": ids, "InstanceStates": ["running"] * len(ids)}, response)


_STATE_CHANGES = {
    "running": "StartInstances",
    "stopped": "StopInstances",
    "terminated": "TerminateInstances",
}


def change_instance_state(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    ids = list(inputs.get("InstanceIds") or [])
    desired = inputs["DesiredState"]
    if not ids:
        raise StepFailed("InstanceIds is empty: there is no instance to change")
    if desired not in _STATE_CHANGES:
        raise StepFailed(f"DesiredState {desired!r} is not one of {sorted(_STATE_CHANGES)}")
    if not inputs.get("CheckStateOnly"):
        params: dict[str, Any] = {"InstanceIds": ids}
        if desired == "stopped" and inputs.get("Force"):
            params["Force"] = True
        call_api(ctx, "ec2", _STATE_CHANGES[desired], params)
    _wait_for_instances(ctx, ids, desired)
    return ActionResult()


def _wait_for_instances(ctx: ActionContext, ids: list[str], state: str) -> None:
    deadline = time.monotonic() + ctx.timeout_seconds
    while True:
        response = call_api(ctx, "ec2", "DescribeInstances", {"InstanceIds": ids})
        states = select(response, "$.Reservations..Instances..State.Name")
        if states and all(s == state for s in states):
            return
        if time.monotonic() >= deadline:
            raise StepFailed(f"instances {ids} did not reach {state} (they are {states})")
        if ctx.cancelled.wait(ctx.poll_seconds):
            raise StepCancelled()


def create_image(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    params = {
        "InstanceId": inputs["InstanceId"],
        "Name": inputs["ImageName"],
        "Description": inputs.get("ImageDescription", ""),
        "NoReboot": bool(inputs.get("NoReboot", False)),
    }
    image_id = call_api(ctx, "ec2", "CreateImage", params)["ImageId"]
    waited = wait_for_property(
        ctx,
        {
            "Service": "ec2",
            "Api": "DescribeImages",
            "ImageIds": [image_id],
            "PropertySelector": "$.Images[0].State",
            "DesiredValues": ["available"],
        },
    )
    return ActionResult({"ImageId": image_id, "ImageState": "available"}, waited.response)


def create_tags(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    if inputs.get("ResourceType", "EC2") != "EC2":
        raise StepFailed(f"the sandbox tags EC2 resources only, not {inputs['ResourceType']}")
    resources, tags = list(inputs.get("ResourceIds") or []), list(inputs.get("Tags") or [])
    if not resources or not tags:
        raise StepFailed("aws:createTags needs at least one resource and one tag")
    tags = [{"Key": text_of(t["Key"]), "Value": text_of(t["Value"])} for t in tags]
    call_api(ctx, "ec2", "CreateTags", {"Resources": resources, "Tags": tags})
    return ActionResult()


def run_command(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    name, ids = inputs["DocumentName"], list(inputs["InstanceIds"])
    check_document_hash(ctx, name, inputs)
    content = call_api(ctx, "ssm", "GetDocument", {"Name": name})["Content"]
    document = parse_document(content)
    try:
        parameters = command_parameters(
            name, document.get("parameters") or {}, inputs.get("Parameters") or {}
        )
    except InvalidCommandParameters as err:
        # Run Command validates parameters before any instance sees them; so does the sandbox.
        raise StepFailed(f"InvalidParameters: {err}") from err
    # Sent as any client sends it: moto records it (recorded mode), or the sandbox's own
    # SendCommand runs it in the instances' machines (real mode).
    request: dict[str, Any] = {"DocumentName": name, "InstanceIds": ids, "Parameters": parameters}
    output_config = inputs.get("CloudWatchOutputConfig")
    if output_config:
        request["CloudWatchOutputConfig"] = {
            "CloudWatchOutputEnabled": text_of(output_config.get("CloudWatchOutputEnabled"))
            == "true",
            **(
                {"CloudWatchLogGroupName": output_config["CloudWatchLogGroupName"]}
                if output_config.get("CloudWatchLogGroupName")
                else {}
            ),
        }
    sent = call_api(ctx, "ssm", "SendCommand", request)
    command_id = sent["Command"]["CommandId"]
    if ctx.fleet is None:
        logs = CommandOutput(log_group_of(output_config, name), plugin_name(document))
        return _recorded(ctx, command_id, name, ids, parameters, logs)
    ctx.commands.annotate(command_id, ctx.execution_id, ctx.step_name)
    timeout = float(inputs.get("TimeoutSeconds") or ctx.timeout_seconds)
    finished = wait_for(ctx.commands, command_id, ctx.cancelled, min(timeout, ctx.timeout_seconds))
    if finished is None:
        if ctx.cancelled.is_set():
            raise StepCancelled()
        raise CommandFailed(command_id, f"Command {command_id} did not finish in {timeout:g}s")
    invocation = finished.invocation(ids[0])
    outputs = {
        "CommandId": command_id,
        "Status": finished.status,
        "ResponseCode": invocation.response_code,
        "Output": invocation.plugin_output(),
    }
    if finished.status != "Success":
        raise CommandFailed(
            command_id,
            f"Command {command_id} returns unexpected invocation result: Status {finished.status}"
            f", ResponseCode {invocation.response_code} on {ids[0]}",
        )
    return ActionResult(outputs, command_id=command_id)


@dataclass(frozen=True)
class CommandOutput:
    log_group: str | None  # CloudWatch Logs group the agent sends output to, None for none
    plugin: str  # the plugin name in its streams' names


def _recorded(
    ctx: ActionContext,
    command_id: str,
    name: str,
    ids: list[str],
    parameters: dict[str, list[str]],
    logs: CommandOutput,
) -> ActionResult:
    output = (
        f"tfbake sandbox: {name} was recorded, not run, on {' '.join(ids)}\n"
        f"images: {' '.join(parameters.get('Images', [''])[0].split())}\n"
    )
    recorded = RecordedCommand(
        command_id,
        ctx.execution_id,
        ctx.step_name,
        name,
        tuple(ids),
        parameters,
        output=output,
        log_group=logs.log_group,
        plugin=logs.plugin,
        region=ctx.client("ssm").meta.region_name,
    )
    ctx.commands.record(recorded)
    outputs = {"CommandId": command_id, "Status": "Success", "ResponseCode": 0, "Output": output}
    return ActionResult(outputs, command_id=command_id)


def check_document_hash(ctx: ActionContext, name: str, inputs: dict[str, Any]) -> None:
    """Refuse a pinned DocumentHash that is not the document's, as Run Command does."""
    pinned = inputs.get("DocumentHash")
    if not pinned:
        return
    kind = inputs.get("DocumentHashType", "Sha256")
    if kind != "Sha256":
        raise StepFailed(f"InvalidDocument: the sandbox checks Sha256 document hashes, not {kind}")
    found = call_api(ctx, "ssm", "DescribeDocument", {"Name": name})["Document"].get("Hash")
    if found != pinned:
        raise StepFailed(f"InvalidDocument: the hash of document {name} does not match {pinned}")


def branch(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    for choice in inputs.get("Choices") or []:
        if _holds(choice):
            return ActionResult(next_step=choice["NextStep"])
    if inputs.get("Default"):
        return ActionResult(next_step=inputs["Default"])
    raise StepFailed("no choice of aws:branch matched and it has no Default")


def _holds(condition: dict[str, Any]) -> bool:
    if "And" in condition:
        return all(_holds(c) for c in condition["And"])
    if "Or" in condition:
        return any(_holds(c) for c in condition["Or"])
    if "Not" in condition:
        return not any(_holds(c) for c in condition["Not"])
    variable = condition["Variable"]
    text = text_of(variable)
    tests: dict[str, Callable[[Any], bool]] = {
        "StringEquals": lambda v: text == v,
        "EqualsIgnoreCase": lambda v: text.lower() == str(v).lower(),
        "StartsWith": lambda v: text.startswith(v),
        "EndsWith": lambda v: text.endswith(v),
        "Contains": lambda v: v in (variable if isinstance(variable, list) else text),
        "NumericEquals": lambda v: float(text) == float(v),
        "NumericGreater": lambda v: float(text) > float(v),
        "NumericLesser": lambda v: float(text) < float(v),
        "BooleanEquals": lambda v: text == text_of(v),
    }
    for operator, test in tests.items():
        if operator in condition:
            return test(condition[operator])
    raise StepFailed(f"unsupported aws:branch condition {sorted(condition)}")


def sleep(ctx: ActionContext, inputs: dict[str, Any]) -> ActionResult:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", str(inputs.get("Duration", "")))
    if not match:
        raise StepFailed("the sandbox's aws:sleep takes a Duration such as PT30S")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if ctx.cancelled.wait(hours * 3600 + minutes * 60 + seconds):
        raise StepCancelled()
    return ActionResult()


ACTIONS: dict[str, Callable[[ActionContext, dict[str, Any]], ActionResult]] = {
    "aws:executeAwsApi": execute_aws_api,
    "aws:waitForAwsResourceProperty": wait_for_property,
    "aws:assertAwsResourceProperty": assert_property,
    "aws:runInstances": run_instances,
    "aws:changeInstanceState": change_instance_state,
    "aws:createImage": create_image,
    "aws:createTags": create_tags,
    "aws:runCommand": run_command,
    "aws:branch": branch,
    "aws:sleep": sleep,
}
