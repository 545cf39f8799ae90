"""Results as people and programs read them: a text table, stable JSON, the external protocol.

The JSON shapes here are contracts (documented in docs/cli.md): add keys, never rename them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfbake.model.bake_timing import BakeTiming
from tfbake.model.fingerprint import SCHEME
from tfbake.model.plan import Plan, Result

RESULT_SCHEMA = "tfbake.result/1"
INPUTS_SCHEMA = "tfbake.inputs/1"


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
        "ami_ids": result.ami_ids,
        "missing_regions": result.missing_regions,
        "ami_name": result.ami.ami_name if result.ami else None,
        "region": result.region,
        "fingerprint": plan.fingerprint.value,
        "base_ami": plan.base_ami_id,
        "architecture": plan.architecture,
        "images": plan.pinned_images,
        "unusable_amis": [
            {"ami_id": ami.ami_id, "state": ami.state, "status": ami.status or None}
            for ami in result.unusable
        ],
        "timing": timing_json(result.timing) if result.timing else None,
    }


def result_rows(result: Result) -> list[str]:
    ami = result.ami_id or _unusable_summary(result) or "-"
    return [result.plan.image_set.name, result.status, ami, result.plan.fingerprint.short,
            result.region]  # fmt: skip


RESULT_HEADER = ["NAME", "STATUS", "AMI", "FINGERPRINT", "REGION"]
REGION_HEADER = ["REGION", "STATUS", "AMI"]


def region_rows(result: Result) -> list[list[str]]:
    """One row per region of an image set with copies: the home region first."""
    home = [result.region, result.status, result.ami_id or "-"]
    return [home] + [[c.region, c.status, c.ami_id or "-"] for c in result.copies]


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
        *(f"image {image}" for image in plan.pinned_images),
    ]


def timing_json(timing: BakeTiming) -> dict[str, Any]:
    return {
        "execution_id": timing.execution_id,
        "seconds": _rounded_seconds(timing.seconds),
        # A list: the bake's order survives a JSON printer that sorts keys.
        "phases": [{"name": p, "seconds": _rounded_seconds(s)} for p, s in timing.phases().items()],
        "steps": [
            {
                "name": s.name,
                "phase": s.phase,
                "status": s.status,
                # From the execution's start to the step's.
                "offset": _rounded_seconds(s.started - (timing.started or s.started)),
                "seconds": _rounded_seconds(s.seconds),
            }
            for s in timing.steps
        ],
        "pulls": [{"image": p.subject, "seconds": p.seconds} for p in timing.pulls],
        "pulls_seconds": next((p.seconds for p in timing.recipe if p.kind == "pulls"), None),
        "installs": [
            {"name": p.subject, "seconds": p.seconds} for p in timing.recipe if p.kind == "install"
        ],
    }


def _rounded_seconds(seconds: float) -> float:
    return round(seconds, 3)
