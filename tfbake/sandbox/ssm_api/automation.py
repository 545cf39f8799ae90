"""SSM Automation API actions, which moto lacks, answered from the sandbox's state (controls.py).

Each handler takes the request's JSON body and returns the response's JSON body, in the shapes
of the SSM API reference, so boto3 parses them like AWS's. Errors carry AWS's error codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfbake.sandbox.automation.engine import (
    TERMINAL_STATUSES,
    Execution,
    InvalidParameters,
    StepExecution,
    document_problems,
    resolve_parameters,
)
from tfbake.sandbox.controls import SandboxControls
from tfbake.sandbox.ssm.document_limits import DOCUMENT_LIMIT_BYTES, document_bytes


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class NotHandled(Exception):
    """Not ours after all (e.g. a command moto sent itself): moto answers the request."""


@dataclass(frozen=True)
class Request:
    region: str
    account: str
    body: dict[str, Any]


def start_automation_execution(controls: SandboxControls, request: Request) -> dict[str, Any]:
    import yaml

    body = request.body
    name, given = body["DocumentName"], body.get("Parameters") or {}
    _check_parameter_shape(given)
    token = body.get("ClientToken")
    if token:
        try:
            uuid.UUID(token)
        except ValueError as err:
            raise ApiError("ValidationException", "ClientToken must be a UUID") from err
        existing = _by_token(controls, token, name, given)
        if existing:
            return {"AutomationExecutionId": existing}
    content, version = _automation_document(
        controls, request.region, name, body.get("DocumentVersion")
    )
    # AWS states the 64 KB with the run-time values for every document type but names no error
    # of StartAutomationExecution for it: the sandbox refuses with the error that call gives
    # for parameters, so that a runbook that might be refused there is refused here.
    refuse_oversized(name, content, given, "InvalidAutomationExecutionParametersException")
    document = yaml.safe_load(content)
    try:
        values = resolve_parameters(document, given)
    except InvalidParameters as err:
        raise ApiError("InvalidAutomationExecutionParametersException", str(err)) from err
    execution = Execution(
        execution_id=str(uuid.uuid4()),
        document_name=name,
        document=document,
        parameters=given,
        values=values,
        region=request.region,
        account=request.account,
        tags=list(body.get("Tags") or []),
        client_token=token,
        document_version=version,
    )
    with controls.lock:
        # Checked again under the lock: two requests with one token race to this point.
        existing = _by_token(controls, token, name, given) if token else None
        if existing:
            return {"AutomationExecutionId": existing}
        controls.start(execution)
    return {"AutomationExecutionId": execution.execution_id}


# The limits of StartAutomationExecution's Parameters in the SSM API (botocore's service model
# states them; AWS enforces them): a value that passes here passes there.
MAX_PARAMETERS = 200
MAX_VALUES = 50
MAX_VALUE_CHARACTERS = 512


def _check_parameter_shape(given: dict[str, Any]) -> None:
    if len(given) > MAX_PARAMETERS:
        raise ApiError("ValidationException", f"at most {MAX_PARAMETERS} parameters")
    for key, values in given.items():
        if len(values) > MAX_VALUES:
            raise ApiError("ValidationException", f"{key}: at most {MAX_VALUES} values")
        for value in values:
            if not 1 <= len(value) <= MAX_VALUE_CHARACTERS:
                raise ApiError(
                    "ValidationException",
                    f"Value at 'parameters' failed to satisfy constraint: {key} values must have "
                    f"length between 1 and {MAX_VALUE_CHARACTERS}",
                )


def _by_token(controls: SandboxControls, token: str, name: str, given: Any) -> str | None:
    with controls.lock:
        execution_id = controls.client_tokens.get(token)
        if execution_id is None:
            return None
        execution = controls.executions[execution_id]
        if execution.document_name != name or execution.parameters != given:
            raise ApiError(
                "IdempotentParameterMismatch",
                "the ClientToken was used before with a different document or parameters",
            )
        return execution_id


def _automation_document(
    controls: SandboxControls, region: str, name: str, version: str | None
) -> tuple[str, str]:
    """The document's content and the version run: the one asked for, else the default."""
    from botocore.exceptions import ClientError

    try:
        found = controls.client("ssm", region).get_document(
            Name=name, **({"DocumentVersion": version} if version else {})
        )
    except ClientError as err:
        raise ApiError(
            "AutomationDefinitionNotFoundException", f"Automation document {name} not found"
        ) from err
    if found.get("DocumentType") != "Automation":
        raise ApiError("InvalidDocumentType", f"{name} is not an Automation document")
    return str(found["Content"]), str(found.get("DocumentVersion") or "1")


def refuse_oversized(name: str, content: str, given: dict[str, list[str]], code: str) -> None:
    """Refuse with `code` a document that its parameter values take past 64 KB
    (ssm/document_limits.py)."""
    size = document_bytes(content, given)
    if size > DOCUMENT_LIMIT_BYTES:
        raise ApiError(
            code,
            f"The size limit of a document is 64 KB: {name} and its parameter values take "
            f"{size} bytes",
        )


def _execution(controls: SandboxControls, execution_id: str) -> Execution:
    execution = controls.executions.get(execution_id)
    if execution is None:
        raise ApiError(
            "AutomationExecutionNotFoundException", f"Execution {execution_id} not found"
        )
    return execution


def get_automation_execution(controls: SandboxControls, request: Request) -> dict[str, Any]:
    with controls.lock:
        execution = _execution(controls, request.body["AutomationExecutionId"])
        # AWS returns only the first step executions here and says so; the rest are read with
        # DescribeAutomationStepExecutions.
        kept = controls.limits.step_executions_kept
        details = {
            **_metadata(execution),
            "StepExecutions": [_step(step) for step in execution.steps[:kept]],
            "StepExecutionsTruncated": len(execution.steps) > kept,
            "Parameters": execution.parameters,
        }
    details.pop("AutomationType", None)
    return {"AutomationExecution": details}


def _metadata(execution: Execution) -> dict[str, Any]:
    current = execution.steps[-1] if execution.steps else None
    data: dict[str, Any] = {
        "AutomationExecutionId": execution.execution_id,
        "DocumentName": execution.document_name,
        "DocumentVersion": execution.document_version,
        "AutomationExecutionStatus": execution.status,
        "ExecutionStartTime": execution.start,
        "ExecutedBy": f"arn:aws:sts::{execution.account}:assumed-role/sandbox/tfbake",
        "Outputs": execution.outputs,
        "Mode": "Auto",
        "AutomationType": "Local",
    }
    if execution.end is not None:
        data["ExecutionEndTime"] = execution.end
    if execution.failure_message:
        data["FailureMessage"] = execution.failure_message
    if current is not None and execution.status not in TERMINAL_STATUSES:
        data["CurrentStepName"], data["CurrentAction"] = current.name, current.action
    return data


def _step(step: StepExecution) -> dict[str, Any]:
    data: dict[str, Any] = {
        "StepName": step.name,
        "Action": step.action,
        "OnFailure": step.on_failure,
        "MaxAttempts": step.max_attempts,
        "ExecutionStartTime": step.start,
        "StepStatus": step.status,
        "Inputs": step.inputs,
        "Outputs": step.outputs,
        "StepExecutionId": step.step_execution_id,
        "IsEnd": step.is_end,
        "IsCritical": step.is_critical,
    }
    if step.next_step:
        data["NextStep"] = step.next_step
    if step.end is not None:
        data["ExecutionEndTime"] = step.end
    if step.failure_message:
        data["FailureMessage"] = step.failure_message
    return data


def describe_automation_step_executions(
    controls: SandboxControls, request: Request
) -> dict[str, Any]:
    body = request.body
    if body.get("Filters"):
        raise ApiError("ValidationException", "the sandbox does not filter step executions")
    size = int(body.get("MaxResults") or 50)
    if not 1 <= size <= 50:
        raise ApiError("ValidationException", "MaxResults must be from 1 to 50")
    with controls.lock:
        execution = _execution(controls, body["AutomationExecutionId"])
        steps = [_step(step) for step in execution.steps]
    if body.get("ReverseOrder"):
        steps.reverse()
    items, token = paged(steps, {**body, "MaxResults": size}, default_size=50)
    return {"StepExecutions": items, **token}


def create_document(controls: SandboxControls, request: Request) -> dict[str, Any]:
    """CreateDocument's checks that moto lacks: the account's limit, Automation flow control."""
    from tfbake.sandbox.ssm.run_command import parse_document

    ssm = controls.client("ssm", request.region)
    owned = ssm.get_paginator("list_documents").paginate(
        Filters=[{"Key": "Owner", "Values": ["Self"]}]
    )
    count = sum(len(page["DocumentIdentifiers"]) for page in owned)
    if count >= controls.limits.documents:
        raise ApiError(
            "DocumentLimitExceeded",
            f"You can have at most {controls.limits.documents} documents in this account",
        )
    if request.body.get("DocumentType") == "Automation":
        try:
            content = parse_document(request.body.get("Content") or "")
        except ValueError as err:
            raise ApiError("InvalidDocumentContent", str(err)) from err
        problems = document_problems(content if isinstance(content, dict) else {})
        if problems:
            raise ApiError("InvalidDocumentContent", "; ".join(problems))
    raise NotHandled()


def _matches(execution: Execution, key: str, values: list[str]) -> bool:
    if key == "ExecutionId":
        return execution.execution_id in values
    if key == "DocumentNamePrefix":
        return any(execution.document_name.startswith(v) for v in values)
    if key == "ExecutionStatus":
        return execution.status in values
    if key == "TagKey":
        return any(tag.get("Key") in values for tag in execution.tags)
    raise ApiError("ValidationException", f"the sandbox does not filter executions by {key}")


def describe_automation_executions(controls: SandboxControls, request: Request) -> dict[str, Any]:
    filters = request.body.get("Filters") or []
    with controls.lock:
        found = [
            _metadata(execution)
            for execution in sorted(controls.executions.values(), key=lambda e: -e.start)
            if execution.region == request.region
            and all(_matches(execution, f["Key"], f["Values"]) for f in filters)
        ]
    items, token = paged(found, request.body, default_size=50)
    return {"AutomationExecutionMetadataList": items, **token}


def paged(items: list[Any], body: dict[str, Any], default_size: int) -> tuple[list, dict]:
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or default_size)
    end = start + size
    return items[start:end], ({"NextToken": str(end)} if end < len(items) else {})


def stop_automation_execution(controls: SandboxControls, request: Request) -> dict[str, Any]:
    with controls.lock:
        execution = _execution(controls, request.body["AutomationExecutionId"])
        if execution.status in TERMINAL_STATUSES:
            raise ApiError(
                "InvalidAutomationStatusUpdateException",
                f"Execution {execution.execution_id} is already {execution.status}",
            )
        # No further step runs but the running step's onCancel workflow, as on AWS.
        execution.status = "Cancelling"
        execution.cancelled.set()
    return {}


def list_tags_for_resource(controls: SandboxControls, request: Request) -> dict[str, Any]:
    if request.body.get("ResourceType") != "Automation":
        raise NotHandled()
    with controls.lock:
        execution = _execution(controls, request.body["ResourceId"])
        return {"TagList": list(execution.tags)}


Handler = Callable[[SandboxControls, Request], dict[str, Any]]

AUTOMATION_HANDLERS: dict[str, Handler] = {
    "StartAutomationExecution": start_automation_execution,
    "GetAutomationExecution": get_automation_execution,
    "DescribeAutomationExecutions": describe_automation_executions,
    "StopAutomationExecution": stop_automation_execution,
    "DescribeAutomationStepExecutions": describe_automation_step_executions,
    "CreateDocument": create_document,
    "ListTagsForResource": list_tags_for_resource,
}
