"""Revoke AMIs: the day a baked image turns out bad, make sure nothing ever gets it again.

Revoking rewrites tfbake:status, which the catalog requires to be `ready`, so every later lookup
misses and the next ensure bakes anew. Workload accounts cannot see that tag: the description
that published the AMI to them is rewritten to say revoked too (model/publication.py). The AMI
itself stays, still launchable where it is shared (instances and autoscaling groups may still
run from it), until gc removes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from tfbake.aws.calls import AwsContext, aws_errors, error_code
from tfbake.aws.catalog import describe_image
from tfbake.lifecycle.inventory import list_amis
from tfbake.model import tags
from tfbake.model.ami import AmiRecord, ami_record
from tfbake.model.errors import AwsError, BadInput
from tfbake.model.patterns import AMI_ID_RE, AMI_ID_SHAPE
from tfbake.model.publication import revoked_description

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import TagTypeDef

FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
# The 16-character fingerprint `tfbake list` shows, or any longer prefix.
FINGERPRINT_PREFIX_RE = re.compile(r"[0-9a-f]{12,63}")
MAX_TAG_VALUE = 256  # EC2's limit on a tag value


@dataclass(frozen=True)
class Revocation:
    ami: AmiRecord
    already_revoked: bool  # revoked before; its tags were left as they were
    revoked_at: str


def invalidate(
    aws: AwsContext, target: str, *, reason: str = "", now: datetime | None = None
) -> tuple[Revocation, ...]:
    """Mark the AMI `target` names (an AMI id, or every AMI of a fingerprint) revoked."""
    if len(reason) > MAX_TAG_VALUE:
        raise BadInput(f"the reason is {len(reason)} characters; EC2 tag values hold at most 256")
    amis = _targets(aws, target.strip().lower())
    pending = [ami.ami_id for ami in amis if ami.status == tags.STATUS_PENDING]
    if pending:
        # The bake would mark it ready when it finishes, silently undoing the revocation.
        raise BadInput(
            f"{', '.join(pending)} is still being baked ({tags.STATUS} = pending): "
            "wait for the bake to end, then rerun"
        )
    revoked_at = tags.timestamp(now or datetime.now(timezone.utc))
    revocations = []
    for ami in amis:
        revocations.append(_revoke(aws, ami, revoked_at, reason))
        # Its copies in other regions carry the same bad contents: the next ensure would find
        # them there by fingerprint and keep serving them.
        for region, copy_id in ami.regions.items():
            if region != ami.region:
                regional = AwsContext(region=region, profile=aws.profile)
                revocations.append(
                    _revoke(regional, _one_ami(regional, copy_id), revoked_at, reason)
                )
    return tuple(revocations)


def _revoke(aws: AwsContext, ami: AmiRecord, revoked_at: str, reason: str) -> Revocation:
    if ami.status == tags.STATUS_REVOKED:
        # A rerun finishes what a failed one left: the description other accounts read.
        _describe_revoked(aws, ami)
        return Revocation(ami, True, ami.tags.get(tags.REVOKED_AT, ""))
    _tag_revoked(aws, ami, revoked_at, reason)
    _describe_revoked(aws, ami)
    return Revocation(ami, False, revoked_at)


def _describe_revoked(aws: AwsContext, ami: AmiRecord) -> None:
    description = revoked_description(ami.fingerprint)
    if ami.description == description:
        return
    region = aws.effective_region
    try:
        with aws_errors(f"ec2:ModifyImageAttribute {ami.ami_id}", region):
            aws.client("ec2").modify_image_attribute(
                ImageId=ami.ami_id, Description={"Value": description}
            )
    except AwsError as err:
        raise AwsError(
            f"{ami.ami_id} is revoked in this account, but accounts it is shared with may still "
            f"find it until its description says so (rerun): {err.one_line()}",
            code=error_code(err),
        ) from err


def _targets(aws: AwsContext, target: str) -> tuple[AmiRecord, ...]:
    region = aws.effective_region
    if AMI_ID_RE.fullmatch(target):
        return (_one_ami(aws, target),)
    if FINGERPRINT_RE.fullmatch(target):
        amis = list_amis(aws, fingerprint=target)
    elif FINGERPRINT_PREFIX_RE.fullmatch(target):
        amis = tuple(ami for ami in list_amis(aws) if ami.fingerprint.startswith(target))
        fingerprints = sorted({ami.fingerprint for ami in amis})
        if len(fingerprints) > 1:
            raise BadInput(
                f"fingerprint prefix {target} is ambiguous in {region}: "
                f"{', '.join(fingerprints)}; give more characters"
            )
    elif target.startswith("ami-"):
        raise BadInput(f"{target!r} is not an AMI id: {AMI_ID_SHAPE}")
    else:
        raise BadInput(
            f"{target!r} is neither an AMI id (ami-...) nor a fingerprint (64 hex characters, "
            "or at least the 12 first)"
        )
    if not amis:
        raise BadInput(f"no tfbake AMI of fingerprint {target} in {region}")
    return amis


def _one_ami(aws: AwsContext, ami_id: str) -> AmiRecord:
    region = aws.effective_region
    image = describe_image(aws.client("ec2"), ami_id, region)
    if image is None:
        raise BadInput(f"no AMI {ami_id} in {region}")
    ami = ami_record(image, region)
    if not ami.fingerprint:
        raise BadInput(f"{ami_id} is not a tfbake AMI (it has no {tags.FINGERPRINT} tag)")
    return ami


def _tag_revoked(aws: AwsContext, ami: AmiRecord, revoked_at: str, reason: str) -> None:
    revoked: list[TagTypeDef] = [
        {"Key": tags.STATUS, "Value": tags.STATUS_REVOKED},
        {"Key": tags.REVOKED_AT, "Value": revoked_at},
    ]
    if reason:
        revoked.append({"Key": tags.REVOKED_REASON, "Value": reason})
    region = aws.effective_region
    ec2 = aws.client("ec2")
    # The AMI first, on its own: that is what lookups read, and a missing snapshot must not
    # keep a bad image in service.
    with aws_errors(f"ec2:CreateTags {ami.ami_id}", region):
        ec2.create_tags(Resources=[ami.ami_id], Tags=revoked)
    if ami.snapshot_ids:
        try:
            with aws_errors(f"ec2:CreateTags {', '.join(ami.snapshot_ids)}", region):
                ec2.create_tags(Resources=list(ami.snapshot_ids), Tags=revoked)
        except AwsError as err:
            raise AwsError(
                f"{ami.ami_id} is revoked, but tagging its snapshots failed: {err.one_line()}",
                code=error_code(err),
            ) from err
