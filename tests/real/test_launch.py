"""Instances launched from a baked AMI: the asg module's units start every container from the
baked layers, with the registry stopped, as soon as Docker runs and again after a restart, and
each host is itself, not the builder.

Terraform applies the asg module against the sandbox; its autoscaling group launches two
instances with the launch template's user data, and each boots as a machine of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.real_sandbox import (
    BOOT_TIMEOUT,
    RealSandbox,
    run_shell,
    wait_online,
    wait_until,
)
from tests.support.registry import RegistryServer
from tests.support.terraform import (
    REPO_ROOT,
    Root,
    TerraformUnavailable,
    build_mirror,
    find_aws_mirror,
    find_terraform,
    offline_environment,
    write_cli_config,
)

CONTAINERS = {"web", "worker", "multi"}


@pytest.fixture(scope="module")
def launched(
    real_sandbox: RealSandbox,
    real_registry: RegistryServer,
    baked: dict[str, Any],
    three_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[str]:
    try:
        terraform = find_terraform()
        work = tmp_path_factory.mktemp("launch")
        mirror = build_mirror(work / "mirror", find_aws_mirror(), stand_in_external=False)
    except TerraformUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    shutil.copytree(REPO_ROOT / "modules", work / "modules")
    shutil.copytree(Path(__file__).parent / "launch", work / "root")
    environment = {
        **offline_environment(write_cli_config(work / "cli.tfrc", mirror)),
        **real_sandbox.environment(),
    }
    # Nothing may be pulled at boot: the registry is gone before any instance exists.
    real_registry.stop()
    root = Root(work / "root", terraform)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        root.init().check()
        root.apply(
            {
                "ami_id": baked["result"]["ami_id"],
                "baked_images": baked["result"]["images"],
                "web_image": three_images["web"],
                "worker_image": three_images["worker"],
                "multi_image": three_images["multi"],
            }
        ).check()
    ec2 = real_sandbox.client("ec2")

    def two_online() -> list[str]:
        instances = [
            i["InstanceId"]
            for r in ec2.describe_instances(
                Filters=[
                    {"Name": "image-id", "Values": [baked["result"]["ami_id"]]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                ]
            )["Reservations"]
            for i in r["Instances"]
        ]
        online = {
            i["InstanceId"]
            for i in real_sandbox.client("ssm").describe_instance_information()[
                "InstanceInformationList"
            ]
        }
        return sorted(instances) if len(instances) == 2 and set(instances) <= online else []

    return list(wait_until(two_online, BOOT_TIMEOUT, "two online instances of the baked AMI"))


def running_containers(sandbox: RealSandbox, instance_id: str) -> set[str]:
    def all_three() -> set[str]:
        names = set(run_shell(sandbox, instance_id, "docker ps --format '{{.Names}}'").split())
        return names if names >= CONTAINERS else set()

    return set(wait_until(all_three, BOOT_TIMEOUT, f"the containers of {instance_id}", 2))


def test_every_container_runs_from_baked_layers(
    real_sandbox: RealSandbox, launched: list[str]
) -> None:
    for instance_id in launched:
        assert running_containers(real_sandbox, instance_id) >= CONTAINERS


def monotonic_stamps(sandbox: RealSandbox, instance_id: str, *stamps: tuple[str, str]) -> list[int]:
    """systemd's monotonic timestamps inside the machine, in microseconds: (unit, property)
    pairs, the unit "" for the manager's own."""
    output = run_shell(
        sandbox,
        instance_id,
        *(f"systemctl show {unit} -p {name}TimestampMonotonic --value" for unit, name in stamps),
    )
    return [int(stamp) for stamp in output.split()]


def after_final_stage_started(
    sandbox: RealSandbox, instance_id: str, *stamps: tuple[str, str]
) -> tuple[int, list[int]]:
    """cloud-final's start, and the stamps, once cloud-final has started."""

    def read() -> list[int]:
        found = monotonic_stamps(
            sandbox, instance_id, ("cloud-final.service", "ExecMainStart"), *stamps
        )
        return found if found[0] > 0 else []

    final, *others = wait_until(read, BOOT_TIMEOUT, f"cloud-final on {instance_id}", 2)
    return final, others


def test_containers_start_with_docker_before_cloud_inits_final_stage(
    real_sandbox: RealSandbox, launched: list[str]
) -> None:
    # A user data script runs in cloud-final, after multi-user.target: the containers are
    # started from the boothook, in cloud-init's network stage, and are up before it.
    units = [(f"tfbake-container-{name}.service", "ActiveEnter") for name in sorted(CONTAINERS)]
    for instance_id in launched:
        running_containers(real_sandbox, instance_id)
        final, started = after_final_stage_started(real_sandbox, instance_id, *units)
        assert min(started) > 0 and max(started) < final, (instance_id, final, started)


def identity(sandbox: RealSandbox, instance_id: str) -> tuple[str, str]:
    output = run_shell(
        sandbox,
        instance_id,
        "cat /etc/machine-id",
        "cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub",
    ).split()
    return output[0], output[1]


def test_each_instance_is_told_its_ecs_cluster_and_to_use_the_baked_images(
    real_sandbox: RealSandbox, launched: list[str]
) -> None:
    for instance_id in launched:
        config = run_shell(real_sandbox, instance_id, "cat /etc/ecs/ecs.config").splitlines()
        assert sorted(config) == [
            "ECS_CLUSTER=real-launch",
            "ECS_ENABLE_TASK_IAM_ROLE=true",
            "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
        ]


def test_each_instance_has_its_own_machine_id_and_host_keys(
    real_sandbox: RealSandbox, launched: list[str], baked: dict[str, Any]
) -> None:
    first, second = (identity(real_sandbox, i) for i in launched)
    builder = (baked["builder"]["machine-id"], baked["builder"]["host key"])
    assert len(first[0]) == 32 and len(second[0]) == 32
    assert first[0] != second[0] and builder[0] not in (first[0], second[0])
    assert first[1] != second[1] and builder[1] not in (first[1], second[1])


def test_a_restarted_instance_runs_its_containers_again(
    real_sandbox: RealSandbox, launched: list[str]
) -> None:
    # Last in this file: the instance boots a second time from the same root.
    instance_id = launched[0]
    ec2 = real_sandbox.client("ec2")
    (first_boot,) = monotonic_stamps(real_sandbox, instance_id, ("", "Userspace"))

    def state_is(state: str) -> bool:
        (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return bool(reservation["Instances"][0]["State"]["Name"] == state)

    ec2.stop_instances(InstanceIds=[instance_id])
    wait_until(lambda: state_is("stopped"), BOOT_TIMEOUT, f"{instance_id} stopped")
    ec2.start_instances(InstanceIds=[instance_id])

    wait_online(real_sandbox, instance_id, f"{instance_id} online again")
    assert running_containers(real_sandbox, instance_id) >= CONTAINERS
    (second_boot,) = monotonic_stamps(real_sandbox, instance_id, ("", "Userspace"))
    assert second_boot > first_boot
    # Every file whole: none left half-written by the second boot's boothook.
    files = run_shell(
        real_sandbox,
        instance_id,
        "ls /etc/tfbake/containers /etc/systemd/system | grep -e '.env$' -e '^tfbake-' -e new",
    )
    assert sorted(files.split()) == sorted(
        [f"{name}.env" for name in CONTAINERS]
        + [f"tfbake-container-{n}.service" for n in CONTAINERS]
    )
