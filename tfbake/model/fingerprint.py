"""The fingerprint: a SHA-256 over every input that changes what is on the AMI's disk (pure).

Scheme tfbake.fingerprint/1 hashes the canonical JSON (sorted keys, no insignificant whitespace,
UTF-8) of the inputs manifest built here. Builder settings, tags, timeouts and owners are
deliberately absent: they change how or where a bake runs, never the disk it produces. Any change
to the manifest's shape needs a new scheme version, or every existing AMI would be rebaked.
Optional inputs (`ansible`, and `runtime` when it is not Docker) appear only when used, so a
spec that does not use one keeps the fingerprint it had before the input existed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tfbake.model.image_set import ImageSet
from tfbake.model.reference import ResolvedImage

SCHEME = "tfbake.fingerprint/1"
# The spec fields the manifest is made of (docs/fingerprint.md); every other field changes how
# or where a bake runs, not which AMI is the right one.
INPUT_FIELDS = (
    "name", "images", "base_ami", "architecture", "volume", "provision", "salt", "ansible",
    "runtime", "containerd_namespace",
)  # fmt: skip


@dataclass(frozen=True)
class Fingerprint:
    value: str  # 64 lower-case hex characters
    manifest: dict[str, Any]

    @property
    def short(self) -> str:
        return self.value[:16]


def inputs_manifest(
    image_set: ImageSet,
    *,
    base_ami_id: str,
    architecture: str,
    images: Iterable[ResolvedImage],
    recipe_digest: str,
) -> dict[str, Any]:
    """Everything the AMI's contents depend on, as plain JSON values."""
    entries = {(image.reference.unpinned, image.digest) for image in images}
    volume = image_set.volume
    manifest: dict[str, Any] = {
        "scheme": SCHEME,
        "name": image_set.name,
        "base_ami": base_ami_id,
        "architecture": architecture,
        "images": [{"image": image, "digest": digest} for image, digest in sorted(entries)],
        "volume": {
            "size_gib": volume.size_gib,
            "type": volume.type,
            "encrypted": volume.encrypted,
            "kms_key_id": volume.kms_key_id,
        },
        "provision": list(image_set.provision),
        "recipe": recipe_digest,
        "salt": image_set.salt,
    }
    if image_set.ansible is not None:
        manifest["ansible"] = image_set.ansible.manifest_entry()
    runtime = image_set.runtime.manifest_entry()
    if runtime is not None:
        manifest["runtime"] = runtime
    return manifest


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint_of(manifest: dict[str, Any]) -> Fingerprint:
    if manifest.get("scheme") != SCHEME:
        raise ValueError(f"manifest scheme {manifest.get('scheme')!r} is not {SCHEME}")
    return Fingerprint(hashlib.sha256(canonical_json(manifest)).hexdigest(), manifest)
