"""Baking through the sandbox: once per fingerprint, cleaned up on every path, resumable."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakes import BASE, hold_lock, no_progress, plan_for
from tests.support.cli import assert_one_line_error, external, run_tfbake
from tests.support.specs import query, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.bake.lock import LOCK_PREFIX
from tfbake.bake.steps import runbook_step_count, success_path
from tfbake.ensure import ensure
from tfbake.model import tags
from tfbake.model.errors import AwsError, BadInput, BakeFailed, BakeTimedOut, ExitCode
from tfbake.sandbox import Sandbox


def bake_spec(tmp_path: Path, **changes: Any) -> Path:
    return write_spec(tmp_path, base_ami=BASE, **changes)


def executions(aws: AwsContext) -> list[dict[str, Any]]:
    return aws.client("ssm").describe_automation_executions()["AutomationExecutionMetadataList"]


def live_builders(aws: AwsContext) -> list[str]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[
            {"Name": f"tag:{tags.ROLE}", "Values": [tags.ROLE_BUILDER]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
    )["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


def ready_amis(aws: AwsContext, fingerprint: str) -> list[str]:
    images = aws.client("ec2").describe_images(
        Owners=["self"],
        Filters=[
            {"Name": f"tag:{tags.FINGERPRINT}", "Values": [fingerprint]},
            {"Name": f"tag:{tags.STATUS}", "Values": [tags.STATUS_READY]},
        ],
    )["Images"]
    return [image["ImageId"] for image in images]


def lock_exists(aws: AwsContext, fingerprint: str) -> bool:
    ssm = aws.client("ssm")
    try:
        ssm.get_parameter(Name=LOCK_PREFIX + fingerprint)
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


def test_ensure_bakes_once_then_reuses(tmp_path: Path, aws: AwsContext, sandbox: Sandbox) -> None:
    spec = bake_spec(tmp_path)
    first = run_tfbake("ensure", str(spec))
    assert first.code == 0, first.stderr
    ami = first.stdout.strip()
    fingerprint = plan_for(aws).fingerprint.value
    assert ready_amis(aws, fingerprint) == [ami]
    assert live_builders(aws) == []
    assert not lock_exists(aws, fingerprint)
    assert len(executions(aws)) == 1
    commands = sandbox.recorded_commands()
    assert len(commands) == 1

    sandbox.log.clear()
    second = run_tfbake("ensure", str(spec))
    assert second.stdout.strip() == ami
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert len(executions(aws)) == 1


def test_the_builder_is_told_the_pinned_images(tmp_path: Path, sandbox: Sandbox) -> None:
    assert run_tfbake("ensure", str(bake_spec(tmp_path))).code == 0
    (command,) = sandbox.recorded_commands()
    images = command.parameters["Images"][0].split()
    assert images == [
        "docker.io/library/nginx:1.27@sha256:" + "a" * 64,
        "docker.io/library/redis:7@sha256:" + "b" * 64,
    ]


RUNBOOK = Path(__file__).resolve().parents[2] / "tfbake" / "bake" / "runbook.yaml"
# Every step of a successful bake except the branch, which decides but has no action to fail.
FAILABLE_STEPS = [step for step in success_path(RUNBOOK.read_text()) if step != "ChooseVolumeKey"]


@pytest.mark.parametrize("step", FAILABLE_STEPS)
def test_failure_at_each_step_cleans_up(aws: AwsContext, sandbox: Sandbox, step: str) -> None:
    plan = plan_for(aws)
    sandbox.inject_failure(step, f"injected failure in {step}")
    with pytest.raises(BakeFailed) as caught:
        ensure(plan, aws, on_progress=no_progress)
    assert f"at step {step}" in caught.value.message
    assert f"injected failure in {step}" in caught.value.message
    assert live_builders(aws) == []
    assert ready_amis(aws, plan.fingerprint.value) == []
    assert not lock_exists(aws, plan.fingerprint.value)

    sandbox.clear_faults()
    result = ensure(plan, aws, on_progress=no_progress)
    assert result.status == "baked"
    assert ready_amis(aws, plan.fingerprint.value) == [result.ami_id]


def test_failed_bake_cli_shows_step_and_output(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.inject_failure("RunRecipe", "tfbake: pull failed for docker.io/library/nginx:1.27")
    result = run_tfbake("ensure", str(bake_spec(tmp_path)))
    assert result.code == ExitCode.BAKE_FAILED
    last = result.stderr.strip().splitlines()[-1]
    assert "at step RunRecipe" in last
    assert "console.aws.amazon.com/systems-manager/automation/execution/" in last


def test_external_failure_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.inject_failure("CreateImage", "InvalidParameterValue: boom")
    log = tmp_path / "external.log"
    result = external(query(base_ami=BASE), env={"TFBAKE_LOG_FILE": str(log)})
    assert_one_line_error(result, ExitCode.BAKE_FAILED, "at step CreateImage", "boom")
    assert "failed" in log.read_text()


def test_external_bakes_on_a_miss_and_logs_progress(sandbox: Sandbox, tmp_path: Path) -> None:
    log = tmp_path / "external.log"
    result = external(query(base_ami=BASE), env={"TFBAKE_LOG_FILE": str(log)})
    assert result.code == 0, result.stderr
    reply = result.external_result()
    assert reply["status"] == "baked"
    assert reply["ami_id"].startswith("ami-")
    text = log.read_text()
    assert f"step {runbook_step_count()}/{runbook_step_count()} MarkImageReady" in text
    again = external(query(base_ami=BASE)).external_result()
    assert (again["status"], again["ami_id"]) == ("found", reply["ami_id"])


def test_concurrent_ensures_share_one_bake(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    spec = bake_spec(tmp_path)
    sandbox.delay_step("RunRecipe", 3)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tfbake", "ensure", str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0] * 8, [err for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1
    assert len(executions(aws)) == 1
    assert len(sandbox.recorded_commands()) == 1


def test_killed_client_resumes_the_same_bake(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    spec = bake_spec(tmp_path)
    fingerprint = plan_for(aws).fingerprint.value
    sandbox.delay_step("RunRecipe", 4)
    process = subprocess.Popen(
        [sys.executable, "-m", "tfbake", "ensure", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not executions(aws) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executions(aws), "the first client never started a bake"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert lock_exists(aws, fingerprint)

    result = run_tfbake("ensure", str(spec))
    assert result.code == 0, result.stderr
    assert len(executions(aws)) == 1
    assert ready_amis(aws, fingerprint) == [result.stdout.strip()]
    assert not lock_exists(aws, fingerprint)


def test_timeout_leaves_the_bake_running_then_cancel_stops_it(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    from tfbake.bake.runner import run_bake

    plan = plan_for(aws)
    # Stuck after the image exists: cancel must clean up the builder and the half-made AMI.
    sandbox.delay_step("WaitForImage", 30)
    with pytest.raises(BakeTimedOut) as caught:
        run_bake(plan, aws, on_progress=no_progress, timeout_seconds=1.5)
    (execution,) = executions(aws)
    execution_id = execution["AutomationExecutionId"]
    assert execution_id in caught.value.message
    assert "goes on" in caught.value.message
    assert lock_exists(aws, plan.fingerprint.value)
    assert len(live_builders(aws)) == 1

    result = run_tfbake("cancel", execution_id)
    assert result.code == 0, result.stderr
    status = aws.client("ssm").get_automation_execution(AutomationExecutionId=execution_id)
    assert status["AutomationExecution"]["AutomationExecutionStatus"] in ("Cancelling", "Cancelled")
    assert live_builders(aws) == []
    assert not lock_exists(aws, plan.fingerprint.value)
    leftovers = aws.client("ec2").describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{tags.EXECUTION_ID}", "Values": [execution_id]}]
    )["Images"]
    # Gone either way: the runbook's cancel workflow or `tfbake cancel`, whichever came first.
    assert leftovers == []


def test_throttled_polling_is_survived(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    sandbox.delay_step("RunRecipe", 2)
    sandbox.throttle("GetAutomationExecution", 6)
    result = ensure(plan, aws, on_progress=no_progress)
    assert result.status == "baked"
    assert sandbox.log.count("GetAutomationExecution") >= 7


def test_cleanup_terminates_builders_of_finished_bakes(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    sandbox.inject_failure("RunRecipe", "stuck")
    with pytest.raises(BakeFailed):
        ensure(plan, aws, on_progress=no_progress)
    (execution,) = executions(aws)
    ec2 = aws.client("ec2")
    # A builder the runbook could not terminate (say, its role lost the permission).
    stray = ec2.run_instances(
        ImageId=plan.base_ami_id, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": tags.ROLE, "Value": tags.ROLE_BUILDER},
            {"Key": tags.EXECUTION_ID, "Value": execution["AutomationExecutionId"]},
        ]}],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    dry = run_tfbake("--json", "cleanup")
    listed = json.loads(dry.stdout)
    assert [b["instance_id"] for b in listed["builders"]] == [stray]
    assert live_builders(aws) == [stray]
    applied = run_tfbake("cleanup", "--apply")
    assert applied.code == 0, applied.stderr
    assert live_builders(aws) == []


def test_a_hundred_images_and_long_provision_commands_reach_the_builder(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    # Far beyond one Automation parameter value (512 characters): the runbook's slots carry it.
    images = [f"registry.example.com/team/service-{n:03d}:v1@sha256:{n:064x}" for n in range(100)]
    provision = [f"echo 'step {n}: {'x' * 200}' >> /etc/motd" for n in range(10)]
    plan = plan_for(aws, images=images, provision=provision)
    result = ensure(plan, aws, on_progress=no_progress)
    assert result.status == "baked"
    (command,) = sandbox.recorded_commands()
    assert command.parameters["Images"][0].split() == sorted(images)
    encoded = command.parameters["Provision"][0]
    assert base64.b64decode(encoded).split(b"\0")[:-1] == [p.encode() for p in provision]


def test_too_many_images_for_one_bake_is_refused_before_starting(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    images = [f"registry.example.com/team/service-{n:04d}:v1@sha256:{n:064x}" for n in range(400)]
    plan = plan_for(aws, images=images)
    with pytest.raises(BadInput, match=r"the image references take \d+ characters"):
        ensure(plan, aws, on_progress=no_progress)
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert not lock_exists(aws, plan.fingerprint.value)


def test_a_refused_start_leaves_no_lock(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    sandbox.deny("StartAutomationExecution", times=1)
    with pytest.raises(AwsError, match="access denied: ssm:StartAutomationExecution"):
        ensure(plan, aws, on_progress=no_progress)
    assert not lock_exists(aws, plan.fingerprint.value)
    assert ensure(plan, aws, on_progress=no_progress).status == "baked"


def test_cancel_of_a_finished_bake_leaves_its_amis_alone(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    result = ensure(plan, aws, on_progress=no_progress)
    (execution,) = executions(aws)
    assert run_tfbake("invalidate", plan.fingerprint.value).code == 0
    cancelled = run_tfbake("cancel", execution["AutomationExecutionId"])
    assert cancelled.code == 0, cancelled.stderr
    assert "had already ended (Success)" in cancelled.stdout
    assert aws.client("ec2").describe_images(ImageIds=[result.ami_id])["Images"]


def test_cancel_of_an_unknown_execution_is_bad_input(sandbox: Sandbox) -> None:
    result = run_tfbake("cancel", "00000000-0000-0000-0000-000000000000")
    assert_one_line_error(result, ExitCode.BAD_INPUT, "no SSM Automation execution")


def age_instance(instance_id: str, hours: float) -> None:
    """Backdate an instance's launch time in the sandbox (moto stamps the present)."""
    from datetime import datetime, timedelta, timezone

    from moto.ec2.models import ec2_backends

    instance = ec2_backends["123456789012"]["us-east-1"].get_instance(instance_id)
    instance.launch_time = datetime.now(timezone.utc) - timedelta(hours=hours)


def launch_builder(aws: AwsContext, execution_id: str) -> str:
    base = plan_for(aws).base_ami_id
    return aws.client("ec2").run_instances(
        ImageId=base, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": tags.ROLE, "Value": tags.ROLE_BUILDER},
            {"Key": tags.EXECUTION_ID, "Value": execution_id},
        ]}],
    )["Instances"][0]["InstanceId"]  # fmt: skip


def test_cleanup_never_counts_a_running_bakes_builder(aws: AwsContext, sandbox: Sandbox) -> None:
    from tfbake.bake.runner import run_bake

    plan = plan_for(aws)
    sandbox.delay_step("RunRecipe", 30)
    with pytest.raises(BakeTimedOut):
        run_bake(plan, aws, on_progress=no_progress, timeout_seconds=1)
    (builder,) = live_builders(aws)
    # Older than --max-age, but its execution is still running: working, not stray.
    age_instance(builder, hours=5)
    listed = json.loads(run_tfbake("--json", "cleanup", "--max-age", "60").stdout)
    assert listed["schema"] == "tfbake.cleanup/1"
    assert listed["builders"] == []
    assert live_builders(aws) == [builder]


def test_cleanup_ends_stray_builders_even_when_documents_cannot_be_listed(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    stray = launch_builder(aws, "11111111-2222-3333-4444-555555555555")
    age_instance(stray, hours=5)
    sandbox.deny("ListDocuments", times=1)

    result = run_tfbake("cleanup", "--apply")

    # The builder's report first, then the one-line error and the AWS exit code.
    assert stray in result.stdout
    assert result.code == ExitCode.AWS, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "unused SSM documents were not looked for" in line
    assert "ssm:ListDocuments" in line
    assert live_builders(aws) == []


def test_cleanup_lists_a_builder_of_an_unknown_execution_once_old(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    stray = launch_builder(aws, "11111111-2222-3333-4444-555555555555")
    assert json.loads(run_tfbake("--json", "cleanup").stdout)["builders"] == []
    age_instance(stray, hours=5)
    (listed,) = json.loads(run_tfbake("--json", "cleanup").stdout)["builders"]
    assert listed["instance_id"] == stray
    assert "no bake in progress" in listed["reason"]


def test_a_declared_architecture_must_match_the_base_ami(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws, architecture="arm64")  # the x86_64 Amazon Linux parameter
    with pytest.raises(BadInput, match=r"architecture is arm64 but base_ami ami-\w+ is x86_64"):
        ensure(plan, aws, on_progress=no_progress)
    assert sandbox.log.count("StartAutomationExecution") == 0


def test_a_stale_lock_of_a_revoked_bake_is_taken_over(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    ensure(plan, aws, on_progress=no_progress)
    (execution,) = executions(aws)
    # A client that died after the bake succeeded, before releasing its lock.
    hold_lock(aws, plan.fingerprint.value, execution["AutomationExecutionId"])
    assert run_tfbake("invalidate", plan.fingerprint.value).code == 0
    result = ensure(plan, aws, on_progress=no_progress)
    assert result.status == "baked"
    assert len(executions(aws)) == 2
    assert not lock_exists(aws, plan.fingerprint.value)
