"""`tfbake gc`: remove old tfbake AMIs and their snapshots; a dry run unless --apply."""

from __future__ import annotations

import json
from typing import Any

import click

from tfbake.aws.calls import error_code
from tfbake.cli.listing import created_text
from tfbake.cli.render import table
from tfbake.cli.settings import Settings
from tfbake.lifecycle.collection import (
    DEFAULT_GRACE_DAYS,
    DEFAULT_SHARED_GRACE_DAYS,
    DELETE_MANIFEST,
    DELETE_SNAPSHOT,
    DEPRECATE,
    DEREGISTER,
    DEREGISTER_COPY,
    GcOutcome,
    GcPlan,
    Step,
    apply_gc,
    plan_gc,
    steps_of,
)
from tfbake.model.errors import AwsError

GC_SCHEMA = "tfbake.gc/1"
HEADER = ["AMI", "NAME", "FINGERPRINT", "CREATED", "STATUS", "ACTION", "WHY"]


def run_gc(
    settings: Settings,
    *,
    keep: int,
    min_age_days: float,
    name: str | None,
    apply: bool,
    grace_days: float = DEFAULT_GRACE_DAYS,
    shared_grace_days: float = DEFAULT_SHARED_GRACE_DAYS,
) -> None:
    aws = settings.aws()
    plan = plan_gc(
        aws,
        keep=keep,
        min_age_days=min_age_days,
        name=name,
        grace_days=grace_days,
        shared_grace_days=shared_grace_days,
    )
    outcome = apply_gc(aws, plan) if apply else None
    if settings.json:
        click.echo(json.dumps(gc_json(plan, outcome), indent=2, sort_keys=True))
    elif not plan.verdicts:
        click.echo(f"no tfbake AMIs in {plan.region}" + (f" named {name!r}" if name else ""))
    else:
        rows = [
            [v.ami.ami_id, v.ami.name or "-", v.ami.fingerprint_short, created_text(v.ami),
             v.ami.shown_status, "remove" if v.remove else "keep", v.reason]
            for v in plan.verdicts
        ]  # fmt: skip
        click.echo(table(HEADER, rows))
        _print_steps(plan, outcome)
    if outcome is not None and outcome.error is not None:
        raise AwsError(
            f"gc stopped at `{outcome.left[0]}`: {outcome.error.one_line()}; "
            f"{len(outcome.left)} step(s) left undone",
            code=error_code(outcome.error),
        )


def _print_steps(plan: GcPlan, outcome: GcOutcome | None) -> None:
    steps = steps_of(plan)
    amis = len(plan.removals)
    snapshots = sum(1 for step in steps if step.action == DELETE_SNAPSHOT)
    if outcome is None:
        for step in steps:
            click.echo(f"would {step}")
        click.echo(
            f"dry run: would deregister {amis} AMI(s) and delete {snapshots} snapshot(s); "
            "pass --apply to do it"
        )
        return
    for ami_id, reason in outcome.kept:
        click.echo(f"kept {ami_id}: {reason}")
    for step in outcome.done:
        click.echo(_past(step))
    if outcome.error is None:
        amis -= len(outcome.kept)
        snapshots = sum(1 for step in outcome.done if step.action == DELETE_SNAPSHOT)
        click.echo(f"deregistered {amis} AMI(s) and deleted {snapshots} snapshot(s)")
        return
    click.echo(f"stopped: {outcome.error.one_line()}")
    for step in outcome.left:
        click.echo(f"left: {step}")


def _past(step: Step) -> str:
    if step.action == DEPRECATE:
        return str(step).replace("deprecate ", "deprecated ", 1)
    if step.action == DEREGISTER:
        return f"deregistered {step.resource}"
    if step.action == DEREGISTER_COPY:
        return f"deregistered copy {step.resource} of {step.ami_id} in {step.region}"
    if step.action == DELETE_MANIFEST:
        return f"deleted the recorded inputs of fingerprint {step.resource[:16]}"
    return f"deleted snapshot {step.resource} of {step.ami_id}"


def gc_json(plan: GcPlan, outcome: GcOutcome | None) -> dict[str, Any]:
    return {
        "schema": GC_SCHEMA,
        "region": plan.region,
        "applied": outcome is not None,
        "keep": plan.keep,
        "min_age_days": plan.min_age_days,
        "grace_days": plan.grace_days,
        "shared_grace_days": plan.shared_grace_days,
        "name": plan.name,
        "amis": [
            {
                "ami_id": v.ami.ami_id,
                "ami_name": v.ami.ami_name,
                "name": v.ami.name,
                "fingerprint": v.ami.fingerprint,
                "created": v.ami.creation_date,
                "status": v.ami.status or None,
                "state": v.ami.state,
                "action": "remove" if v.remove else "keep",
                "reason": v.reason,
                "used_by": [str(use) for use in v.uses],
                "snapshots": list(v.ami.snapshot_ids),
            }
            for v in plan.verdicts
        ],
        "planned": [_step_json(step) for step in steps_of(plan)],
        "done": [_step_json(step) for step in outcome.done] if outcome else [],
        "left": [_step_json(step) for step in outcome.left] if outcome else [],
        "kept_at_apply": [{"ami_id": ami_id, "reason": reason} for ami_id, reason in outcome.kept]
        if outcome
        else [],
        "error": outcome.error.one_line() if outcome and outcome.error else None,
    }


def _step_json(step: Step) -> dict[str, str]:
    data = {"action": step.action, "resource": step.resource, "ami_id": step.ami_id}
    if step.region:
        data["region"] = step.region
    if step.at:
        data["at"] = step.at
    return data
