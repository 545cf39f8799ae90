"""`tfbake ensure` and `tfbake bake`: the AMI of a spec, baked when missing (or on demand)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from tfbake.aws.calls import AwsContext
from tfbake.cli.progress import StreamProgress
from tfbake.cli.render import result_json
from tfbake.cli.settings import Settings
from tfbake.ensure import ensure
from tfbake.model.bake_timing import timing_lines
from tfbake.model.errors import BakeInterrupted, TfbakeError
from tfbake.model.plan import BAKED, ON_MISSING_BAKE, Plan, Result
from tfbake.pipeline import look_up, plan_spec_file


def run_ensure(settings: Settings, spec: Path, *, force: bool) -> None:
    aws = settings.aws()
    plan = plan_spec_file(spec, aws)
    settings.explain(plan)
    ensure_and_report(settings, plan, aws, force=force, cancel_target=str(spec))


def ensure_and_report(
    settings: Settings,
    plan: Plan,
    aws: AwsContext,
    *,
    force: bool = False,
    on_missing: str = ON_MISSING_BAKE,
    cancel_target: str,
    before_bake: Callable[[Result], None] | None = None,
    show_timing: bool = False,
) -> Result:
    """Ensure `plan`'s AMI with progress on stderr, and print it: the id, or JSON with --json.

    `before_bake` sees the lookup first and may refuse (raise) before anything changes."""
    progress = StreamProgress()
    try:
        if before_bake is not None:
            before_bake(look_up(plan, aws))
        result = ensure(plan, aws, on_missing=on_missing, on_progress=progress, force=force)
    except TfbakeError as err:
        progress.close()
        if err.details:
            # The CLI shows a failed bake in full; the one-line summary follows from main().
            click.echo("recipe output (last lines):\n" + err.details, err=True)
        for line in err.breakdown:
            click.echo(line, err=True)
        raise
    except KeyboardInterrupt:
        progress.close()
        raise _interrupted(progress, cancel_target) from None
    progress.close()
    how = "baked" if result.status == BAKED else "found"
    click.echo(
        f"tfbake: {how} {result.ami_id} for {plan.image_set.name!r} "
        f"(fingerprint {plan.fingerprint.short}) in {result.region}",
        err=True,
    )
    if (settings.verbose or show_timing) and result.timing:
        for line in timing_lines(result.timing):
            click.echo(f"tfbake: {line}", err=True)
    if settings.json:
        click.echo(json.dumps(result_json(result), indent=2, sort_keys=True))
    else:
        click.echo(result.ami_id)
    return result


def _interrupted(progress: StreamProgress, spec: str) -> BakeInterrupted:
    # The bake runs in AWS, not here: stopping the client stops neither it nor its builder.
    if progress.last is None:
        return BakeInterrupted(
            "interrupted before any bake was seen; if one started it goes on in AWS: rerun to "
            f"attach to it, or stop it with `tfbake cancel {spec}`"
        )
    return BakeInterrupted(
        f"interrupted; bake {progress.last.execution_id} goes on in AWS: rerun to attach to "
        f"it, or stop it with `tfbake cancel {spec}`"
    )
