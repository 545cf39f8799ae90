"""Serve moto over real HTTP on loopback, with a log of every API call it answered.

The request log lets tests and benchmarks count calls (one DescribeImages per no-op lookup, the
polling rate of a waiting bake) from the server's side, the way AWS would see them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tfbake.sandbox.accounts.forget import forget_other_accounts
from tfbake.sandbox.controls import SandboxControls
from tfbake.sandbox.faults import RecordedCommand
from tfbake.sandbox.middleware import SandboxApp
from tfbake.sandbox.moto_patches import instance_refresh
from tfbake.sandbox.moto_patches.base_images import ACCOUNT, seed_base_images, seed_debian_images

if TYPE_CHECKING:
    from tfbake.sandbox.machines.fleet import Fleet

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@dataclass(frozen=True)
class ApiCall:
    service: str
    action: str
    at: float


@dataclass
class RequestLog:
    calls: list[ApiCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: ApiCall) -> None:
        with self._lock:
            self.calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def actions(self, service: str | None = None) -> list[str]:
        with self._lock:
            return [c.action for c in self.calls if service is None or c.service == service]

    def count(self, action: str) -> int:
        return self.actions().count(action)


class _LoggingApp:
    """WSGI middleware: note the service and action of each request, then hand it to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]], log: RequestLog) -> None:
        self._app = app
        self._log = log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        service, action = _identify(environ)
        if action:
            self._log.record(ApiCall(service, action, time.monotonic()))
        return self._app(environ, start_response)


def _identify(environ: dict[str, Any]) -> tuple[str, str]:
    # JSON protocols (SSM, ECR) name the action in X-Amz-Target; query protocols (EC2, STS,
    # autoscaling) in the form body. Reading the body means putting it back for moto.
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service = _service_from_auth(environ.get("HTTP_AUTHORIZATION", ""))
    if target:
        return service, target.rsplit(".", 1)[-1]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [""])[0]
        return service, action
    import io

    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return service, action


def _service_from_auth(header: str) -> str:
    # "AWS4-HMAC-SHA256 Credential=KEY/20260101/us-east-1/ec2/aws4_request, ..."
    try:
        return header.split("Credential=", 1)[1].split("/")[3]
    except IndexError:
        return ""


@dataclass
class Sandbox:
    """A running local endpoint; `environment()` is what a client process needs to use it."""

    host: str
    port: int
    region: str
    log: RequestLog
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    controls: SandboxControls = field(default_factory=SandboxControls, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }

    @property
    def fleet(self) -> Fleet | None:
        """Real mode's machines (None in recorded mode)."""
        return self.controls.fleet

    @property
    def state_dir(self) -> Path | None:
        return self.fleet.state_dir if self.fleet else None

    def reset(self) -> None:
        """Forget every resource (moto's own reset), executions, faults and the request log."""
        from moto.moto_api._internal.models import moto_api_backend

        # Executions first: a running one would otherwise go on acting on the fresh account.
        self.controls.reset()
        if self.fleet is not None:
            self.fleet.reset()
        forget_other_accounts(ACCOUNT)
        moto_api_backend.reset()
        instance_refresh.clear()
        _seed(self.region, self.fleet)
        self.log.clear()

    def inject_failure(self, step: str, message: str) -> None:
        """Make runbook step `step` fail with `message`, after its action ran, until cleared."""
        self.controls.faults.fail_step(step, message)

    def delay_step(self, step: str, seconds: float) -> None:
        """Make runbook step `step` take `seconds` longer (a stop cuts the wait short)."""
        self.controls.faults.delay_step(step, seconds)

    def throttle(self, action: str, times: int) -> None:
        """Answer the next `times` client calls of API `action` with a throttling error."""
        self.controls.faults.throttle(action, times)

    def deny(self, action: str, times: int = 1_000_000) -> None:
        """Refuse the next `times` client calls of API `action` as unauthorised."""
        self.controls.faults.deny(action, times)

    def not_found_reads(self, step: str, times: int = 1) -> None:
        """Make the next `times` DescribeImages/DescribeInstances calls of runbook step `step`
        not find their resource yet, as EC2's eventual consistency can."""
        self.controls.faults.not_found_reads(step, times)

    def clear_faults(self) -> None:
        self.controls.faults.clear()

    def recorded_commands(self) -> list[RecordedCommand]:
        """What the runbooks' aws:runCommand steps would have run, oldest first."""
        return self.controls.commands.all()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        # After the server: no request can start a machine while the machines are ended.
        self.controls.reset()
        if self.fleet is not None:
            from tfbake.sandbox.machines import hooks

            self.fleet.shutdown()
            hooks.activate(None)
            self.controls.fleet = None


INSTANCE_MODES = ("recorded", "real")


def _seed(region: str, fleet: Fleet | None) -> None:
    seed_base_images(region)
    if fleet is not None:
        fleet.base_roots = seed_debian_images(region, fleet.roots)


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    region: str = "us-east-1",
    *,
    instances: str = "recorded",
    state_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Sandbox:
    """Start the endpoint in a background thread; port 0 picks a free one.

    `instances="real"` boots instances as systemd machines (root, systemd-nspawn and
    debootstrap needed; machines/ says how); their roots and snapshots live in `state_dir`, a
    temporary directory removed at stop when not given.
    """
    if instances not in INSTANCE_MODES:
        raise ValueError(f"instances must be one of {INSTANCE_MODES}, not {instances!r}")
    fleet = _start_fleet(state_dir, log) if instances == "real" else None
    try:
        return _start(host, port, region, fleet)
    except BaseException:
        if fleet is not None:
            fleet.shutdown()
        raise


def _start_fleet(state_dir: Path | None, log: Callable[[str], None] | None) -> Fleet:
    from tfbake.sandbox.machines import hooks
    from tfbake.sandbox.machines.fleet import Fleet
    from tfbake.sandbox.machines.prerequisites import check_prerequisites

    check_prerequisites()
    fleet = Fleet(state_dir)
    if log is not None:
        fleet.log = log
    try:
        fleet.roots = fleet.prepare_base_roots()
        hooks.install()
        hooks.activate(fleet)
    except BaseException:
        fleet.shutdown()
        raise
    return fleet


def _start(host: str, port: int, region: str, fleet: Fleet | None) -> Sandbox:
    # moto loads ~1,000 public AMIs per region by default; tfbake never looks at them and
    # they slow both start-up and every DescribeImages.
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # The AWS managed policies (AmazonSSMManagedInstanceCore, ...) that modules attach.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    from tfbake.sandbox.accounts import image_states, shared_images
    from tfbake.sandbox.moto_patches import ec2_images, ec2_instances, pagination

    # Accounts first: pagination pages whatever DescribeImages answers.
    shared_images.install()
    image_states.install()
    pagination.install()
    ec2_images.install()
    ec2_instances.install()
    instance_refresh.install()

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # the request log above is the record; stderr stays for the CLI's own output

    log = RequestLog()
    controls = SandboxControls(fleet=fleet)
    # SSM Automation and the other actions moto lacks, failure injection, then moto itself.
    app = SandboxApp(
        DomainDispatcherApplication(create_backend_app), controls, lambda a: _LoggingApp(a, log)
    )
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    controls.endpoint_url = f"http://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="tfbake-sandbox", daemon=True)
    thread.start()
    _seed(region, fleet)
    return Sandbox(host, server.server_port, region, log, server, thread, controls)
