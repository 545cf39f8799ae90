"""`tfbake cleanup`: list (or, with --apply, end) builder instances and locks bakes left behind."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from tfbake.aws.calls import error_code
from tfbake.bake.housekeeping import UnusedDocument
from tfbake.bake.leftovers import Leftovers, sweep
from tfbake.bake.stale_locks import StaleLock
from tfbake.cli.render import table
from tfbake.cli.settings import Settings
from tfbake.model.errors import AwsError

CLEANUP_SCHEMA = "tfbake.cleanup/1"


def run_cleanup(settings: Settings, *, apply: bool, max_age_minutes: int) -> None:
    aws = settings.aws()
    found = sweep(aws, max_age=timedelta(minutes=max_age_minutes), apply=apply)
    _report(settings, found, apply, aws.effective_region)
    if found.lock_errors:
        first = found.lock_errors[0]
        raise AwsError(
            f"{len(found.lock_errors)} stale lock(s) not released: {first.one_line()}",
            code=error_code(first),
        )
    if found.documents_error is not None:
        # Builders and locks were handled; the exit code still says the sweep was incomplete.
        raise AwsError(
            f"unused SSM documents were not looked for: {found.documents_error.one_line()}",
            code=error_code(found.documents_error),
        )


def _report(settings: Settings, found: Leftovers, apply: bool, region: str) -> None:
    strays, locks, documents = found.builders, found.locks, found.documents
    if settings.json:
        click.echo(json.dumps({
            "schema": CLEANUP_SCHEMA,
            "region": region,
            "applied": apply,
            "builders": [{"instance_id": s.instance_id, "execution_id": s.execution_id,
                          "launched": s.launched.isoformat(), "reason": s.reason} for s in strays],
            "locks": [{"fingerprint": lock.fingerprint, "execution_id": lock.record.execution_id,
                       "reason": lock.reason} for lock in locks],
            "documents": [{"name": d.name, "created": d.created.isoformat()} for d in documents],
        }, indent=2, sort_keys=True))  # fmt: skip
        return
    _echo_locks(locks, apply)
    _echo_documents(documents, apply)
    if not strays:
        click.echo("no stray builder instances")
        return
    rows = [
        [s.instance_id, s.execution_id or "-", s.launched.isoformat(), s.reason] for s in strays
    ]
    click.echo(table(["INSTANCE", "EXECUTION", "LAUNCHED", "WHY"], rows))
    verb = "terminated" if apply else "would terminate (dry run; pass --apply)"
    click.echo(f"{verb}: {len(strays)} instance(s)")


def _echo_locks(locks: list[StaleLock], apply: bool) -> None:
    if not locks:
        return
    rows = [[lock.fingerprint[:16], lock.record.execution_id or "-", lock.reason] for lock in locks]
    click.echo(table(["LOCK", "EXECUTION", "WHY"], rows))
    verb = "released" if apply else "would release (dry run; pass --apply)"
    click.echo(f"{verb}: {len(locks)} stale lock(s)")


def _echo_documents(documents: list[UnusedDocument], apply: bool) -> None:
    if not documents:
        return
    click.echo(table(["DOCUMENT", "CREATED"], [[d.name, d.created.isoformat()] for d in documents]))
    verb = "deleted" if apply else "would delete (dry run; pass --apply)"
    click.echo(f"{verb}: {len(documents)} SSM document(s) of earlier tfbake releases")
