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

from tests.support.cli import run_tfbake
from tests.support.images import push_busybox_image, push_busybox_index
from tests.support.real_sandbox import RealSandbox
from tests.support.registry import RegistryServer
from tfbake.sandbox.base_images import DEBIAN_OWNER

DEBIAN = {"owners": [DEBIAN_OWNER], "name": "debian-12-amd64-*"}
# The variant with Docker preinstalled: the fast path, for tests about other things.
DEBIAN_WITH_DOCKER = {"owners": [DEBIAN_OWNER], "name": "tfbake-sandbox-debian-12-amd64-docker-*"}
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


def ensure(sandbox: RealSandbox, spec: Path) -> Any:
    return run_tfbake(
        "ensure", str(spec), "--json", env=sandbox.environment(), timeout=BAKE_TIMEOUT
    )


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def baked(
    real_sandbox: RealSandbox, three_images: dict[str, str], tmp_path_factory: Any
) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("spec")
    images = [three_images["web"], three_images["worker"], three_images["multi"]]
    spec = bake_spec(directory, "real-three", images, base_ami=DEBIAN)
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
    }


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
