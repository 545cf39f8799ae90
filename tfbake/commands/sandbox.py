"""`tfbake sandbox`: serve the local AWS endpoint until interrupted."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from tfbake.errors import BadInput


def run_sandbox(
    settings: Any, *, port: int, instances: str = "recorded", state_dir: Path | None = None
) -> None:
    try:
        from tfbake.sandbox import start_sandbox
    except ImportError as err:
        raise BadInput(
            f"the sandbox needs the optional extra: pip install 'tfbake[sandbox]' ({err.name})"
        ) from None
    from tfbake.sandbox.machines.prerequisites import PrerequisiteMissing
    from tfbake.sandbox.machines.roots import RootBuildError

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox = start_sandbox(
            port=port,
            region=settings.region or "us-east-1",
            instances=instances,
            state_dir=state_dir,
            log=lambda message: click.echo(f"# {message}", err=True),
        )
    except OSError as err:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from None
    except (PrerequisiteMissing, RootBuildError) as err:
        raise BadInput(str(err)) from None
    click.echo(f"# tfbake sandbox serving on {sandbox.url}; Ctrl-C stops it", err=True)
    if sandbox.state_dir is not None:
        click.echo(f"# real instances: machines and snapshots in {sandbox.state_dir}", err=True)
    for key, value in sandbox.environment().items():
        click.echo(f"export {key}={value}")
    stop.wait()
    sandbox.stop()
    click.echo("# tfbake sandbox stopped", err=True)
