"""Every tag tfbake writes, in one place.

An AMI is usable only when STATUS is READY, and a bake sets READY only after every earlier step
of the runbook (pulls, verification, image creation) succeeded.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

PREFIX = "tfbake:"

FINGERPRINT = "tfbake:fingerprint"  # the 64-hex fingerprint of the image set's inputs
SCHEME = "tfbake:scheme"  # the fingerprint scheme, e.g. tfbake.fingerprint/1
NAME = "tfbake:name"  # the image set's name
STATUS = "tfbake:status"  # one of the STATUS_* values below
EXECUTION_ID = "tfbake:execution-id"  # the SSM Automation execution that made the resource
ROLE = "tfbake:role"  # "builder" on the bake's builder instance
BASE_AMI = "tfbake:base-ami"  # the resolved base AMI id
VERSION = "tfbake:version"  # the tfbake release that baked the AMI (informational)
REVOKED_AT = "tfbake:revoked-at"  # when `tfbake invalidate` revoked the AMI (ISO 8601, UTC)
REVOKED_REASON = "tfbake:revoked-reason"  # the --reason given to `tfbake invalidate`
LAST_RETURNED = "tfbake:last-returned"  # when `ensure` last returned the AMI (ISO 8601, UTC)
SOURCE_AMI = "tfbake:source-ami"  # on a region copy: the home AMI it was copied from
SOURCE_REGION = "tfbake:source-region"  # on a region copy: the home region

# On a home AMI, one tag per region it was copied to: tfbake:copy:<region> = the copy's AMI id,
# so `tfbake list` shows every region without searching them all.
COPY_PREFIX = "tfbake:copy:"

STATUS_READY = "ready"
STATUS_PENDING = "pending"
STATUS_FAILED = "failed"
STATUS_REVOKED = "revoked"

ROLE_BUILDER = "builder"


def timestamp(moment: datetime) -> str:
    """A moment as tfbake's tags write it (REVOKED_AT, LAST_RETURNED): ISO 8601 in UTC, to the
    second, like 2026-01-31T12:00:00Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_reserved(key: str) -> bool:
    """Keys a user may not set in `tags`: tfbake's own and AWS's."""
    return key.startswith(PREFIX) or key.lower().startswith("aws:")


# EC2's limits on a tag, and SSM's on one value of the runbook's ExtraTags parameter (each tag
# travels as one JSON object there). Lengths are counted as AWS counts them, in UTF-16 code units:
# a character outside the Basic Multilingual Plane (an emoji) counts as two.
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
MAX_PARAMETER_LENGTH = 512


def aws_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def parameter_entry(key: str, value: str) -> str:
    """A tag as the runbook's ExtraTags takes it; non-ASCII kept as is, so that a 256-character
    value of accented letters does not grow sixfold into \\u escapes."""
    return json.dumps({"Key": key, "Value": value}, ensure_ascii=False)


def tag_problem(key: str, value: str) -> str | None:
    """Why EC2 or SSM would refuse this tag of a spec, or None."""
    if is_reserved(key):
        return f"{key!r} is reserved for tfbake or AWS"
    if not 1 <= aws_length(key) <= MAX_KEY_LENGTH:
        return f"key {key!r} must have 1 to {MAX_KEY_LENGTH} characters"
    if aws_length(value) > MAX_VALUE_LENGTH:
        return f"value of {key!r} has {aws_length(value)} characters; at most {MAX_VALUE_LENGTH}"
    entry = aws_length(parameter_entry(key, value))
    if entry > MAX_PARAMETER_LENGTH:
        return (
            f"{key!r} takes {entry} characters as a runbook parameter (quotes, backslashes and "
            f"control characters are escaped); at most {MAX_PARAMETER_LENGTH}"
        )
    return None
