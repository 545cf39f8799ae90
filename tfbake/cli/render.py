"""Results as people and programs read them: a text table, stable JSON, the external protocol.

The JSON shapes here are contracts (documented in docs/cli.md): add keys, never rename them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tfbake.bake.timing import timing_json
from tfbake.distribute.result import DistributedResult, ami_ids, missing_regions
from tfbake.model.fingerprint import SCHEME
from tfbake.pipeline import Plan, Result

RESULT_SCHEMA = "tfbake.result/1"
INPUTS_SCHEMA = "tfbake.inputs/1"


def pinned_images(plan: Plan) -> list[str]:
    return sorted({str(image.pinned) for image in plan.images})


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "schema": INPUTS_SCHEMA,
        "fingerprint": plan.fingerprint.value,
        "inputs": plan.fingerprint.manifest,
    }


def result_json(result: Result) -> dict[str, Any]:
    plan = result.plan
    return {
        "schema": RESULT_SCHEMA,
        "name": plan.image_set.name,
        "status": result.status,
        "ami_id": result.ami_id,
        "ami_ids": ami_ids(result),
        "missing_regions": missing_regions(result),
        "ami_name": result.ami.name if result.ami else None,
        "region": result.region,
        "fingerprint": plan.fingerprint.value,
        "base_ami": plan.base_ami_id,
        "architecture": plan.architecture,
        "images": pinned_images(plan),
        "unusable_amis": [
            {"ami_id": ami.ami_id, "state": ami.state, "status": ami.status or None}
            for ami in result.unusable
        ],
        "timing": timing_json(result.timing) if result.timing else None,
    }


def external_reply(result: Result) -> dict[str, str]:
    """The flat string map Terraform's external data source requires."""
    plan = result.plan
    return {
        "ami_id": result.ami_id or "",
        "ami_ids": json.dumps(ami_ids(result), separators=(",", ":"), sort_keys=True),
        "ami_name": result.ami.name if result.ami else "",
        "fingerprint": plan.fingerprint.value,
        "scheme": SCHEME,
        "status": result.status,
        "name": plan.image_set.name,
        "region": result.region,
        "base_ami": plan.base_ami_id,
        "architecture": plan.architecture,
        "images": json.dumps(pinned_images(plan), separators=(",", ":")),
    }


def result_rows(result: Result) -> list[str]:
    ami = result.ami_id or _unusable_summary(result) or "-"
    return [result.plan.image_set.name, result.status, ami, result.plan.fingerprint.short,
            result.region]  # fmt: skip


RESULT_HEADER = ["NAME", "STATUS", "AMI", "FINGERPRINT", "REGION"]
REGION_HEADER = ["REGION", "STATUS", "AMI"]


def region_rows(result: Result) -> list[list[str]]:
    """One row per region of an image set with copies: the home region first."""
    copies = result.copies if isinstance(result, DistributedResult) else ()
    home = [result.region, result.status, result.ami_id or "-"]
    return [home] + [[c.region, c.status, c.ami_id or "-"] for c in copies]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _unusable_summary(result: Result) -> str:
    return ", ".join(
        f"{ami.ami_id} ({ami.status or 'untagged'}/{ami.state})" for ami in result.unusable
    )


def plan_details(plan: Plan) -> list[str]:
    """What `-v` shows on stderr: the resolved inputs behind the fingerprint."""
    return [
        f"fingerprint {plan.fingerprint.value} ({SCHEME})",
        f"base AMI {plan.base_ami_id} ({plan.architecture})",
        *(f"image {image}" for image in pinned_images(plan)),
    ]
