"""Each bake's inputs manifest, kept in SSM Parameter Store so `tfbake diff` can explain it.

AMI tags cannot hold it (50 tags of 256 characters, and an image set of 100 images has ~15 KB of
inputs). Parameter Store needs no infrastructure of its own: the manifest is stored gzipped and
base64-encoded, split over standard-tier parameters (4 KB each, free of charge) under
/tfbake/manifests/<fingerprint>/. The fingerprint is the hash of the manifest, so a load checks
what it read against the name it read it from.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from typing import Any

from tfbake.aws.calls import aws_errors, paginate
from tfbake.model.fingerprint import canonical_json

PREFIX = "/tfbake/manifests/"
CHUNK_CHARACTERS = 4000  # below the standard tier's 4,096-character limit
# What a recorded manifest may unpack to and how deep it may nest. tfbake writes ~150 bytes an
# image and four levels; anyone who may write the parameters can write anything else (a gzip
# bomb, a list nested 100,000 deep), which is refused as unrecorded instead of being unpacked.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_DEPTH = 16


def store_manifest(ssm: Any, fingerprint: str, manifest: dict[str, Any], region: str) -> None:
    encoded = base64.b64encode(gzip.compress(canonical_json(manifest), mtime=0)).decode()
    chunks = [encoded[i : i + CHUNK_CHARACTERS] for i in range(0, len(encoded), CHUNK_CHARACTERS)]
    with aws_errors(f"ssm:PutParameter {PREFIX}{fingerprint}/", region):
        for index, chunk in enumerate(chunks):
            ssm.put_parameter(
                Name=f"{PREFIX}{fingerprint}/part-{index:03d}",
                Value=chunk,
                Type="String",
                Tier="Standard",
                Overwrite=True,
            )


def load_manifest(ssm: Any, fingerprint: str, region: str) -> dict[str, Any] | None:
    """The recorded manifest, or None when none was recorded (or it does not match)."""
    with aws_errors(f"ssm:GetParametersByPath {PREFIX}{fingerprint}/", region):
        parameters = list(
            paginate(ssm, "get_parameters_by_path", "Parameters", Path=f"{PREFIX}{fingerprint}")
        )
    if not parameters:
        return None
    encoded = "".join(p["Value"] for p in sorted(parameters, key=lambda p: p["Name"]))
    try:
        data = _gunzip_bounded(base64.b64decode(encoded), MAX_MANIFEST_BYTES)
        manifest = json.loads(data) if data is not None else None
    except (ValueError, OSError, zlib.error, RecursionError):
        return None
    if not isinstance(manifest, dict) or _depth(manifest) > MAX_MANIFEST_DEPTH:
        return None
    if hashlib.sha256(canonical_json(manifest)).hexdigest() != fingerprint:
        return None  # damaged or partly overwritten: better no explanation than a wrong one
    return manifest


def _gunzip_bounded(data: bytes, limit: int) -> bytes | None:
    """The gzip stream's content; None when it would unpack to more than `limit` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        return None
    return out


def _depth(value: Any) -> int:
    """How deep `value` nests, counted without recursion (a hostile value is deeper than the
    interpreter's stack)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            pending.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, level + 1) for child in item)
    return deepest


def delete_manifest(ssm: Any, fingerprint: str, region: str) -> None:
    with aws_errors(f"ssm:DeleteParameters {PREFIX}{fingerprint}/", region):
        names = [
            p["Name"]
            for p in paginate(
                ssm, "get_parameters_by_path", "Parameters", Path=f"{PREFIX}{fingerprint}"
            )
        ]
        for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names
            ssm.delete_parameters(Names=names[start : start + 10])
