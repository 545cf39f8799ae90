"""`tfbake diff`: why SPEC needs a bake, against the newest ready AMI of the same name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tfbake.cli.settings import Settings
from tfbake.model.changes import Comparison
from tfbake.model.errors import ExitCode
from tfbake.model.plan import Plan
from tfbake.pipeline import compare_with_previous, plan_spec_file

DIFF_SCHEMA = "tfbake.diff/1"


def run_diff(settings: Settings, spec: Path) -> None:
    aws = settings.aws()
    plan = plan_spec_file(spec, aws)
    comparison = compare_with_previous(plan, aws)
    if settings.json:
        click.echo(json.dumps(_diff_json(plan, comparison, aws.effective_region), indent=2,
                              sort_keys=True))  # fmt: skip
    else:
        click.echo(_explain(plan, comparison))
    exit_code = ExitCode.AMI_MISSING if comparison.bake_needed else ExitCode.OK
    click.get_current_context().exit(exit_code)


def _diff_json(plan: Plan, comparison: Comparison, region: str) -> dict[str, Any]:
    previous = (
        {"ami_id": comparison.previous_ami_id, "fingerprint": comparison.previous_fingerprint}
        if comparison.previous_ami_id
        else None
    )
    return {
        "schema": DIFF_SCHEMA,
        "name": plan.image_set.name,
        "region": region,
        "bake_needed": comparison.bake_needed,
        "fingerprint": comparison.fingerprint,
        "previous": previous,
        "manifest_recorded": comparison.recorded,
        "changes": [
            {"input": c.input, "image": c.subject or None, "old": c.shown_old, "new": c.shown_new}
            for c in comparison.changes
        ],
    }


def _explain(plan: Plan, comparison: Comparison) -> str:
    name, short = plan.image_set.name, plan.fingerprint.short
    previous = comparison.previous_ami_id
    if previous is None:
        return f"{name}: a bake is needed: no ready AMI of this image set to compare with"
    if not comparison.bake_needed:
        return f"{name}: no bake needed: {previous} has fingerprint {short}"
    head = (
        f"{name}: a bake is needed: fingerprint {short} differs from "
        f"{previous}'s {comparison.previous_fingerprint[:16]}"
    )
    if not comparison.recorded:
        return head + "\n  (that AMI's inputs were not recorded; cannot say which input changed)"
    return "\n".join([head, *(f"  {change.describe()}" for change in comparison.changes)])
