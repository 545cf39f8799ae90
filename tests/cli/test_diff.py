"""`tfbake diff` and the recorded manifests it reads, against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_tfbake
from tests.support.specs import write_spec
from tfbake.aws.calls import AwsContext
from tfbake.aws.manifests import PREFIX, load_manifest, store_manifest
from tfbake.model.changes import Change, compare
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

BASE = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
NGINX_OLD = "nginx:1.27@sha256:" + "a" * 64
NGINX_NEW = "nginx:1.27@sha256:" + "c" * 64
REDIS = "redis:7@sha256:" + "b" * 64


def many_images_manifest(count: int) -> dict[str, Any]:
    from hashlib import sha256

    images = [
        {"image": f"registry.example.com/team/service-{n:03d}:v1.{n}",
         "digest": "sha256:" + sha256(str(n).encode()).hexdigest()}
        for n in range(count)
    ]  # fmt: skip
    return {"scheme": "tfbake.fingerprint/1", "name": "big", "images": images}


def test_manifest_of_100_images_round_trips(sandbox: Sandbox) -> None:
    from tfbake.model.fingerprint import fingerprint_of

    manifest = many_images_manifest(100)
    fingerprint = fingerprint_of(manifest).value
    ssm = AwsContext().client("ssm")
    store_manifest(ssm, fingerprint, manifest, "us-east-1")
    parts = ssm.get_parameters_by_path(Path=PREFIX + fingerprint)["Parameters"]
    assert len(parts) >= 2  # more than one standard-tier parameter's worth
    assert all(len(p["Value"]) <= 4096 for p in parts)
    assert load_manifest(ssm, fingerprint, "us-east-1") == manifest


def test_a_manifest_that_does_not_match_its_name_is_ignored(sandbox: Sandbox) -> None:
    ssm = AwsContext().client("ssm")
    store_manifest(ssm, "0" * 64, many_images_manifest(2), "us-east-1")
    assert load_manifest(ssm, "0" * 64, "us-east-1") is None
    assert load_manifest(ssm, "1" * 64, "us-east-1") is None


def test_compare_names_changed_added_and_removed_images() -> None:
    old = {"images": [{"image": "a:1", "digest": "sha256:1"}, {"image": "b:1", "digest": "x"}],
           "base_ami": "ami-1", "salt": ""}  # fmt: skip
    new = {"images": [{"image": "a:1", "digest": "sha256:2"}, {"image": "c:1", "digest": "y"}],
           "base_ami": "ami-2", "salt": ""}  # fmt: skip
    assert compare(old, new) == [
        Change("images", "a:1", "sha256:1", "sha256:2"),
        Change("images", "b:1", "x", None),
        Change("images", "c:1", None, "y"),
        Change("base_ami", "", "ami-1", "ami-2"),
    ]


@pytest.fixture
def baked(tmp_path: Path, sandbox: Sandbox) -> Path:
    spec = write_spec(tmp_path, base_ami=BASE, images=[NGINX_OLD, REDIS])
    result = run_tfbake("ensure", str(spec))
    assert result.code == 0, result.stderr
    return spec


def test_no_bake_needed(baked: Path) -> None:
    result = run_tfbake("diff", str(baked))
    assert result.code == 0
    assert "no bake needed" in result.stdout


def test_changed_digest_is_explained(baked: Path, tmp_path: Path) -> None:
    changed_dir = tmp_path / "changed"
    changed_dir.mkdir()
    spec = write_spec(changed_dir, base_ami=BASE, images=[NGINX_NEW, REDIS], salt="x")
    result = run_tfbake("diff", str(spec))
    assert result.code == ExitCode.AMI_MISSING
    lines = result.stdout.strip().splitlines()
    assert "a bake is needed" in lines[0]
    assert (
        "  image docker.io/library/nginx:1.27: sha256:" + "a" * 64 + " -> sha256:" + "c" * 64
    ) in lines
    assert '  salt: "" -> "x"' in lines  # both sides quoted, one of them empty

    data = json.loads(run_tfbake("--json", "diff", str(spec)).stdout)
    assert data["bake_needed"] is True
    assert data["manifest_recorded"] is True
    expected = {
        "input": "images",
        "image": "docker.io/library/nginx:1.27",
        "old": "sha256:" + "a" * 64,
        "new": "sha256:" + "c" * 64,
    }
    assert expected in data["changes"]


def test_nothing_to_compare_with(tmp_path: Path, sandbox: Sandbox) -> None:
    result = run_tfbake("diff", str(write_spec(tmp_path, base_ami=BASE)))
    assert result.code == ExitCode.AMI_MISSING
    assert "no ready AMI of this image set" in result.stdout


# ---- recorded manifests written by someone else ---------------------------------------------


def _replace_recorded_parts(fingerprint: str, payload: bytes) -> None:
    """The recorded manifest of `fingerprint` replaced by `payload`, gzipped as tfbake stores."""
    import base64
    import gzip

    ssm = AwsContext().client("ssm")
    for part in ssm.get_parameters_by_path(Path=PREFIX + fingerprint)["Parameters"]:
        ssm.delete_parameter(Name=part["Name"])
    encoded = base64.b64encode(gzip.compress(payload, compresslevel=9, mtime=0)).decode()
    for index in range(0, len(encoded), 4000):
        ssm.put_parameter(
            Name=f"{PREFIX}{fingerprint}/part-{index // 4000:03d}",
            Value=encoded[index : index + 4000],
            Type="String",
        )


def _fingerprint_of_spec(spec: Path) -> str:
    return run_tfbake("fingerprint", str(spec)).stdout.strip()


def test_a_recorded_manifest_nested_100000_deep_is_not_explained(
    baked: Path, tmp_path: Path
) -> None:
    _replace_recorded_parts(_fingerprint_of_spec(baked), b"[" * 100_000 + b"]" * 100_000)
    changed_dir = tmp_path / "changed"
    changed_dir.mkdir()
    spec = write_spec(changed_dir, base_ami=BASE, images=[NGINX_NEW, REDIS])

    result = run_tfbake("diff", str(spec))

    assert result.code == ExitCode.AMI_MISSING, result.stderr
    assert "inputs were not recorded" in result.stdout


def test_a_gzip_bomb_in_the_recorded_parts_is_refused_without_unpacking_it(
    sandbox: Sandbox,
) -> None:
    import tracemalloc

    fingerprint = "d" * 64
    _replace_recorded_parts(fingerprint, b"\0" * (256 * 1024 * 1024))
    ssm = AwsContext().client("ssm")

    tracemalloc.start()
    try:
        loaded = load_manifest(ssm, fingerprint, "us-east-1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert loaded is None
    assert peak < 32 * 1024 * 1024  # the 256 MB it would unpack to were never held


def test_changed_provision_commands_are_named_not_shown(baked: Path, tmp_path: Path) -> None:
    changed_dir = tmp_path / "changed"
    changed_dir.mkdir()
    secret = "curl -H 'Authorization: Bearer s3cr3t-t0ken' https://example.com/setup | sh"
    spec = write_spec(changed_dir, base_ami=BASE, images=[NGINX_OLD, REDIS], provision=[secret])

    result = run_tfbake("diff", str(spec))
    data = json.loads(run_tfbake("--json", "diff", str(spec)).stdout)

    assert "s3cr3t" not in result.stdout
    assert "  provision: 0 commands -> 1 command (command 1 changed)" in result.stdout
    assert "s3cr3t" not in json.dumps(data)
