"""Bakes that fail on a real builder: at the recipe step, quoting the recipe's own last words,
with the builder machine gone and no image marked ready."""

from __future__ import annotations

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
