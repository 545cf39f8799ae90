"""`tfbake cleanup`: list (or terminate, with --apply) builder instances bakes left behind."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click

from tfbake.bake.cleanup import find_stray_builders, terminate
from tfbake.render import table

CLEANUP_SCHEMA = "tfbake.cleanup/1"


def run_cleanup(settings: Any, *, apply: bool, max_age_minutes: int) -> None:
    aws = settings.aws()
    strays = find_stray_builders(aws, timedelta(minutes=max_age_minutes))
    if apply:
        terminate(aws, strays)
    if settings.json:
        click.echo(json.dumps({
            "schema": CLEANUP_SCHEMA,
            "region": aws.effective_region,
            "applied": apply,
            "builders": [{"instance_id": s.instance_id, "execution_id": s.execution_id,
                          "launched": s.launched.isoformat(), "reason": s.reason} for s in strays],
        }, indent=2, sort_keys=True))  # fmt: skip
        return
    if not strays:
        click.echo("no stray builder instances")
        return
    rows = [
        [s.instance_id, s.execution_id or "-", s.launched.isoformat(), s.reason] for s in strays
    ]
    click.echo(table(["INSTANCE", "EXECUTION", "LAUNCHED", "WHY"], rows))
    verb = "terminated" if apply else "would terminate (dry run; pass --apply)"
    click.echo(f"{verb}: {len(strays)} instance(s)")
