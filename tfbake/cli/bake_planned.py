"""`tfbake bake-planned QUERY`: the apply of modules/baked-ami's bake resource.

Terraform runs it as the resource's local-exec provisioner, with the module's query plus the
pinned inputs and fingerprint that the plan showed. It bakes exactly that (or finds it), with
progress on the apply's output, and prints the AMI id. TFBAKE_ON_MISSING=fail makes it refuse
to bake, for an apply that must change nothing.
"""

from __future__ import annotations

import os

from tfbake.cli.ensure import ensure_and_report
from tfbake.cli.external import query_aws
from tfbake.cli.settings import Settings
from tfbake.model.errors import BadInput
from tfbake.model.plan import ON_MISSING_FAIL
from tfbake.pipeline import plan_image_set
from tfbake.terraform.planned import require_planned, require_planned_ami_ready
from tfbake.terraform.protocol import PROTOCOL_VERSION, parse_query


def run_bake_planned(settings: Settings, query_text: str) -> None:
    query = parse_query(query_text, os.environ)
    if query.protocol != PROTOCOL_VERSION:
        raise BadInput(
            f"bake-planned takes a protocol {PROTOCOL_VERSION} query (modules/baked-ami's bake "
            "resource sends one)"
        )
    aws = query_aws(settings, query)
    plan = plan_image_set(query.image_set, aws)
    require_planned(query, plan)
    ensure_and_report(
        settings,
        plan,
        aws,
        # An account that only finds never bakes: what it bakes, its own lookups ignore.
        on_missing=query.on_missing if plan.image_set.bakes_here else ON_MISSING_FAIL,
        cancel_target=plan.fingerprint.value,
        before_bake=lambda found: require_planned_ami_ready(query, found),
        # A pipeline's apply log is where a slow bake gets looked into.
        show_timing=True,
    )
