"""`tfbake diff`: why SPEC needs a bake, against the newest ready AMI of the same name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tfbake.aws.catalog import newest_ready_by_name
from tfbake.aws.manifests import load_manifest
from tfbake.model.changes import compare
from tfbake.model.errors import ExitCode
from tfbake.pipeline import plan_image_set
from tfbake.spec.specfile import load_image_set

DIFF_SCHEMA = "tfbake.diff/1"


def run_diff(settings: Any, spec: Path) -> None:
    aws = settings.aws()
    region = aws.effective_region
    plan = plan_image_set(load_image_set(spec), aws)
    name = plan.image_set.name
    current = plan.fingerprint
    previous = newest_ready_by_name(aws.client("ec2"), name, plan.image_set.ami_owners, region)
    previous_fingerprint = previous.tags.get("tfbake:fingerprint", "") if previous else ""
    recorded = load_manifest(aws.client("ssm"), previous_fingerprint, region) if previous else None
    needed = previous_fingerprint != current.value
    changes = compare(recorded, current.manifest) if recorded and needed else []
    if settings.json:
        click.echo(json.dumps({
            "schema": DIFF_SCHEMA,
            "name": name,
            "region": region,
            "bake_needed": needed,
            "fingerprint": current.value,
            "previous": {"ami_id": previous.ami_id, "fingerprint": previous_fingerprint}
            if previous else None,
            "manifest_recorded": recorded is not None,
            "changes": [{"input": c.input, "image": c.subject or None, "old": c.old, "new": c.new}
                        for c in changes],
        }, indent=2, sort_keys=True))  # fmt: skip
    else:
        click.echo(_explain(name, current.short, previous, previous_fingerprint, recorded, changes))
    click.get_current_context().exit(ExitCode.AMI_MISSING if needed else ExitCode.OK)


def _explain(
    name: str, short: str, previous: Any, previous_fingerprint: str, recorded: Any, changes: Any
) -> str:
    if previous is None:
        return f"{name}: a bake is needed: no ready AMI of this image set to compare with"
    if previous_fingerprint.startswith(short):
        return f"{name}: no bake needed: {previous.ami_id} has fingerprint {short}"
    head = (
        f"{name}: a bake is needed: fingerprint {short} differs from "
        f"{previous.ami_id}'s {previous_fingerprint[:16]}"
    )
    if recorded is None:
        return head + "\n  (that AMI's inputs were not recorded; cannot say which input changed)"
    return "\n".join([head, *(f"  {change.describe()}" for change in changes)])
