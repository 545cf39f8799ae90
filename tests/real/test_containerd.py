"""`runtime = "containerd"` for real: a bake puts the images into containerd's k8s.io namespace,
where the kubelet looks, and an instance of the AMI finds them with the registry stopped.

The builder runs the Debian root with Docker, whose containerd is the one an EKS node runs
(Docker is there too, and stays out of the bake). A provision command leaves a container in
the namespace, as a base that ran pods would carry; the AMI must not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.real.conftest import DEBIAN_WITH_DOCKER, bake_spec, ensure
from tests.support.images import push_busybox_image
from tests.support.real_sandbox import RealSandbox, run_shell, wait_online
from tests.support.registry import start_registry

NAMESPACE = "k8s.io"


@pytest.fixture(scope="module")
def containerd_bake(
    real_sandbox: RealSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("containerd")
    # A registry of this module's own: it is stopped before the instance boots.
    registry = start_registry(work / "registry")
    try:
        image = push_busybox_image(
            registry,
            "kube/web",
            "1.0",
            files={"www/index.html": b"served from containerd's baked layer\n"},
        )
        reference = image.reference(registry.host)
        spec = bake_spec(
            work,
            "real-containerd",
            [reference],
            base_ami=DEBIAN_WITH_DOCKER,
            runtime="containerd",
            provision=[
                f"ctr --namespace {NAMESPACE} containers create {registry.host}/kube/web:1.0 "
                "left-by-the-builder"
            ],
        )
        result = ensure(real_sandbox, spec)
        assert result.code == 0, result.stderr[-3000:] + real_sandbox.log()[-3000:]
    finally:
        registry.stop()
    data = json.loads(result.stdout)
    ec2 = real_sandbox.client("ec2")
    (described,) = ec2.describe_images(ImageIds=[data["ami_id"]])["Images"]
    snapshot = described["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    instance_id = ec2.run_instances(
        ImageId=data["ami_id"],
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.large",
        IamInstanceProfile={"Name": "tfbake-builder"},
    )["Instances"][0]["InstanceId"]

    wait_online(real_sandbox, instance_id, f"{instance_id} of the containerd AMI online")
    yield {
        "result": data,
        "host": registry.host,
        "digest": image.digest,
        "instance": instance_id,
        "snapshot": real_sandbox.state_dir / "snapshots" / snapshot,
    }
    ec2.terminate_instances(InstanceIds=[instance_id])


def ctr(sandbox: RealSandbox, instance_id: str, command: str) -> str:
    return run_shell(sandbox, instance_id, f"ctr --namespace {NAMESPACE} {command}")


def test_the_instance_lists_the_baked_image_by_tag_and_by_digest(
    real_sandbox: RealSandbox, containerd_bake: dict[str, Any]
) -> None:
    host, digest = containerd_bake["host"], containerd_bake["digest"]
    names = set(ctr(real_sandbox, containerd_bake["instance"], "images list --quiet").split())
    assert {f"{host}/kube/web:1.0", f"{host}/kube/web@{digest}"} <= names
    checked = ctr(
        real_sandbox, containerd_bake["instance"], f"images check name=={host}/kube/web:1.0"
    )
    (line,) = [row for row in checked.splitlines() if row.startswith(f"{host}/kube/web:1.0 ")]
    assert digest in line.split() and "complete" in line and line.split()[-1] == "true"
    # The tag keeps the pull's label: the CRI plugin reports it pinned to the kubelet.
    listed = ctr(
        real_sandbox, containerd_bake["instance"], f"images list name=={host}/kube/web:1.0"
    )
    assert "io.cri-containerd.pinned=pinned" in listed


def test_the_instance_runs_the_baked_image_with_the_registry_stopped(
    real_sandbox: RealSandbox, containerd_bake: dict[str, Any]
) -> None:
    host = containerd_bake["host"]
    # Inside the machine's own cgroups, which the sandbox removes with it.
    group = (
        "$(sed -n 's|^[0-9]*:name=systemd:\\(/tfbake-sandbox/[^/]*\\)/.*|\\1|p' /proc/self/cgroup)"
    )
    output = run_shell(
        real_sandbox,
        containerd_bake["instance"],
        f'ctr --namespace {NAMESPACE} run --rm --cgroup "{group}/ctr-run" '
        f"{host}/kube/web:1.0 baked-web cat /www/index.html",
    )
    assert output.strip() == "served from containerd's baked layer"


def test_the_ami_carries_no_container_of_the_builder(
    real_sandbox: RealSandbox, containerd_bake: dict[str, Any]
) -> None:
    containers = ctr(real_sandbox, containerd_bake["instance"], "containers list --quiet")
    assert "left-by-the-builder" not in containers.split()


def test_the_bake_leaves_dockers_store_without_the_images(
    containerd_bake: dict[str, Any],
) -> None:
    root: Path = containerd_bake["snapshot"]
    repositories = root / "var/lib/docker/image/overlay2/repositories.json"
    known = json.loads(repositories.read_text()) if repositories.exists() else {}
    assert not [name for name in known.get("Repositories", {}) if "kube/web" in name]
    assert (root / "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db").exists()
