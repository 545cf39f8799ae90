"""Every tag tfbake writes, in one place.

An AMI is usable only when STATUS is READY, and a bake sets READY only after every earlier step
of the runbook (pulls, verification, image creation) succeeded.
"""

from __future__ import annotations

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


def is_reserved(key: str) -> bool:
    """Keys a user may not set in `tags`: tfbake's own and AWS's."""
    return key.startswith(PREFIX) or key.lower().startswith("aws:")
