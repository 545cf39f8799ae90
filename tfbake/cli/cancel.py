"""`tfbake cancel`: stop a running bake, named by its execution id or by its spec."""

from __future__ import annotations

from pathlib import Path

import click

from tfbake.aws.calls import AwsContext
from tfbake.bake.cancellation import cancel_execution, execution_of_plan
from tfbake.cli.settings import Settings
from tfbake.model.errors import BadInput
from tfbake.model.patterns import EXECUTION_ID_RE
from tfbake.pipeline import plan_spec_file


def run_cancel(settings: Settings, target: str) -> None:
    aws = settings.aws()
    execution_id = target if EXECUTION_ID_RE.fullmatch(target) else _execution_of(aws, target)
    if execution_id is None:
        return
    cancelled = cancel_execution(aws, execution_id)
    terminated = ", ".join(cancelled.terminated) or "none running"
    discarded = ", ".join(cancelled.discarded) or "none"
    what = (
        f"cancelled {cancelled.execution_id} (was {cancelled.previous_status})"
        if cancelled.was_running
        else f"{cancelled.execution_id} had already ended ({cancelled.previous_status})"
    )
    click.echo(
        f"{what}; builders terminated: {terminated}; unfinished AMIs deregistered: {discarded}"
    )


def _execution_of(aws: AwsContext, spec: str) -> str | None:
    """The execution SPEC's lock names; None when the lock named none and was cleared."""
    path = Path(spec)
    if not path.exists():
        raise BadInput(f"{spec!r} is neither an execution id nor a spec file")
    plan = plan_spec_file(path, aws)
    named = execution_of_plan(plan, aws)
    if named.execution_id is None:
        click.echo(
            f"released the lock of {plan.image_set.name!r} (fingerprint {plan.fingerprint.short}): "
            f"{named.cleared_because}"
        )
    return named.execution_id
