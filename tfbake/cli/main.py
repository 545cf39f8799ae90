"""The `tfbake` command: parse options, call one function, render. Nothing else lives here."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

import click

from tfbake import __version__
from tfbake.cli.settings import Settings
from tfbake.model import tags
from tfbake.model.errors import ExitCode, TfbakeError

# How alike an unknown option must be to a known one for it to be suggested.
NEAR_MISS = 0.75


def _merge(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # The global options work before or after the command name: `tfbake --json check X`
    # and `tfbake check X --json` mean the same.
    settings = ctx.ensure_object(Settings)
    if param.name == "verbose":
        settings.verbose += value
    elif param.name == "json_output":
        settings.json = settings.json or value
    elif value is not None:
        setattr(settings, param.name, value)
    return value


def common_options(command: Any) -> Any:
    options = [
        click.option("--region", expose_value=False, callback=_merge,
                     help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)."),
        click.option("--profile", expose_value=False, callback=_merge,
                     help="AWS named profile."),
        click.option("--json", "json_output", is_flag=True, expose_value=False, callback=_merge,
                     help="Print machine-readable JSON."),
        click.option("-v", "--verbose", count=True, expose_value=False, callback=_merge,
                     help="More detail on stderr; -vv shows tracebacks."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(__version__, prog_name="tfbake")
def cli() -> None:
    """Bake an AMI with pre-pulled Docker images only when its contents change."""


spec_argument = click.argument(
    "spec", type=click.Path(path_type=Path, dir_okay=False), metavar="SPEC"
)


@cli.command()
@spec_argument
@common_options
@click.pass_obj
def fingerprint(settings: Settings, spec: Path) -> None:
    """Print the fingerprint of SPEC (with --json: every resolved input)."""
    from tfbake.cli.render import plan_json
    from tfbake.pipeline import plan_spec_file

    plan = plan_spec_file(spec, settings.aws())
    settings.explain(plan)
    if settings.json:
        _emit_json(plan_json(plan))
    else:
        click.echo(plan.fingerprint.value)


@cli.command()
@click.argument("spec", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--terraform",
    "terraform_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Check every tfbake module call in this Terraform directory instead.",
)
@click.option(
    "--var-file",
    "var_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="With --terraform: a .tfvars file, as terraform -var-file.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="With --terraform: a variable value, as terraform -var.",
)
@click.option("--recursive", is_flag=True, help="With --terraform: also every directory below DIR.")
@click.option(
    "--allow-empty", is_flag=True, help="With --terraform: pass when no module call is found."
)
@common_options
@click.pass_context
def check(
    ctx: click.Context, spec: Path | None, terraform_dir: Path | None,
    var_files: tuple[Path, ...], variables: tuple[str, ...], recursive: bool, allow_empty: bool,
) -> None:  # fmt: skip
    """Is there a ready AMI for SPEC? Exit 0 with its id, or 3 when it is missing."""
    from tfbake.cli.check import check_spec, check_terraform

    if (spec is None) == (terraform_dir is None):
        raise click.UsageError("give either SPEC or --terraform DIR", ctx)
    if spec is not None:
        terraform_only = {"--var-file": var_files, "--var": variables,
                          "--recursive": recursive, "--allow-empty": allow_empty}  # fmt: skip
        given = [name for name, value in terraform_only.items() if value]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise click.UsageError(f"{', '.join(given)} {verb} only with --terraform DIR", ctx)
        check_spec(ctx.obj, spec)
    elif terraform_dir is not None:
        check_terraform(ctx.obj, terraform_dir, var_files, variables,
                        recursive=recursive, allow_empty=allow_empty)  # fmt: skip


@cli.command()
@common_options
@click.pass_obj
def external(settings: Settings) -> None:
    """Terraform's external data source protocol: a JSON query on stdin, a JSON map on stdout."""
    from tfbake.cli.external import run_external
    from tfbake.terraform.protocol import read_query_text

    run_external(settings, read_query_text(sys.stdin.buffer))


@cli.command(name="bake-planned")
@click.argument("query", metavar="QUERY")
@common_options
@click.pass_obj
def bake_planned(settings: Settings, query: str) -> None:
    """Bake what a Terraform plan showed: modules/baked-ami's bake resource runs this at apply
    with its query as QUERY (a JSON object, or - to read it from stdin)."""
    from tfbake.cli.bake_planned import run_bake_planned
    from tfbake.terraform.protocol import read_query_text

    run_bake_planned(settings, read_query_text(sys.stdin.buffer) if query == "-" else query)


@cli.command()
@spec_argument
@common_options
@click.pass_obj
def diff(settings: Settings, spec: Path) -> None:
    """Explain why SPEC needs a bake: the inputs that changed since its newest ready AMI."""
    from tfbake.cli.diff import run_diff

    run_diff(settings, spec)


@cli.command()
@spec_argument
@common_options
@click.pass_obj
def ensure(settings: Settings, spec: Path) -> None:
    """Print the AMI id of SPEC, baking it first when it is missing."""
    from tfbake.cli.ensure import run_ensure

    run_ensure(settings, spec, force=False)


@cli.command()
@spec_argument
@click.option("--force", is_flag=True, help="Bake even when a ready AMI exists.")
@common_options
@click.pass_obj
def bake(settings: Settings, spec: Path, force: bool) -> None:
    """Bake SPEC when its AMI is missing (with --force: always) and print the AMI id."""
    from tfbake.cli.ensure import run_ensure

    run_ensure(settings, spec, force=force)


@cli.command()
@click.argument("target", metavar="EXECUTION_ID|SPEC")
@common_options
@click.pass_obj
def cancel(settings: Settings, target: str) -> None:
    """Stop a bake in progress and terminate its builder."""
    from tfbake.cli.cancel import run_cancel

    run_cancel(settings, target)


@cli.command()
@click.option(
    "--apply",
    is_flag=True,
    help="Terminate the builders, release the locks, delete the documents (default: list them).",
)
@click.option(
    "--max-age",
    "max_age_minutes",
    type=click.IntRange(min=1),
    default=120,
    show_default=True,
    help="Minutes after which any builder counts as stray.",
)
@common_options
@click.pass_obj
def cleanup(settings: Settings, apply: bool, max_age_minutes: int) -> None:
    """List what bakes left behind: builder instances, stale locks, unused SSM documents.

    --apply ends them."""
    from tfbake.cli.cleanup import run_cleanup

    run_cleanup(settings, apply=apply, max_age_minutes=max_age_minutes)


AMI_STATUSES = [tags.STATUS_READY, tags.STATUS_PENDING, tags.STATUS_FAILED, tags.STATUS_REVOKED]


@cli.command(name="list")
@click.option("--name", help="Only AMIs of this image set name.")
@click.option("--status", type=click.Choice(AMI_STATUSES), help="Only AMIs of this tfbake:status.")
@common_options
@click.pass_obj
def list_amis(settings: Settings, name: str | None, status: str | None) -> None:
    """List tfbake's AMIs in the region: status, age, and whether anything uses them."""
    from tfbake.cli.listing import run_list

    run_list(settings, name=name, status=status)


@cli.command()
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    required=True,
    help="Ready AMIs to keep per image set name, newest first.",
)
@click.option(
    "--min-age",
    "min_age_days",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Never remove an AMI younger than this many days.",
)
@click.option(
    "--grace",
    "grace_days",
    type=click.FloatRange(min=0),
    default=14,
    show_default=True,
    help="Never remove an AMI that ensure returned within this many days.",
)
@click.option(
    "--shared-grace",
    "shared_grace_days",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="A shared AMI that would go is deprecated this many days ahead instead (the accounts "
    "it is shared with see it); a later gc removes it once that time has passed.",
)
@click.option("--name", help="Only AMIs of this image set name.")
@click.option("--apply", is_flag=True, help="Remove them (default: only say what would go).")
@common_options
@click.pass_obj
def gc(
    settings: Settings,
    keep: int,
    min_age_days: float,
    grace_days: float,
    shared_grace_days: float,
    name: str | None,
    apply: bool,
) -> None:
    """Deregister old tfbake AMIs and delete their snapshots; never one in use, and a shared
    one only after the notice its DeprecationTime gave."""
    from tfbake.cli.gc import run_gc

    run_gc(settings, keep=keep, min_age_days=min_age_days, name=name, apply=apply,
           grace_days=grace_days, shared_grace_days=shared_grace_days)  # fmt: skip


@cli.command()
@click.argument("target", metavar="FINGERPRINT|AMI_ID")
@click.option("--reason", default="", help="Why, recorded in the tfbake:revoked-reason tag.")
@common_options
@click.pass_obj
def invalidate(settings: Settings, target: str, reason: str) -> None:
    """Revoke an AMI (or all AMIs of a fingerprint): never returned again, the next ensure bakes."""
    from tfbake.cli.invalidate import run_invalidate

    run_invalidate(settings, target, reason=reason)


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4566,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--instances",
    type=click.Choice(["recorded", "real"]),
    default="recorded",
    show_default=True,
    help="recorded: instances are records and commands are recorded; real: instances boot as "
    "systemd machines and commands run in them (root, systemd-nspawn, debootstrap).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --instances real: where machines and snapshots live "
    "(default: a temporary directory, removed at stop).",
)
@common_options
@click.pass_obj
def sandbox(settings: Settings, port: int, instances: str, state_dir: Path | None) -> None:
    """Serve a local AWS endpoint (EC2, SSM, SSM Automation) until interrupted."""
    from tfbake.cli.sandbox_command import run_sandbox

    if state_dir is not None and instances != "real":
        raise click.UsageError("--state-dir needs --instances real")
    run_sandbox(settings, port=port, instances=instances, state_dir=state_dir)


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def main() -> None:
    """Entry point: every expected failure becomes one line on stderr and its exit code."""
    settings = Settings()
    try:
        code = cli.main(prog_name="tfbake", standalone_mode=False, obj=settings)
    except TfbakeError as err:
        if settings.verbose:
            for line in err.lines:
                click.echo(f"tfbake: {line}", err=True)
        _fail(f"error: {err.one_line()}", err.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", ExitCode.CANCELLED)
    except click.UsageError as err:
        _fail(f"error: {_usage_message(err)} (see `{_command_path(err)} --help`)",
              ExitCode.BAD_INPUT)  # fmt: skip
    except click.ClickException as err:
        _fail(f"error: {err.format_message()}", ExitCode.BAD_INPUT)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.CANCELLED)
    except Exception as err:  # a bug: say so in one line, show the traceback on request
        if settings.verbose >= 2:
            raise
        _fail(f"internal error: {type(err).__name__}: {err} (rerun with -vv for the traceback)",
              ExitCode.INTERNAL)  # fmt: skip
    # Commands that end with a non-zero status on purpose (`check` on a miss) call ctx.exit.
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _command_path(err: click.UsageError) -> str:
    if err.ctx is not None and err.ctx.command is not cli:
        return err.ctx.command_path
    # Errors raised while parsing a command's options carry no context: name it from argv.
    command = next((arg for arg in sys.argv[1:] if arg in cli.commands), None)
    return f"tfbake {command}" if command else "tfbake"


def _usage_message(err: click.UsageError) -> str:
    if not isinstance(err, click.NoSuchOption) or err.ctx is None:
        return err.format_message()
    # click suggests anything remotely alike (--verbose for --forse); only a near miss helps,
    # and an option of another command is named with that command.
    own = [opt for param in err.ctx.command.params for opt in getattr(param, "opts", [])]
    close = difflib.get_close_matches(err.option_name, own, n=1, cutoff=NEAR_MISS)
    message = f"no such option {err.option_name!r}"
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    for name, other in cli.commands.items():
        options = [opt for param in other.params for opt in getattr(param, "opts", [])]
        match = difflib.get_close_matches(err.option_name, options, n=1, cutoff=NEAR_MISS)
        if match:
            return f"{message} ({match[0]!r} is an option of `tfbake {name}`)"
    return message


def _fail(message: str, code: int) -> None:
    click.echo(f"tfbake: {message}", err=True)
    sys.exit(int(code))
