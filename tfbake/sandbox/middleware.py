"""The WSGI layer in front of moto: what moto lacks, injected throttling, and the fault API.

Requests are served in this order:
- `/tfbake-sandbox/...`: the fault API (below), for tests in this process or any other;
- requests marked internal (the sandbox's own automation calls): straight to the handlers,
  neither logged nor throttled;
- everything else: through the request log, then throttling, then the handlers.
The handlers answer the SSM actions in HANDLERS (ssm_api/automation.py,
ssm_api/instances.py) and pass the rest to moto.

Fault API (JSON bodies):
    POST   /tfbake-sandbox/faults   {"step": "RunRecipe", "fail": "message"}
                                    {"step": "CreateImage", "delay_seconds": 5}
                                    {"throttle": {"action": "GetAutomationExecution", "times": 3}}
                                    {"step": "WaitForImage", "not_found_reads": 1}
    DELETE /tfbake-sandbox/faults   clear every fault
    GET    /tfbake-sandbox/commands the recorded Run Command invocations
"""

from __future__ import annotations

import functools
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tfbake.sandbox.controls import INTERNAL_HEADER, SandboxControls
from tfbake.sandbox.ssm_api.automation import AUTOMATION_HANDLERS, ApiError, NotHandled, Request
from tfbake.sandbox.ssm_api.instances import COMMAND_HANDLERS

WsgiApp = Callable[..., Iterable[bytes]]
CONTROL_PREFIX = "/tfbake-sandbox/"
_INTERNAL_ENVIRON_KEY = "HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")
_SSM_TARGET_PREFIX = "AmazonSSM."
_DEFAULT_ACCOUNT = "123456789012"
HANDLERS = {**AUTOMATION_HANDLERS, **COMMAND_HANDLERS}
_CREATE_IMAGE_LOCK = threading.Lock()


class SandboxApp:
    def __init__(
        self,
        moto_app: WsgiApp,
        controls: SandboxControls,
        wrap_logging: Callable[[WsgiApp], WsgiApp],
    ) -> None:
        self._moto = moto_app
        self._controls = controls
        self._logged = wrap_logging(self._serve_external)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        if environ.get(_INTERNAL_ENVIRON_KEY):
            return self._serve(environ, start_response)
        return self._logged(environ, start_response)

    def _serve_external(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        region = _region(environ)
        if region not in known_regions():
            return _unknown_region(environ, start_response, region)
        action = _action(environ)
        if action and self._controls.faults.take_throttle(action):
            return _throttled(environ, start_response)
        if action and self._controls.faults.take_denial(action):
            return _denied(environ, start_response, action)
        return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target and _action(environ) == "CreateImage":
            return self._create_image_once_per_name(environ, start_response)
        handler = HANDLERS.get(target[len(_SSM_TARGET_PREFIX) :]) if target else None
        if handler is None or not target.startswith(_SSM_TARGET_PREFIX):
            return self._moto(environ, start_response)
        body = _read_body(environ)
        request = Request(
            region=_region(environ), account=_DEFAULT_ACCOUNT, body=json.loads(body or b"{}")
        )
        try:
            result = handler(self._controls, request)
        except NotHandled:
            return self._moto(environ, start_response)
        except ApiError as err:
            error = {"__type": err.code, "message": err.message}
            return _json_response(start_response, err.status, error)
        except KeyError as err:
            error = {"__type": "ValidationException", "message": f"missing {err.args[0]}"}
            return _json_response(start_response, 400, error)
        return _json_response(start_response, 200, result)

    def _create_image_once_per_name(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        # The check and the creation as one step: two CreateImage calls racing with one name
        # must not both pass the check (AWS creates one and refuses the other).
        with _CREATE_IMAGE_LOCK:
            taken = self._image_name_taken(environ)
            if taken:
                return _ec2_error(
                    start_response, "400 Bad Request", "InvalidAMIName.Duplicate", taken
                )
            return list(self._moto(environ, start_response))

    def _image_name_taken(self, environ: dict[str, Any]) -> str | None:
        # AWS refuses a second AMI with the same name in an account and region; moto accepts
        # it, which would hide a bake that reuses the name of an image it failed to remove.
        form = parse_qs(_read_body(environ).decode("utf-8", "replace"))
        name = (form.get("Name") or [""])[0]
        if not name:
            return None
        ec2 = self._controls.client("ec2", _region(environ))
        filters = [{"Name": "name", "Values": [name]}]
        images = ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
        if not images:
            return None
        return f"AMI name {name} is already in use by AMI {images[0]['ImageId']}"

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path, method = environ["PATH_INFO"], environ.get("REQUEST_METHOD", "GET")
        faults = self._controls.faults
        if path == CONTROL_PREFIX + "faults" and method == "POST":
            try:
                faults.apply_json(json.loads(_read_body(environ) or b"{}"))
            except (ValueError, KeyError, TypeError) as err:
                return _json_response(start_response, 400, {"error": f"bad fault: {err}"})
            return _json_response(start_response, 200, {"ok": True})
        if path == CONTROL_PREFIX + "faults" and method == "DELETE":
            faults.clear()
            return _json_response(start_response, 200, {"ok": True})
        if path == CONTROL_PREFIX + "commands" and method == "GET":
            commands = [c.as_json() for c in self._controls.commands.all()]
            return _json_response(start_response, 200, {"Commands": commands})
        return _json_response(start_response, 404, {"error": f"no {method} {path}"})


def _read_body(environ: dict[str, Any]) -> bytes:
    # Read once and put back, so that moto can read it again when the request is passed on.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _action(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    form = parse_qs(_read_body(environ).decode("utf-8", "replace"))
    query = parse_qs(environ.get("QUERY_STRING", ""))
    return (form.get("Action") or query.get("Action") or [""])[0]


def _credential_scope(environ: dict[str, Any]) -> list[str]:
    # "AWS4-HMAC-SHA256 Credential=KEY/20260101/us-east-1/ssm/aws4_request, ..."
    header = environ.get("HTTP_AUTHORIZATION", "")
    return (
        header.split("Credential=", 1)[1].split(",")[0].split("/")
        if "Credential=" in header
        else []
    )


def _region(environ: dict[str, Any]) -> str:
    scope = _credential_scope(environ)
    return scope[2] if len(scope) > 2 else "us-east-1"


def _json_response(start_response: Callable[..., Any], status: int, body: Any) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]


def _throttled(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    # Each protocol's own throttling error, as botocore's retry logic recognises them.
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
        return _json_response(start_response, 400, body)
    scope = _credential_scope(environ)
    service = scope[3] if len(scope) > 3 else ""
    request_id = str(uuid.uuid4())
    if service == "ec2":
        message = "Request limit exceeded."
        return _ec2_error(
            start_response, "503 Service Unavailable", "RequestLimitExceeded", message
        )
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
        f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return _xml_response(start_response, "400 Bad Request", xml)


def _denied(environ: dict[str, Any], start_response: Callable[..., Any], action: str) -> Any:
    # What a caller whose IAM policy lacks the action gets, in each protocol's own shape.
    message = f"You are not authorized to perform: {action} (tfbake sandbox denial)"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return _json_response(
            start_response, 400, {"__type": "AccessDeniedException", "message": message}
        )
    return _ec2_error(start_response, "403 Forbidden", "UnauthorizedOperation", message)


@functools.cache
def known_regions() -> frozenset[str]:
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def _unknown_region(
    environ: dict[str, Any], start_response: Callable[..., Any], region: str
) -> Any:
    # AWS's answer to a request signed for a region that does not exist.
    message = f"Credential should be scoped to a valid region, not '{region}'."
    if environ.get("HTTP_X_AMZ_TARGET"):
        return _json_response(
            start_response, 403, {"__type": "InvalidSignatureException", "message": message}
        )
    return _ec2_error(start_response, "403 Forbidden", "SignatureDoesNotMatch", message)


def _ec2_error(
    start_response: Callable[..., Any], status: str, code: str, message: str
) -> list[bytes]:
    xml = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
    return _xml_response(start_response, status, xml)


def _xml_response(start_response: Callable[..., Any], status: str, xml: str) -> list[bytes]:
    data = xml.encode("utf-8")
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]
