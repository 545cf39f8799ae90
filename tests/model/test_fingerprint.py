"""The fingerprint scheme: canonical, order-free, sensitive to every input and only to inputs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest

from tfbake.model.fingerprint import SCHEME, canonical_json, fingerprint_of, inputs_manifest
from tfbake.model.image_set import Builder, ImageSet, Volume
from tfbake.model.reference import ResolvedImage, parse_reference
from tfbake.spec.mapping import image_set_from_mapping

NGINX = "sha256:" + "1" * 64
REDIS = "sha256:" + "2" * 64
RECIPE = "sha256:" + "3" * 64
BASE = {"base_ami_id": "ami-0123456789abcdef0", "architecture": "x86_64", "recipe_digest": RECIPE}

# The worked example of docs/fingerprint.md; its hash is part of the scheme's contract.
WORKED_EXAMPLE_SPEC = {
    "name": "web",
    "images": ["nginx:1.27", "redis:7"],
    "base_ami": "ami-0123456789abcdef0",
    "architecture": "x86_64",
    "volume": {"size": 40},
    "provision": ["echo baked > /etc/motd"],
    "salt": "",
}
WORKED_EXAMPLE_HASH = "fd69d5831fe671e44c4790197f6ef6bf092cefb0e80fb8970bf4dcc4b8d11b01"


def resolved(image_set: ImageSet, digests: dict[str, str] | None = None) -> list[ResolvedImage]:
    digests = digests or {"nginx": NGINX, "redis": REDIS}
    return [
        ResolvedImage(ref, digests[ref.repository.rsplit("/", 1)[-1]]) for ref in image_set.images
    ]


def fingerprint(image_set: ImageSet, **overrides: Any) -> str:
    inputs = {**BASE, "images": resolved(image_set), **overrides}
    return fingerprint_of(inputs_manifest(image_set, **inputs)).value


def example(**changes: Any) -> ImageSet:
    return image_set_from_mapping({**WORKED_EXAMPLE_SPEC, **changes})


def test_worked_example() -> None:
    image_set = example()
    manifest = inputs_manifest(image_set, images=resolved(image_set), **BASE)
    assert canonical_json(manifest).decode() == (
        '{"architecture":"x86_64","base_ami":"ami-0123456789abcdef0","images":['
        f'{{"digest":"{NGINX}","image":"docker.io/library/nginx:1.27"}},'
        f'{{"digest":"{REDIS}","image":"docker.io/library/redis:7"}}],'
        '"name":"web","provision":["echo baked > /etc/motd"],'
        f'"recipe":"{RECIPE}","salt":"","scheme":"tfbake.fingerprint/1",'
        '"volume":{"encrypted":true,"kms_key_id":null,"size_gib":40,"type":"gp3"}}'
    )
    assert fingerprint_of(manifest).value == WORKED_EXAMPLE_HASH


def test_is_64_lower_hex() -> None:
    value = fingerprint(example())
    assert len(value) == 64
    assert value == value.lower()
    int(value, 16)


def test_stable_across_processes() -> None:
    code = (
        "import json,sys; from tests.model.test_fingerprint import example, fingerprint;"
        "print(fingerprint(example()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint(example())


def test_independent_of_image_order_and_duplicates() -> None:
    a = example(images=["nginx:1.27", "redis:7"])
    b = example(images=["redis:7", "docker.io/library/nginx:1.27", "nginx:1.27"])
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    "change",
    [
        {"name": "api"},
        {"images": ["nginx:1.27"]},
        {"images": ["nginx:1.28", "redis:7"]},
        {"volume": {"size": 41}},
        {"volume": {"size": 40, "type": "gp2"}},
        {"volume": {"size": 40, "encrypted": False}},
        {"volume": {"size": 40, "kms_key_id": "alias/k"}},
        {"provision": ["echo other > /etc/motd"]},
        {"provision": []},
        {"salt": "1"},
        {"runtime": "containerd"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changes_with_each_spec_input(change: dict[str, Any]) -> None:
    assert fingerprint(example(**change)) != fingerprint(example())


@pytest.mark.parametrize(
    "override",
    [
        {"base_ami_id": "ami-0fffffffffffffff0"},
        {"architecture": "arm64"},
        {"recipe_digest": "sha256:" + "4" * 64},
    ],
    ids=lambda override: next(iter(override)),
)
def test_changes_with_each_resolved_input(override: dict[str, str]) -> None:
    assert fingerprint(example(), **override) != fingerprint(example())


def test_changes_with_a_digest() -> None:
    image_set = example()
    moved = resolved(image_set, {"nginx": NGINX, "redis": "sha256:" + "9" * 64})
    assert fingerprint(image_set, images=moved) != fingerprint(image_set)


def test_unchanged_by_non_inputs() -> None:
    image_set = example()
    other = dataclasses.replace(
        image_set,
        tags=(("team", "x"),),
        builder=Builder(instance_type="c7i.4xlarge", subnet_id="subnet-9", timeout_minutes=5),
        ami_owners=("123456789012",),
        insecure_registries=("reg:5000",),
        registry_credentials_parameter="/ci/registry",
        source="elsewhere.hcl",
    )
    assert fingerprint(other) == fingerprint(image_set)


def test_volume_defaults_equal_explicit_defaults() -> None:
    explicit = example(volume={"size": 40, "type": "gp3", "encrypted": True})
    assert explicit.volume == Volume(size_gib=40)
    assert fingerprint(explicit) == fingerprint(example())


def test_pinned_reference_keeps_its_tag_in_the_manifest() -> None:
    ref = parse_reference(f"nginx:1.27@{NGINX}")
    image_set = example(images=[str(ref)])
    manifest = inputs_manifest(image_set, images=[ResolvedImage(ref, NGINX)], **BASE)
    assert manifest["images"] == [{"image": "docker.io/library/nginx:1.27", "digest": NGINX}]
    assert manifest["scheme"] == SCHEME
    json.dumps(manifest)  # plain JSON values only


def test_refuses_a_manifest_of_another_scheme() -> None:
    with pytest.raises(ValueError, match="scheme"):
        fingerprint_of({"scheme": "tfbake.fingerprint/0"})


def test_docker_as_the_runtime_keeps_the_fingerprint_it_had_before_runtime_existed() -> None:
    assert fingerprint(example(runtime="docker")) == WORKED_EXAMPLE_HASH


def test_containerd_and_its_namespace_are_inputs() -> None:
    image_set = example(runtime="containerd")
    manifest = inputs_manifest(image_set, images=resolved(image_set), **BASE)
    assert manifest["runtime"] == {"name": "containerd", "namespace": "k8s.io"}
    # The default namespace named, or not, is one disk; another namespace is another.
    named = example(runtime="containerd", containerd_namespace="k8s.io")
    other = example(runtime="containerd", containerd_namespace="baked")
    assert fingerprint(named) == fingerprint(image_set)
    assert fingerprint(other) != fingerprint(image_set)
