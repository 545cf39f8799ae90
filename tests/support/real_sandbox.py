"""The sandbox with real instances, as scripts outside the project run it: its own process.

`tfbake sandbox --instances real --state-dir DIR --port N` in a subprocess, so that its
machines never share moto's in-process state with the recorded sandbox of the other tests, and
so that killing it is a real kill. `RealSandbox` gives tests its endpoint, its state directory
and its fault API over HTTP.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import free_port

# Building the roots the first time takes a few minutes; later starts reuse the cache.
START_TIMEOUT_SECONDS = 900
STATE_DIR_SAID = "machines and snapshots in "  # what `tfbake sandbox` says at start


def require_real_prerequisites() -> None:
    """Fail, never skip, with what to install: the sandbox's own check of the host."""
    from tfbake.sandbox.machines.prerequisites import PrerequisiteMissing, check_prerequisites

    try:
        check_prerequisites()
    except PrerequisiteMissing as err:
        pytest.fail(str(err), pytrace=False)


@dataclass
class RealSandbox:
    url: str
    state_dir: Path
    process: subprocess.Popen[str]
    log_path: Path

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(
            service,
            endpoint_url=self.url,
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    def base_ami_id(self, variant: str = "debian-12") -> str:
        """The seeded Debian AMI of `variant`, found as a spec's base_ami would find it."""
        from tfbake.sandbox.moto_patches.base_images import debian_base_ami

        wanted = debian_base_ami(variant)
        (image,) = self.client("ec2").describe_images(
            Owners=wanted["owners"], Filters=[{"Name": "name", "Values": [wanted["name"]]}]
        )["Images"]
        return str(image["ImageId"])

    def fault(self, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/tfbake-sandbox/faults",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGINT, timeout: float = 120) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_real_sandbox(state_dir: Path | None, log_path: Path) -> RealSandbox:
    """With `state_dir` None the sandbox makes a temporary one, which `state_dir` then reads."""
    require_real_prerequisites()
    port = free_port()
    log = log_path.open("w")
    state = ["--state-dir", str(state_dir)] if state_dir is not None else []
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfbake",
            "sandbox",
            "--instances",
            "real",
            *state,
            "--port",
            str(port),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    sandbox = RealSandbox(f"http://127.0.0.1:{port}", state_dir or Path(), process, log_path)
    # It prints its environment on stdout once it serves.
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            sandbox.stop()
            pytest.fail(f"the real sandbox did not start:\n{sandbox.log()[-3000:]}", pytrace=False)
        if line.startswith("export AWS_ENDPOINT_URL="):
            if state_dir is None:
                sandbox.state_dir = Path(sandbox.log().split(STATE_DIR_SAID, 1)[1].split()[0])
            return sandbox
    sandbox.stop()
    pytest.fail("the real sandbox did not start in time", pytrace=False)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


# How long an instance may take to boot, come online in SSM, or start its containers.
BOOT_TIMEOUT = 180


def run_shell(sandbox: RealSandbox, instance_id: str, *commands: str) -> str:
    """AWS-RunShellScript on one instance; its stdout, after asserting it succeeded."""
    ssm = sandbox.client("ssm")
    command_id = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[instance_id],
        Parameters={"commands": list(commands)},
    )["Command"]["CommandId"]

    def finished() -> Any:
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        return invocation if invocation["Status"] not in ("Pending", "InProgress") else None

    invocation = wait_until(finished, 120, f"command {command_id}")
    assert invocation["Status"] == "Success", invocation
    return str(invocation["StandardOutputContent"])


def wait_online(sandbox: RealSandbox, instance_id: str, what: str) -> None:
    """Wait until the instance is online in SSM, as its agent would register it."""

    def online() -> bool:
        listed = sandbox.client("ssm").describe_instance_information()
        return instance_id in {i["InstanceId"] for i in listed["InstanceInformationList"]}

    wait_until(online, BOOT_TIMEOUT, what)
