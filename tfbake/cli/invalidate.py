"""`tfbake invalidate`: revoke an AMI (or every AMI of a fingerprint) so it is never used again."""

from __future__ import annotations

import json
from typing import Any

import click

from tfbake.cli.settings import Settings
from tfbake.lifecycle.revocation import Revocation, invalidate
from tfbake.model import tags

INVALIDATE_SCHEMA = "tfbake.invalidate/1"


def run_invalidate(settings: Settings, target: str, *, reason: str) -> None:
    aws = settings.aws()
    revocations = invalidate(aws, target, reason=reason)
    if settings.json:
        click.echo(json.dumps({
            "schema": INVALIDATE_SCHEMA,
            "region": aws.effective_region,
            "revoked": [_revocation_json(r, reason) for r in revocations],
        }, indent=2, sort_keys=True))  # fmt: skip
        return
    for r in revocations:
        what = (
            f"{r.ami.ami_id} in {r.ami.region} "
            f"({r.ami.name or '-'}, fingerprint {r.ami.fingerprint_short})"
        )
        if r.already_revoked:
            click.echo(f"{what} was already revoked at {r.revoked_at or 'an unknown time'}")
        else:
            click.echo(f"revoked {what}, was {r.ami.status or 'untagged'}")
    click.echo("lookups no longer return it; the next `tfbake ensure` bakes a new AMI")


def _revocation_json(revocation: Revocation, reason: str) -> dict[str, Any]:
    ami = revocation.ami
    if revocation.already_revoked:
        reason = ami.tags.get(tags.REVOKED_REASON, "")
    return {
        "ami_id": ami.ami_id,
        "region": ami.region,
        "ami_name": ami.ami_name,
        "name": ami.name,
        "fingerprint": ami.fingerprint,
        "previous_status": ami.status or None,
        "already_revoked": revocation.already_revoked,
        "revoked_at": revocation.revoked_at,
        "reason": reason or None,
    }
