"""Docker image references: parse, validate and normalise (pure, no I/O).

The grammar is the one of Docker's distribution/reference package. Every image reference a user
gives passes through `parse_reference` before it is used anywhere else, which is what keeps
shell metacharacters, whitespace and other surprises away from the builder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tfbake.model.errors import InvalidReference

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
# Docker Hub's API lives on another host than the name users write.
REGISTRY_API_HOSTS = {"docker.io": "registry-1.docker.io"}

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REPOSITORY = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's \w (Docker's grammar) is ASCII only
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>[A-Za-z0-9._/-]+?))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_REPOSITORY_RE = re.compile(_REPOSITORY)
_DOMAIN_RE = re.compile(_DOMAIN)
# The digest algorithms registries actually serve, with their exact hex lengths.
_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}
_ANONYMOUS_ID_RE = re.compile(r"[a-f0-9]{64}")
_NAME_MAX = 255
# Amazon ECR's registry hosts, the FIPS endpoints (dkr.ecr-fips) and the China partition
# included. The one rule: credentials, the builder's ECR logins and the recipe's check
# (recipe.sh's re_ecr_host, which a test holds equal to this) all read it.
ECR_HOST_RE = re.compile(
    r"[0-9]{12}\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)


def is_ecr_host(host: str) -> bool:
    return ECR_HOST_RE.fullmatch(host) is not None


@dataclass(frozen=True, order=True)
class ImageReference:
    """A normalised image reference: registry, repository, and a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        return REGISTRY_API_HOSTS.get(self.registry, self.registry)

    @property
    def is_pinned(self) -> bool:
        return self.digest is not None

    @property
    def tag_or_digest(self) -> str:
        """What to ask the registry's manifests endpoint for."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def unpinned(self) -> str:
        """The reference without its digest: what the image is tagged as on the AMI."""
        return f"{self.name}:{self.tag}" if self.tag else self.name

    def with_digest(self, digest: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, validate_digest(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: object) -> ImageReference:
    """Parse one reference by Docker's grammar and normalise it the way `docker pull` does."""
    if not isinstance(text, str):
        raise InvalidReference(f"image reference must be a string, got {text!r}")
    if not text:
        raise InvalidReference("image reference is empty")
    match = _REFERENCE_RE.fullmatch(text)
    if not match:
        raise InvalidReference(f"invalid image reference {text!r}: {_why_invalid(text)}")
    if len(match["name"]) > _NAME_MAX:
        raise InvalidReference(
            f"invalid image reference {text!r}: name longer than {_NAME_MAX} characters"
        )
    registry, repository = _split_domain(match["domain"], match["path"], text)
    digest = validate_digest(match["digest"], text) if match["digest"] else None
    tag = match["tag"]
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageReference(registry, repository, tag, digest)


def validate_digest(digest: str, reference: str | None = None) -> str:
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is None or len(hex_part) != expected or not re.fullmatch(r"[0-9a-f]+", hex_part):
        subject = f"image reference {reference!r}" if reference else f"digest {digest!r}"
        raise InvalidReference(
            f"invalid {subject}: malformed digest {digest!r} "
            "(expected sha256: and 64 lower-case hex characters)"
        )
    return digest


def check_pinned_form(text: str) -> None:
    """Refuse `text` unless it is a reference in the exact form a bake hands the builder.

    That form is Docker's grammar, normalised (explicit registry, library/ for Docker Hub) and
    pinned by a digest: what `str(ImageReference)` of a pinned reference gives. The documents'
    allowedPattern only admits the alphabet (SSM's two regex engines need a flat pattern), so
    this is where the grammar is held before the call, as recipe.sh holds it on the builder.
    """
    reference = parse_reference(text)
    if not reference.is_pinned or str(reference) != text:
        raise InvalidReference(
            f"invalid image reference {text!r} for a bake: expected the normalised, pinned form "
            "registry/repository[:tag]@sha256:<64 hex>"
        )


def parse_references(texts: list[object]) -> list[ImageReference]:
    """Parse a list of references; duplicates after normalisation count once, order is kept."""
    seen: dict[ImageReference, None] = {}
    for text in texts:
        seen.setdefault(parse_reference(text), None)
    return list(seen)


def _split_domain(domain: str | None, path: str, text: str) -> tuple[str, str]:
    # Docker treats the first component as a registry only when it looks like a host:
    # it has a dot or a port, or is "localhost", or has upper-case letters (which a
    # repository never has). Otherwise the whole name is a Docker Hub repository.
    if domain is not None and not _looks_like_host(domain):
        path = f"{domain}/{path}"
        domain = None
    if not _REPOSITORY_RE.fullmatch(path):
        reason = (
            "repository name must be lower-case"
            if path.lower() != path
            else (
                "malformed repository name (lower-case letters and digits, separated by . _ - or /)"
            )
        )
        raise InvalidReference(f"invalid image reference {text!r}: {reason}")
    if domain is None or domain == "index.docker.io":
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in path:
        if _ANONYMOUS_ID_RE.fullmatch(path):
            raise InvalidReference(
                f"invalid image reference {text!r}: a 64-character hex string is an image ID, "
                "not a repository name"
            )
        path = f"library/{path}"
    return domain, path


def _looks_like_host(component: str) -> bool:
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or component.lower() != component
    )


def _why_invalid(text: str) -> str:
    if re.search(r"[;&|$`<>()\\'\"*?!{}~#%^=,]", text):
        return "shell metacharacters are not allowed"
    if any(ch.isspace() for ch in text):
        return "whitespace is not allowed"
    name, _, digest = text.partition("@")
    if "@" in text and not re.fullmatch(_DIGEST, digest):
        return "malformed digest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last and not re.fullmatch(_TAG, last.split(":", 1)[1]):
        return "malformed tag (letters, digits, '_', '.', '-'; at most 128 characters)"
    domain = name.split("/", 1)[0] if "/" in name else ""
    if domain and not _DOMAIN_RE.fullmatch(domain) and _looks_like_host(domain):
        return "malformed registry host"
    return "not a valid Docker image reference"


@dataclass(frozen=True, order=True)
class ResolvedImage:
    """An image as the user named it, and the manifest digest it is pinned to."""

    reference: ImageReference
    digest: str
    # Resolved only with the local credentials: the builder needs credentials of its own.
    needs_credentials: bool = field(default=False, compare=False)

    @property
    def pinned(self) -> ImageReference:
        return self.reference.with_digest(self.digest)
