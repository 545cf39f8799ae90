"""`tfbake ensure` as a user meets it: what it says, what it refuses, how it shows progress."""

from __future__ import annotations

import base64
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakes import BASE
from tests.support.cli import assert_one_line_error, external, run_tfbake
from tests.support.registry import PASSWORD, USERNAME, RegistryServer, push_image
from tests.support.specs import query, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.bake.lock import LOCK_PREFIX
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

FAST_HEARTBEAT = {"TFBAKE_HEARTBEAT_SECONDS": "0.3"}
# A heartbeat line rides on a poll: polls come 2, 4 and then 8 s apart, so a recipe this long
# is polled at least twice while it runs.
RECIPE_SEEN_TWICE_SECONDS = 14


def ensure_process(spec: Path, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tfbake", "ensure", str(spec)],
        text=True,
        env={**os.environ, **kwargs.pop("env", {})},
        **kwargs,
    )


def locks(aws: AwsContext) -> list[str]:
    parameters = aws.client("ssm").describe_parameters()["Parameters"]
    return [p["Name"] for p in parameters if p["Name"].startswith(LOCK_PREFIX)]


def test_ensure_says_on_stderr_whether_it_baked_or_found(tmp_path: Path, sandbox: Sandbox) -> None:
    spec = write_spec(tmp_path, base_ami=BASE)
    first = run_tfbake("ensure", str(spec))
    assert first.code == 0, first.stderr
    ami = first.stdout.strip()
    fingerprint = run_tfbake("fingerprint", str(spec)).stdout.strip()[:16]
    assert first.stderr.splitlines()[-1] == (
        f"tfbake: baked {ami} for 'web' (fingerprint {fingerprint}) in {sandbox.region}"
    )
    second = run_tfbake("ensure", str(spec))
    assert second.stdout.strip() == ami
    assert second.stderr.splitlines() == [
        f"tfbake: found {ami} for 'web' (fingerprint {fingerprint}) in {sandbox.region}"
    ]


def test_a_bake_without_an_instance_profile_is_refused_before_it_starts(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, builder={"instance_type": "t3.large"})
    result = run_tfbake("ensure", str(spec))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "builder.instance_profile is empty",
                          "set builder.instance_profile")  # fmt: skip
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert locks(aws) == []


def test_a_private_image_without_builder_credentials_is_refused_before_the_bake(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox, basic_auth_registry: RegistryServer
) -> None:
    push_image(basic_auth_registry, "team/app", "1.0")
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    auth = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {basic_auth_registry.host: {"auth": auth}}})
    )
    image = f"{basic_auth_registry.host}/team/app:1.0"
    spec = write_spec(tmp_path, base_ami=BASE, images=[image])
    env = {"DOCKER_CONFIG": str(docker_config)}
    assert run_tfbake("fingerprint", str(spec), env=env).code == 0  # it resolves locally
    result = run_tfbake("ensure", str(spec), env=env)
    assert_one_line_error(result, ExitCode.BAD_INPUT, image,
                          "resolved only with your local registry credentials",
                          "set registry_credentials_parameter")  # fmt: skip
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert locks(aws) == []


@pytest.mark.parametrize(("heartbeat", "at_least", "at_most"), [("0.3", 2, 99), ("60", 1, 1)])
def test_off_a_terminal_a_long_step_prints_a_heartbeat_line(
    tmp_path: Path, sandbox: Sandbox, heartbeat: str, at_least: int, at_most: int
) -> None:
    spec = write_spec(tmp_path, base_ami=BASE)
    sandbox.delay_step("RunRecipe", RECIPE_SEEN_TWICE_SECONDS)
    result = run_tfbake("ensure", str(spec), env={"TFBAKE_HEARTBEAT_SECONDS": heartbeat})
    assert result.code == 0, result.stderr
    recipe_lines = [line for line in result.stderr.splitlines() if " RunRecipe (" in line]
    assert at_least <= len(recipe_lines) <= at_most, result.stderr
    assert "\r" not in result.stderr


def test_on_a_terminal_progress_is_one_live_line(tmp_path: Path, sandbox: Sandbox) -> None:
    spec = write_spec(tmp_path, base_ami=BASE)
    sandbox.delay_step("RunRecipe", 3)
    controller, terminal = pty.openpty()
    process = ensure_process(spec, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0, seen
    updates = seen.count(b"\r\x1b[K")
    assert updates >= 3, seen  # rewritten in place, poll after poll
    assert b"RunRecipe" in seen
    assert stdout.strip().startswith("ami-")


def test_the_external_log_gets_heartbeat_lines(tmp_path: Path, sandbox: Sandbox) -> None:
    log = tmp_path / "external.log"
    sandbox.delay_step("RunRecipe", RECIPE_SEEN_TWICE_SECONDS)
    result = external(query(base_ami=BASE), env={"TFBAKE_LOG_FILE": str(log), **FAST_HEARTBEAT})
    assert result.code == 0, result.stderr
    recipe_lines = [line for line in log.read_text().splitlines() if " RunRecipe (" in line]
    assert len(recipe_lines) >= 2, log.read_text()


def test_ctrl_c_says_the_bake_goes_on_and_how_to_attach_or_cancel(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    spec = write_spec(tmp_path, base_ami=BASE)
    sandbox.delay_step("RunRecipe", 30)
    process = ensure_process(spec, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    first = process.stderr.readline()  # the first progress line: the bake has started
    assert first.startswith("baking "), first
    execution_id = first.split()[1].rstrip(":")
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == ExitCode.CANCELLED
    last = rest.strip().splitlines()[-1]
    assert last == (
        f"tfbake: error: interrupted; bake {execution_id} goes on in AWS: rerun to attach to it, "
        f"or stop it with `tfbake cancel {spec}`"
    )
    assert "Traceback" not in rest
    status = aws.client("ssm").get_automation_execution(AutomationExecutionId=execution_id)
    assert status["AutomationExecution"]["AutomationExecutionStatus"] == "InProgress"
    assert run_tfbake("cancel", str(spec)).code == 0
