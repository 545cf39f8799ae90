"""What an image account shows the workload accounts it shares an AMI with.

EC2 hides an AMI's tags from every account but its owner, so tfbake:status and
tfbake:fingerprint say nothing to a workload account. What it does see is the AMI's owner id,
name, description, state and deprecation. tfbake publishes there: once an AMI is ready and is
about to be shared, its description becomes `tfbake ready <scheme> <fingerprint>`, the full
fingerprint; `tfbake invalidate` rewrites it to `tfbake revoked ...`. A workload account asks
EC2 for the AMIs of its trusted owners (`Owners` is checked by EC2, not by the describer)
whose description holds the fingerprint, and takes one only when it reads `ready`.

The description is the owner's to write (ModifyImageAttribute); no other account can change
it, and an AMI of another account with the same description is not among the trusted owners'.
"""

from __future__ import annotations

from tfbake.model import tags
from tfbake.model.fingerprint import SCHEME

_READY = "tfbake ready"
_REVOKED = "tfbake revoked"


def published_description(fingerprint: str) -> str:
    return f"{_READY} {SCHEME} {fingerprint}"


def revoked_description(fingerprint: str) -> str:
    return f"{_REVOKED} {SCHEME} {fingerprint}"


def description_filter(fingerprint: str) -> str:
    """A DescribeImages `description` filter value that matches every description tfbake gives
    an AMI of this fingerprint: at creation, published and revoked. The full fingerprint ends
    each of them, so no other fingerprint matches."""
    return f"* {SCHEME} {fingerprint}"


def published_status(description: str) -> str:
    """tfbake's status as the description publishes it: ready, revoked, or "" (not published:
    still being baked, failed, or never shared by tfbake)."""
    prefix, _, _ = description.partition(f" {SCHEME} ")
    if prefix == _READY:
        return tags.STATUS_READY
    if prefix == _REVOKED:
        return tags.STATUS_REVOKED
    return ""


def published_fingerprint(description: str) -> str:
    """The fingerprint a tfbake description names, or ""."""
    _, found, fingerprint = description.partition(f" {SCHEME} ")
    return fingerprint if found else ""
