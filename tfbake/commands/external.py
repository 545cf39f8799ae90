"""`tfbake external`: answer one Terraform external data source query."""

from __future__ import annotations

import json
import os

import click

from tfbake.aws import AwsContext
from tfbake.errors import AmiMissing
from tfbake.external import parse_query
from tfbake.pipeline import FOUND, Result, look_up, plan_image_set
from tfbake.render import external_reply


def run_external(settings: object, stdin_text: str) -> None:
    query = parse_query(stdin_text, os.environ)
    aws = AwsContext(region=query.region or getattr(settings, "region", None),
                     profile=query.profile or getattr(settings, "profile", None))  # fmt: skip
    result = look_up(plan_image_set(query.image_set, aws), aws)
    if result.status != FOUND:
        raise AmiMissing(_missing_message(result, query.on_missing))
    # One write, after everything succeeded: Terraform must never see a partial object.
    click.echo(json.dumps(external_reply(result), separators=(",", ":")))


def _missing_message(result: Result, on_missing: str) -> str:
    plan = result.plan
    what = (
        f"no ready AMI for image set {plan.image_set.name!r} "
        f"(fingerprint {plan.fingerprint.short}) in {result.region}"
    )
    if result.unusable:
        states = ", ".join(f"{ami.ami_id} is {ami.status or ami.state}" for ami in result.unusable)
        what += f" ({states})"
    if on_missing == "fail":
        return f"{what}; on_missing is fail (TFBAKE_ON_MISSING=fail or the module's on_missing)"
    return f"{what}; bake it with `tfbake ensure SPEC` for the same image set"
