"""Real instances: a sandbox whose instances are booted systemd machines, and a registry.

One sandbox process and one registry serve the whole package: booting the sandbox costs a few
seconds (minutes once, while the Debian roots are built), and every test here works in its own
image set, so they never see each other's AMIs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Completed, run_tfbake
from tests.support.images import push_busybox_image, push_busybox_index
from tests.support.real_sandbox import RealSandbox, start_real_sandbox
from tests.support.registry import RegistryServer, start_registry
from tfbake.sandbox.moto_patches.base_images import debian_base_ami


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="package")
def real_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSandbox]:
    base = tmp_path_factory.mktemp("real-sandbox")
    sandbox = start_real_sandbox(base / "state", base / "sandbox.log")
    profiles = sandbox.client("iam")
    profiles.create_instance_profile(InstanceProfileName="tfbake-builder")
    yield sandbox
    code = sandbox.stop()
    assert code == 0, sandbox.log()[-3000:]


@pytest.fixture(scope="package")
def real_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("real-registry") / "registry")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def state_dir(real_sandbox: RealSandbox) -> Path:
    return real_sandbox.state_dir


DEBIAN = debian_base_ami("debian-12")
# The variant with Docker preinstalled: the fast path, for tests about other things.
DEBIAN_WITH_DOCKER = debian_base_ami("debian-12-docker")
BAKE_TIMEOUT = 600


def bake_spec(directory: Path, name: str, images: list[str], **fields: Any) -> Path:
    spec = {
        "name": name,
        "images": images,
        "base_ami": fields.pop("base_ami", DEBIAN_WITH_DOCKER),
        "architecture": "x86_64",
        "volume": {"size": 8},
        "builder": {"instance_profile": "tfbake-builder", "timeout_minutes": 20},
        **fields,
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def ensure(sandbox: RealSandbox, spec: Path) -> Completed:
    return run_tfbake(
        "ensure", str(spec), "--json", env=sandbox.environment(), timeout=BAKE_TIMEOUT
    )


@pytest.fixture(scope="package")
def three_images(real_registry: RegistryServer) -> dict[str, str]:
    host = real_registry.host
    web = push_busybox_image(
        real_registry,
        "web",
        "1.0",
        files={"www/index.html": b"served from a baked layer\n"},
        command=["httpd", "-f", "-v", "-p", "127.0.0.1:18080", "-h", "/www"],
    )
    worker = push_busybox_image(real_registry, "worker", "2.0", files={"role": b"worker\n"})
    index, amd64 = push_busybox_index(real_registry, "multi", "3.0", files={"role": b"multi\n"})
    return {
        "web": f"{host}/web:1.0",
        "worker": f"{host}/worker@{worker.digest}",
        "multi": f"{host}/multi:3.0",
        "web_digest": web.digest,
        "multi_amd64": amd64,
        "index_digest": index.digest,
    }


@pytest.fixture(scope="package")
def baked(
    real_sandbox: RealSandbox, three_images: dict[str, str], tmp_path_factory: Any
) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("spec")
    images = [three_images["web"], three_images["worker"], three_images["multi"]]
    # The builder says who it was, so that instances can be told apart from it.
    spec = bake_spec(
        directory,
        "real-three",
        images,
        base_ami=DEBIAN,
        provision=[
            'echo "builder machine-id $(cat /etc/machine-id)"',
            'echo "builder host key $(cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub)"',
            # What an ECS-optimized base that ran its agent carries: its configuration, and
            # the container instance's identity, which must not reach the AMI.
            "mkdir -p /etc/ecs /var/lib/ecs/data",
            "echo ECS_LOGLEVEL=info >/etc/ecs/ecs.config",
            'echo \'{"ContainerInstanceArn": "builder"}\' >/var/lib/ecs/data/agent.json',
        ],
    )
    result = ensure(real_sandbox, spec)
    assert result.code == 0, result.stderr[-3000:] + real_sandbox.log()[-3000:]
    data = json.loads(result.stdout)
    ec2 = real_sandbox.client("ec2")
    (image,) = ec2.describe_images(ImageIds=[data["ami_id"]])["Images"]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    return {
        "result": data,
        "image": image,
        "snapshot": real_sandbox.state_dir / "snapshots" / snapshot_id,
        "builder": builder_identity(real_sandbox),
    }


def builder_identity(sandbox: RealSandbox) -> dict[str, str]:
    """What the bake's provision commands printed about the builder, from Run Command."""
    ssm = sandbox.client("ssm")
    found: dict[str, str] = {}
    for command in ssm.list_commands()["Commands"]:
        for listed in ssm.list_command_invocations(CommandId=command["CommandId"])[
            "CommandInvocations"
        ]:
            output = ssm.get_command_invocation(
                CommandId=command["CommandId"], InstanceId=listed["InstanceId"]
            )["StandardOutputContent"]
            for line in output.splitlines():
                for key in ("machine-id", "host key"):
                    prefix = f"builder {key} "
                    if line.startswith(prefix):
                        found[key] = line.removeprefix(prefix).strip()
    return found
