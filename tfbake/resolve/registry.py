"""Resolve image tags to the manifest digest of one platform, through the Registry HTTP API v2.

The pinned digest is the platform manifest's (what `docker pull` on the builder fetches), never
the index's: re-pushing another architecture of a multi-arch tag must not change the
fingerprint of an AMI that does not use it. Transport, auth and retries are in
`tfbake.resolve.registry_client`; credential lookup in `tfbake.resolve.credentials`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfbake.aws.calls import AwsContext
from tfbake.model.errors import BadInput, InvalidReference, RegistryError, TfbakeError
from tfbake.model.reference import ImageReference, ResolvedImage, validate_digest
from tfbake.resolve.registry_client import RegistryClient, RegistryFailure, Response

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# All four, or registries convert Docker v2 images to schema 1 (another digest) and answer 404
# for OCI ones.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SINGLE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# AMI architecture names to the OCI platform names used in image indexes.
OCI_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}
_PREFERRED_VARIANTS = {"arm64": "v8"}


@dataclass(frozen=True)
class RegistryOptions:
    insecure_registries: frozenset[str] = frozenset()  # host[:port] allowed over plain HTTP
    docker_config: Path | None = None  # default: $DOCKER_CONFIG/config.json, ~/.docker/config.json
    timeout: float = 10.0  # seconds a registry may stay silent
    deadline: float = 60.0  # seconds for a whole request, its retries and answer included
    # Manifest HEADs are small and registries serve them in parallel; 16 keeps a 50-image set
    # to four round trips without approaching Docker Hub's per-client limits.
    max_workers: int = 16
    retries: int = 3  # on 429, 5xx and connection resets, with backoff
    aws: AwsContext | None = None  # for ECR registries


def resolve_images(
    references: Sequence[ImageReference],
    architecture: str,
    options: RegistryOptions = RegistryOptions(),
) -> list[ResolvedImage]:
    """Pin every reference to its manifest digest for `architecture`, in input order."""
    platform = OCI_ARCHITECTURES.get(architecture)
    if platform is None:
        raise BadInput(
            f"unsupported architecture {architecture!r} (expected one of "
            f"{', '.join(sorted(OCI_ARCHITECTURES))})"
        )
    if options.max_workers < 1:
        raise BadInput(f"max_workers must be at least 1, got {options.max_workers}")
    # A reference given twice is asked for once.
    pending = list(dict.fromkeys(ref for ref in references if not ref.is_pinned))
    found: dict[ImageReference, str | TfbakeError] = {}
    private: set[ImageReference] = set()
    if pending:
        client = RegistryClient(
            insecure_registries=options.insecure_registries,
            docker_config=options.docker_config,
            timeout=options.timeout,
            deadline=options.deadline,
            retries=options.retries,
            aws=options.aws,
        )
        try:
            workers = min(options.max_workers, len(pending))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="resolve") as pool:
                futures = {
                    ref: pool.submit(_resolve_or_error, client, ref, platform) for ref in pending
                }
            found = {ref: future.result() for ref, future in futures.items()}
            private = {ref for ref in pending if client.needed_credentials(ref)}
        finally:
            client.close()
    outcomes = [ref.digest or found[ref] for ref in references]
    # Identity-deduplicated, so that a failing reference given twice counts once.
    failures = list(dict.fromkeys(o for o in outcomes if isinstance(o, TfbakeError)))
    if failures:
        raise _all_failures(failures, len(set(references))) from None
    return [
        ResolvedImage(ref, digest, needs_credentials=ref in private)
        for ref, digest in zip(references, outcomes, strict=True)
        if isinstance(digest, str)
    ]


def _all_failures(failures: list[TfbakeError], total: int) -> TfbakeError:
    """The first failure on the one line, with the count; every failure, one per line, for -v."""
    first = failures[0]
    count = f"{len(failures)} of {total} images failed"
    if len(failures) > 1:
        count += "; -v lists each"
    error = type(first)(f"{first.message} ({count})")
    error.lines = tuple(failure.one_line() for failure in failures)
    return error


def _resolve_or_error(
    client: RegistryClient, ref: ImageReference, platform: str
) -> str | TfbakeError:
    # Errors are returned, not raised, so that every image is tried and the report can say how
    # many failed; the first by input order is the one shown.
    try:
        return resolve_digest(client, ref, platform)
    except RegistryFailure as failure:
        return RegistryError(f"cannot resolve {ref}: {failure}")
    except TfbakeError as err:
        return type(err)(f"cannot resolve {ref}: {err.message}")


def resolve_digest(client: RegistryClient, ref: ImageReference, platform: str) -> str:
    """The digest to pin `ref` to on linux/`platform`, from its registry."""
    path = f"/v2/{ref.repository}/manifests/{ref.tag_or_digest}"
    headers = {"Accept": MANIFEST_ACCEPT}
    head = client.request(ref, "HEAD", path, headers)
    media_type = _media_type(head)
    digest = head.header("Docker-Content-Digest")
    if head.status == 200 and digest and media_type in SINGLE_TYPES:
        return _checked_digest(digest)
    # An index must be read to choose a platform; a HEAD without a digest or with an error
    # carries no body to explain itself, so GET in both cases.
    response = client.request(ref, "GET", path, headers)
    if response.status != 200:
        raise _manifest_failure(client, ref, response)
    actual = "sha256:" + hashlib.sha256(response.body).hexdigest()
    sent = response.header("Docker-Content-Digest")
    if sent and sent.startswith("sha256:") and sent != actual:
        raise RegistryFailure(
            f"the registry sent a manifest whose sha256 ({actual}) differs from "
            f"its Docker-Content-Digest ({sent})"
        )
    if _media_type(response) in INDEX_TYPES:
        return _platform_manifest(response.body, platform)
    return actual


def _platform_manifest(body: bytes, platform: str) -> str:
    try:
        manifests = json.loads(body)["manifests"]
    except (ValueError, KeyError, TypeError):
        raise RegistryFailure("the registry sent an unreadable image index") from None
    candidates = []
    available = []
    for entry in manifests:
        found = entry.get("platform") or {}
        name = "/".join(
            part
            for part in (found.get("os"), found.get("architecture"), found.get("variant"))
            if part
        )
        available.append(name or "unknown")
        if found.get("os") == "linux" and found.get("architecture") == platform:
            candidates.append(entry)
    if not candidates:
        have = ", ".join(dict.fromkeys(available)) or "none"
        raise RegistryFailure(f"no linux/{platform} image in its index (platforms: {have})")
    return _checked_digest(_one_digest(candidates, platform))


def _one_digest(candidates: list[dict[str, Any]], platform: str) -> str:
    """The manifest to pin among an index's linux/`platform` entries, whatever their order: the
    preferred variant's, else the one without a variant, else the only one. Two different
    manifests for the same platform are refused: a registry's order is no reason to pick one.
    """
    by_variant: dict[str | None, set[str]] = {}
    for entry in candidates:
        variant = (entry.get("platform") or {}).get("variant") or None
        by_variant.setdefault(variant, set()).add(str(entry.get("digest", "")))
    preferred = _PREFERRED_VARIANTS.get(platform)
    if preferred in by_variant:
        digests = by_variant[preferred]
    elif None in by_variant:
        digests = by_variant[None]
    else:
        digests = {digest for found in by_variant.values() for digest in found}
    if len(digests) > 1:
        listed = ", ".join(sorted(d for found in by_variant.values() for d in found))
        raise RegistryFailure(
            f"its index lists linux/{platform} more than once ({listed}): ambiguous; "
            "pin the manifest you mean by digest"
        )
    return next(iter(digests))


def _manifest_failure(
    client: RegistryClient, ref: ImageReference, response: Response
) -> RegistryFailure:
    code, message = response.error()
    if code == "NAME_UNKNOWN":
        return RegistryFailure(f"repository {ref.repository} not found on {ref.registry}")
    if response.status == 404:
        # Registries answer MANIFEST_UNKNOWN for a missing repository too; the tag list
        # tells the two apart.
        probe = client.request(ref, "GET", f"/v2/{ref.repository}/tags/list?n=1", {})
        if probe.status == 404 and probe.error()[0] == "NAME_UNKNOWN":
            return RegistryFailure(f"repository {ref.repository} not found on {ref.registry}")
        what = f"tag {ref.tag!r}" if not ref.is_pinned else f"manifest {ref.digest}"
        return RegistryFailure(f"{what} not found in {ref.registry}/{ref.repository}")
    detail = f" {code}: {message}" if code else ""
    return RegistryFailure(
        f"{ref.api_host} answered HTTP {response.status} for the manifest{detail}"
    )


def _media_type(response: Response) -> str:
    return (response.header("Content-Type") or "").split(";")[0].strip()


def _checked_digest(digest: str) -> str:
    try:
        return validate_digest(digest)
    except InvalidReference:
        raise RegistryFailure(f"the registry sent a malformed digest {digest[:80]!r}") from None
