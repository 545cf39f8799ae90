"""`tfbake list`: tfbake's AMIs in the region, with their status and whether anything uses them."""

from __future__ import annotations

import json
from typing import Any

import click

from tfbake.cli.render import table
from tfbake.cli.settings import Settings
from tfbake.lifecycle.inventory import Inventory, take_inventory
from tfbake.model.ami import UNKNOWN_CREATED, AmiRecord

LIST_SCHEMA = "tfbake.amis/1"
HEADER = ["NAME", "FINGERPRINT", "AMI", "CREATED", "STATUS", "REGIONS", "IN USE", "SHARED WITH"]


def run_list(settings: Settings, *, name: str | None, status: str | None) -> None:
    inventory = take_inventory(settings.aws(), name=name, status=status, with_shares=True)
    if settings.json:
        click.echo(json.dumps(inventory_json(inventory), indent=2, sort_keys=True))
    elif not inventory.amis:
        named = f" named {name!r}" if name else ""
        filters = named + (f" with status {status}" if status else "")
        click.echo(f"no tfbake AMIs{filters} in {inventory.region}")
    else:
        click.echo(table(HEADER, [_row(inventory, ami) for ami in inventory.amis]))


def inventory_json(inventory: Inventory) -> dict[str, Any]:
    return {
        "schema": LIST_SCHEMA,
        "region": inventory.region,
        "amis": [ami_json(inventory, ami) for ami in inventory.amis],
    }


def ami_json(inventory: Inventory, ami: AmiRecord) -> dict[str, Any]:
    uses = inventory.uses_of(ami.ami_id)
    return {
        "name": ami.name,
        "fingerprint": ami.fingerprint,
        "fingerprint_short": ami.fingerprint_short,
        "ami_id": ami.ami_id,
        "ami_name": ami.ami_name,
        "created": ami.creation_date,
        "status": ami.status or None,
        "state": ami.state,
        "regions": ami.regions,
        "in_use": bool(uses),
        "used_by": [str(use) for use in uses],
        "snapshots": list(ami.snapshot_ids),
        "shared_with": list(inventory.shares_of(ami.ami_id)),
        "deprecation_time": ami.deprecation_time or None,
    }


def created_text(ami: AmiRecord) -> str:
    return "-" if ami.created == UNKNOWN_CREATED else ami.created.strftime("%Y-%m-%d %H:%M")


def _row(inventory: Inventory, ami: AmiRecord) -> list[str]:
    uses = inventory.uses_of(ami.ami_id)
    return [
        ami.name or "-",
        ami.fingerprint_short,
        ami.ami_id,
        created_text(ami),
        ami.shown_status,
        ",".join(sorted(ami.regions)),
        f"yes ({len(uses)})" if uses else "no",
        ",".join(inventory.shares_of(ami.ami_id)) or "-",
    ]
