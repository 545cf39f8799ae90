"""`tfbake ensure` and `tfbake bake`: the AMI of a spec, baked when missing (or on demand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tfbake.ensure import ensure
from tfbake.errors import TfbakeError
from tfbake.pipeline import plan_image_set
from tfbake.progress import StreamProgress
from tfbake.render import result_json
from tfbake.specfile import load_image_set


def run_ensure(settings: Any, spec: Path, *, force: bool) -> None:
    aws = settings.aws()
    plan = plan_image_set(load_image_set(spec), aws)
    settings.explain(plan)
    progress = StreamProgress()
    try:
        result = ensure(plan, aws, on_progress=progress, force=force)
    except TfbakeError as err:
        progress.close()
        if err.details:
            # The CLI shows a failed bake in full; the one-line summary follows from main().
            click.echo("recipe output (last lines):\n" + err.details, err=True)
        raise
    progress.close()
    if settings.json:
        click.echo(json.dumps(result_json(result), indent=2, sort_keys=True))
    else:
        click.echo(result.ami_id)
