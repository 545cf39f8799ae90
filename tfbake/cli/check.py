"""`tfbake check`: report whether a ready AMI exists, for one spec or a Terraform directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tfbake.cli.render import (
    REGION_HEADER,
    RESULT_HEADER,
    region_rows,
    result_json,
    result_rows,
    table,
)
from tfbake.cli.settings import Settings
from tfbake.model.errors import BadInput, ExitCode
from tfbake.model.plan import FOUND
from tfbake.pipeline import check, plan_spec_file

if TYPE_CHECKING:
    from tfbake.terraform.module_check import CallReport


def check_spec(settings: Settings, spec: Path) -> None:
    aws = settings.aws()
    plan = plan_spec_file(spec, aws)
    settings.explain(plan)
    result = check(plan, aws)
    complete = result.complete
    if settings.json:
        click.echo(json.dumps(result_json(result), indent=2, sort_keys=True))
    elif complete:
        click.echo(result.ami_id)
    elif result.status == FOUND:
        # Found at home, missing a copy elsewhere: say where.
        click.echo(table(REGION_HEADER, region_rows(result)))
    else:
        click.echo(table(RESULT_HEADER, [result_rows(result)]))
    click.get_current_context().exit(ExitCode.OK if complete else ExitCode.AMI_MISSING)


def check_terraform(
    settings: Settings,
    directory: Path,
    var_files: Sequence[Path],
    variables: Sequence[str],
    *,
    recursive: bool = False,
    allow_empty: bool = False,
) -> None:
    from tfbake.terraform.module_check import check_module_call, find_module_calls

    roots, calls = find_module_calls(
        directory, var_files, _parse_vars(variables), recursive=recursive
    )
    if not calls and not allow_empty:
        # A CI gate pointed at the wrong directory must not pass by checking nothing.
        where = f"{directory} or below it" if recursive else directory
        hint = "" if recursive else "; --recursive looks below it"
        raise BadInput(
            f"no tfbake module calls found in {where} ({len(roots)} root(s) read){hint}; "
            "--allow-empty accepts that"
        )
    aws = settings.aws()
    reports = [check_module_call(call, aws) for call in calls]
    if settings.json:
        click.echo(json.dumps([_report_json(r) for r in reports], indent=2, sort_keys=True))
    else:
        _print_reports(directory, reports)
        click.echo(f"checked {len(reports)} module call(s) in {len(roots)} root(s)", err=True)
    click.get_current_context().exit(_exit_code(reports))


def _exit_code(reports: Sequence[CallReport]) -> ExitCode:
    if any(r.result is not None and not r.result.complete for r in reports):
        return ExitCode.AMI_MISSING
    if any(r.result is None for r in reports):
        return ExitCode.BAD_INPUT
    return ExitCode.OK


def _report_json(report: CallReport) -> dict[str, Any]:
    return {
        "address": report.address,
        "location": report.location,
        "status": report.status,
        "problem": report.problem,
        "unresolved": list(report.unresolved),
        "result": result_json(report.result) if report.result else None,
    }


def _print_reports(directory: Path, reports: Sequence[CallReport]) -> None:
    if not reports:
        click.echo(f"no tfbake module calls in {directory}")
        return
    rows = []
    for r in reports:
        ami = r.result.ami_id if r.result and r.result.ami_id else "-"
        fingerprint = r.result.plan.fingerprint.short if r.result else "-"
        rows.append([r.address, r.status, ami, fingerprint, r.location])
    click.echo(table(["MODULE", "STATUS", "AMI", "FINGERPRINT", "LOCATION"], rows))
    for r in reports:
        missing = r.result.missing_regions if r.result else []
        lines = [f"no ready copy in {', '.join(missing)}"] if missing else []
        lines += [r.problem] if r.problem else []
        for line in lines + [f"unresolved: {u}" for u in r.unresolved]:
            click.echo(f"  {r.address}: {line}")


def _parse_vars(assignments: Sequence[str]) -> dict[str, str]:
    parsed = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--var {assignment!r}: expected NAME=VALUE")
        parsed[name] = value
    return parsed
