"""Run Command on a real instance: scripts run as the agent runs them, and the service's
limits hold (exit codes, execution timeouts, the output that is kept)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.real_sandbox import RealSandbox, wait_until


@pytest.fixture(scope="module")
def instance(real_sandbox: RealSandbox) -> Any:
    ec2 = real_sandbox.client("ec2")
    instance_id = ec2.run_instances(
        ImageId=real_sandbox.base_ami_id(),
        MinCount=1,
        MaxCount=1,
        IamInstanceProfile={"Name": "tfbake-builder"},
        UserData="#!/bin/sh\necho from-user-data > /root/user-data-ran\n",
    )["Instances"][0]["InstanceId"]
    ssm = real_sandbox.client("ssm")
    wait_until(
        lambda: ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
        )["InstanceInformationList"],
        120,
        "the agent to come online",
    )
    yield instance_id
    ec2.terminate_instances(InstanceIds=[instance_id])


def send(sandbox: RealSandbox, instance_id: str, *commands: str, timeout: str = "60") -> Any:
    ssm = sandbox.client("ssm")
    command_id = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[instance_id],
        Parameters={"commands": list(commands), "executionTimeout": [timeout]},
    )["Command"]["CommandId"]

    def done() -> Any:
        found = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        return found if found["Status"] not in ("Pending", "InProgress") else None

    invocation = wait_until(done, 120, "the command", interval=0.2)
    listed = ssm.list_command_invocations(CommandId=command_id, Details=True)
    return invocation, listed["CommandInvocations"][0]["CommandPlugins"][0]


def test_a_script_runs_as_root_from_the_orchestration_directory(
    real_sandbox: RealSandbox, instance: str
) -> None:
    # The agent may register before cloud-init has run the user data, as on EC2.
    invocation, _ = send(
        real_sandbox,
        instance,
        "cloud-init status --wait >/dev/null",
        "id -u",
        "pwd",
        "cat /root/user-data-ran",
    )
    assert invocation["Status"] == "Success"
    uid, directory, user_data = invocation["StandardOutputContent"].split()
    assert uid == "0"
    assert directory.startswith(f"/var/lib/amazon/ssm/{instance}/document/orchestration/")
    assert user_data == "from-user-data"


def test_the_exit_code_decides_the_status(real_sandbox: RealSandbox, instance: str) -> None:
    invocation, plugin = send(real_sandbox, instance, "echo out; echo err >&2; exit 7")
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Failed", 7)
    assert invocation["StandardErrorContent"] == "err\n"
    assert plugin["Output"] == "out\n\n----------ERROR-------\nerr\n"


def test_an_execution_timeout_ends_the_script(real_sandbox: RealSandbox, instance: str) -> None:
    invocation, _ = send(real_sandbox, instance, "echo started", "sleep 60", timeout="2")
    assert invocation["Status"] == "TimedOut"
    assert invocation["StandardOutputContent"] == "started\n"


def test_long_output_is_cut_as_run_command_cuts_it(
    real_sandbox: RealSandbox, instance: str
) -> None:
    invocation, plugin = send(
        real_sandbox,
        instance,
        "head -c 30000 /dev/zero | tr '\\0' o",
        "head -c 9000 /dev/zero | tr '\\0' e >&2",
    )
    assert len(invocation["StandardOutputContent"]) == 24_000
    assert len(invocation["StandardErrorContent"]) == 8_000
    assert len(plugin["Output"]) == 2_500
