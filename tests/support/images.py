"""Runnable container images, built offline and pushed to a loopback registry by plain HTTP.

Each image is `FROM scratch` plus Debian's statically linked busybox (busybox-static), with the
applets a test container needs linked to it, and optionally files of its own (a page to serve,
a marker to tell images apart). Layers are deterministic tarballs, so the same content is the
same digest every run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryServer,
    digest_of,
    push_blob,
    push_manifest,
)

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "httpd", "sleep", "ls", "wget", "hostname", "date")
_LAYER_TYPES = {
    DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip",
}
_CONFIG_TYPES = {
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
}


def require_busybox() -> bytes:
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} missing: apt-get install busybox-static", pytrace=False)
    data = BUSYBOX.read_bytes()
    if b"GLIBC_" in data[:200_000] and b"statically linked" not in data:
        pytest.fail(f"{BUSYBOX} is not static: apt-get install busybox-static", pytrace=False)
    return data


def _tar_layer(files: dict[str, bytes]) -> bytes:
    """A deterministic tar of `files` plus busybox and its applet links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, link: str | None = None, mode=0o755):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))

        for directory in ("bin", "tmp", "www"):
            add(directory)
        add("bin/busybox", require_busybox())
        for applet in APPLETS:
            add(f"bin/{applet}", link="busybox")
        for name, data in sorted(files.items()):
            add(name, data, mode=0o644)
    return buffer.getvalue()


@dataclass(frozen=True)
class Layer:
    blob: bytes  # the gzip blob a registry serves
    diff_id: str  # sha256 of the uncompressed tar, as the image config names it


def random_layer(size: int, seed: int) -> Layer:
    """A layer of one file of `size` random bytes: it compresses to its own size, like the bulk
    of a real image, and the same seed gives the same digest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(f"data/{seed}.bin")
        info.size, info.mtime, info.mode = size, 0, 0o644
        tar.addfile(info, io.BytesIO(random.Random(seed).randbytes(size)))
    layer_tar = buffer.getvalue()
    # Random bytes do not compress: gzip's stored blocks give the same size in a fraction of the
    # time, and cost the puller less to unpack than a real image's deflate would.
    blob = gzip.compress(layer_tar, compresslevel=0, mtime=0)
    return Layer(blob, "sha256:" + hashlib.sha256(layer_tar).hexdigest())


@dataclass(frozen=True)
class BuiltImage:
    repository: str
    tag: str
    digest: str  # the manifest's digest, what a pinned reference names
    compressed_bytes: int

    def reference(self, host: str) -> str:
        return f"{host}/{self.repository}:{self.tag}"


def push_busybox_image(
    registry: RegistryServer,
    repository: str,
    tag: str,
    *,
    files: dict[str, bytes] | None = None,
    command: list[str] | None = None,
    media_type: str = DOCKER_MANIFEST,
    architecture: str = "amd64",
    extra_layers: Sequence[Layer] = (),
) -> BuiltImage:
    """Push a busybox image under `tag` (or untagged when tag is a digest placeholder ''),
    with `extra_layers` above the busybox one."""
    layer_tar = _tar_layer(files or {})
    layer = gzip.compress(layer_tar, mtime=0)
    layer_blobs = [push_blob(registry, repository, layer)]
    layer_blobs += [push_blob(registry, repository, extra.blob) for extra in extra_layers]
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": command or ["sleep", "3600"], "Env": ["PATH=/bin"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": [
                "sha256:" + hashlib.sha256(layer_tar).hexdigest(),
                *(extra.diff_id for extra in extra_layers),
            ],
        },
    }
    config_blob = push_blob(registry, repository, json.dumps(config, sort_keys=True).encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": _CONFIG_TYPES[media_type], **config_blob},
            "layers": [{"mediaType": _LAYER_TYPES[media_type], **blob} for blob in layer_blobs],
        }
    ).encode()
    digest = push_manifest(registry, repository, tag or digest_of(manifest), manifest, media_type)
    compressed = len(layer) + sum(len(extra.blob) for extra in extra_layers)
    return BuiltImage(repository, tag, digest, compressed)


def push_busybox_index(
    registry: RegistryServer, repository: str, tag: str, *, files: dict[str, bytes] | None = None
) -> tuple[BuiltImage, str]:
    """A multi-arch OCI index (amd64 runs busybox; arm64 is a stand-in never pulled here).

    Returns the index as pushed and the digest of its amd64 manifest, which is what a bake for
    x86_64 pins.
    """
    entries, amd64_digest = [], ""
    for architecture in ("amd64", "arm64"):
        image = push_busybox_image(
            registry,
            repository,
            "",
            files={**(files or {}), "arch": architecture.encode()},
            media_type=OCI_MANIFEST,
            architecture=architecture,
        )
        platform = {"architecture": architecture, "os": "linux"}
        if architecture == "amd64":
            amd64_digest = image.digest
        entries.append({"mediaType": OCI_MANIFEST, "digest": image.digest, "platform": platform})
    for entry in entries:
        entry["size"] = len(_manifest_bytes(registry, repository, entry["digest"]))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = push_manifest(registry, repository, tag, index.encode(), OCI_INDEX)
    return BuiltImage(repository, tag, digest, 0), amd64_digest


def _manifest_bytes(registry: RegistryServer, repository: str, digest: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/{digest}",
        headers={"Accept": OCI_MANIFEST, **registry.push_headers(repository)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()
