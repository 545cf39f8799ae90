"""Bakes that fail on a real builder: at the recipe step, quoting the recipe's own last words,
with the builder machine gone and no image marked ready."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.real.conftest import bake_spec, ensure
from tests.support.images import push_busybox_image
from tests.support.real_sandbox import RealSandbox
from tests.support.registry import RegistryServer, start_registry

MISSING_DIGEST = "sha256:" + "0" * 64


def assert_failed_at_the_recipe(
    sandbox: RealSandbox, result: Any, name: str, *last_words: str
) -> None:
    assert result.code == 4, result.stderr
    assert "failed at step RunRecipe" in result.stderr
    tail = result.stderr.split("recipe output (last lines):", 1)[1]
    for words in last_words:
        assert words in tail, tail
    ec2 = sandbox.client("ec2")
    builders = ec2.describe_instances(
        Filters=[
            {"Name": "tag:tfbake:role", "Values": ["builder"]},
            {"Name": "tag:tfbake:name", "Values": [name]},
        ]
    )["Reservations"]
    assert {i["State"]["Name"] for r in builders for i in r["Instances"]} == {"terminated"}
    ready = ec2.describe_images(
        Owners=["self"],
        Filters=[
            {"Name": "tag:tfbake:name", "Values": [name]},
            {"Name": "tag:tfbake:status", "Values": ["ready"]},
        ],
    )["Images"]
    assert ready == []
    machines = [p.name for p in (sandbox.state_dir / "instances").iterdir()]
    assert machines == []


def test_a_failing_provision_command(
    real_sandbox: RealSandbox, real_registry: RegistryServer, tmp_path: Path
) -> None:
    image = push_busybox_image(real_registry, "provision-fails", "1")
    spec = bake_spec(
        tmp_path,
        "real-provision-fails",
        [image.reference(real_registry.host)],
        provision=["echo preparing", "echo 'the disk is full' >&2; exit 3"],
    )
    result = ensure(real_sandbox, spec)
    assert_failed_at_the_recipe(
        real_sandbox,
        result,
        "real-provision-fails",
        "the disk is full",
        "provision command 2 of 2 failed (exit status 3)",
    )


def test_a_digest_the_registry_does_not_have(
    real_sandbox: RealSandbox, real_registry: RegistryServer, tmp_path: Path
) -> None:
    push_busybox_image(real_registry, "gone", "1")
    reference = f"{real_registry.host}/gone@{MISSING_DIGEST}"
    spec = bake_spec(tmp_path, "real-missing-digest", [reference])
    result = ensure(real_sandbox, spec)
    assert_failed_at_the_recipe(
        real_sandbox,
        result,
        "real-missing-digest",
        f"pull failed: {reference}",
        "1 of 1 image pulls failed",
    )


def test_a_registry_that_is_down(real_sandbox: RealSandbox, tmp_path: Path) -> None:
    # Resolved while it was up (pinned references need no registry at plan); down at the bake.
    registry = start_registry(tmp_path / "registry")
    image = push_busybox_image(registry, "unreachable", "1")
    reference = f"{registry.host}/unreachable@{image.digest}"
    registry.stop()
    spec = bake_spec(tmp_path, "real-registry-down", [reference])
    result = ensure(real_sandbox, spec)
    assert_failed_at_the_recipe(
        real_sandbox,
        result,
        "real-registry-down",
        "connection refused",
        f"pull failed: {reference}",
    )


def test_a_base_whose_docker_will_not_start(
    real_sandbox: RealSandbox, real_registry: RegistryServer, tmp_path: Path
) -> None:
    # The base: an AMI whose Docker configuration was broken after its images were pulled, so
    # that its Docker does not start at the next boot.
    image = push_busybox_image(real_registry, "docker-broken", "1")
    reference = image.reference(real_registry.host)
    base_spec = bake_spec(
        tmp_path,
        "real-broken-docker-base",
        [reference],
        provision=["printf '{broken' >/etc/docker/daemon.json"],
    )
    base = ensure(real_sandbox, base_spec)
    assert base.code == 0, base.stderr[-3000:]
    spec = bake_spec(
        tmp_path, "real-on-broken-docker", [reference], base_ami=json.loads(base.stdout)["ami_id"]
    )
    result = ensure(real_sandbox, spec)
    assert_failed_at_the_recipe(
        real_sandbox,
        result,
        "real-on-broken-docker",
        "docker.service did not start: unable to configure the Docker daemon with file "
        "/etc/docker/daemon.json",
    )
