"""A bake on a real builder: the recipe runs in a booted machine, its disk becomes the AMI.

The image set has the three kinds of reference a bake pins (a tag, a digest alone, a multi-arch
index), and the base is Debian without Docker, so the recipe's install path runs too. The
captured snapshot is then read as a directory: the images are in Docker's store, and none of
the builder's per-host state is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.real_sandbox import RealSandbox


def test_the_bake_returns_a_ready_image_from_a_real_builder(
    baked: dict[str, Any], real_sandbox: RealSandbox
) -> None:
    assert baked["result"]["status"] == "baked"
    tags = {t["Key"]: t["Value"] for t in baked["image"]["Tags"]}
    assert tags["tfbake:status"] == "ready"
    # The builder is gone: terminated, and its machine's root removed.
    ec2 = real_sandbox.client("ec2")
    builders = ec2.describe_instances(Filters=[{"Name": "tag:tfbake:role", "Values": ["builder"]}])[
        "Reservations"
    ]
    states = {i["State"]["Name"] for r in builders for i in r["Instances"]}
    assert states == {"terminated"}
    assert list((real_sandbox.state_dir / "instances").iterdir()) == []


def test_the_snapshot_holds_every_image_pulled_by_digest(
    baked: dict[str, Any], three_images: dict[str, str]
) -> None:
    root = baked["snapshot"]
    assert (root / "usr/sbin/dockerd").is_file(), "Docker was installed on the Debian base"
    repositories = json.loads(
        (root / "var/lib/docker/image/overlay2/repositories.json").read_text()
    )["Repositories"]
    host = three_images["web"].split("/")[0]
    names = {ref for refs in repositories.values() for ref in refs}
    assert f"{host}/web:1.0" in names
    assert f"{host}/web@{three_images['web_digest']}" in names
    assert f"{host}/multi@{three_images['multi_amd64']}" in names
    assert f"{host}/worker@{three_images['worker'].split('@')[1]}" in names


# Per-host state that virt-sysprep's operations remove from a cloud image, and that a bake must
# not hand to every instance: (path in the snapshot, what must hold).
def _absent(root: Path, pattern: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob(pattern))


@pytest.mark.parametrize(
    "pattern",
    [
        "etc/ssh/ssh_host_*",
        "var/lib/systemd/random-seed",
        "var/lib/systemd/credential.secret",
        "var/lib/amazon/ssm/i-*",
        "var/lib/cloud/instances/*",
        "var/lib/cloud/instance",
        "var/lib/dhcp/*.lease*",
        "var/log/journal/*",
        "var/log/**/*.gz",
        "root/.*_history",
        "root/.ssh",
        "home/*/.ssh",
        "root/.docker/config.json",
        "etc/docker/key.json",
        "var/lib/docker/engine-id",
        "run/docker.pid",
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*_Packages",
        "tmp/*",
        "var/tmp/*",
        "etc/systemd/system/tfbake-shutdown-cleanup.service",
        "var/lib/ecs/data/*",
    ],
)
def test_the_snapshot_holds_no_per_host_state(baked: dict[str, Any], pattern: str) -> None:
    assert _absent(baked["snapshot"], pattern) == []


def test_the_snapshot_keeps_the_ecs_agents_configuration(baked: dict[str, Any]) -> None:
    root = baked["snapshot"]
    assert (root / "etc/ecs/ecs.config").read_text() == "ECS_LOGLEVEL=info\n"
    assert (root / "var/lib/ecs/data").is_dir()


def test_the_snapshot_has_no_machine_id_of_the_builder(baked: dict[str, Any]) -> None:
    root = baked["snapshot"]
    assert (root / "etc/machine-id").read_text() == ""
    dbus_copy = root / "var/lib/dbus/machine-id"
    assert not dbus_copy.exists() or dbus_copy.is_symlink()


def test_the_snapshot_keeps_logs_empty_and_the_agent_enabled(baked: dict[str, Any]) -> None:
    root = baked["snapshot"]
    # Log files stay, empty, for their writers; only systemd's README about the journal is text.
    written = [
        p
        for p in (root / "var/log").rglob("*")
        if p.is_file() and p.stat().st_size and p.name != "README"
    ]
    assert written == []
    # Links into the image's own tree (absolute, so read as links, not followed on the host).
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert (wants / "amazon-ssm-agent.service").is_symlink()
    assert (wants / "docker.service").is_symlink()
