"""`tfbake external`: answer one Terraform external data source query.

Protocol 2 (modules/baked-ami 0.2) only reads: the plan's lookup, and the read of the AMI after
the module's bake resource was applied. Protocol 1 (modules/baked-ami 0.1) still bakes in the
data source when its on_missing says so.
"""

from __future__ import annotations

import json
import os

import click

from tfbake.aws.calls import AwsContext
from tfbake.cli.settings import Settings
from tfbake.model.errors import AmiMissing
from tfbake.model.plan import FOUND, Plan, Result
from tfbake.pipeline import plan_image_set
from tfbake.terraform.protocol import ON_MISSING_HINT, REGION_HINT, Query, parse_query, reply


def run_external(settings: Settings, stdin_text: str) -> None:
    query = parse_query(stdin_text, os.environ)
    aws = query_aws(settings, query)
    plan = plan_image_set(query.image_set, aws)
    if query.bakes_in_data_source:
        result = _ensure_in_data_source(query, plan, aws)
    else:
        from tfbake.terraform.planned import read_planned, survey

        result = read_planned(query, plan, aws) if query.planned_fingerprint else survey(plan, aws)
    # One write, after everything succeeded: Terraform must never see a partial object.
    click.echo(json.dumps(reply(result), separators=(",", ":")))


def query_aws(settings: Settings, query: Query) -> AwsContext:
    return AwsContext(
        region=query.region or settings.region,
        profile=query.profile or settings.profile,
        region_hint=REGION_HINT,
    )


def _ensure_in_data_source(query: Query, plan: Plan, aws: AwsContext) -> Result:
    # Imported here: the bake machinery is not needed to fail fast on a bad query.
    from tfbake.cli.progress import LogFileProgress, external_log_path
    from tfbake.ensure import ensure

    log = LogFileProgress(external_log_path(), query.image_set.name)
    try:
        result = ensure(plan, aws, on_missing=query.on_missing, on_progress=log)
    except Exception as err:
        log.write(f"failed: {err}")
        details = getattr(err, "details", "")
        if details:
            log.write("recipe output:\n" + details)
        for line in getattr(err, "breakdown", ()):
            log.write(line)
        if isinstance(err, AmiMissing):
            # ensure knows only that on_missing is fail; where that was set is Terraform's side.
            raise AmiMissing(f"{err.message} {ON_MISSING_HINT}") from None
        raise
    if result.status != FOUND:
        log.write(f"{result.status} {result.ami_id}")
    if result.timing:
        log.write_timing(result.timing)
    return result
