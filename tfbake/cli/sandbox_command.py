"""`tfbake sandbox`: serve the local AWS endpoint until interrupted."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import click

from tfbake.cli.settings import Settings
from tfbake.model.errors import BadInput


def run_sandbox(
    settings: Settings, *, port: int, instances: str = "recorded", state_dir: Path | None = None
) -> None:
    if settings.json:
        raise click.UsageError(
            "--json: the sandbox prints shell exports, not JSON", click.get_current_context()
        )
    try:
        # moto is imported inside start_sandbox: import it here so its absence is this error.
        import moto  # noqa: F401

        from tfbake.sandbox import start_sandbox
    except ImportError as err:
        raise BadInput(
            f"the sandbox needs the optional extra: pip install 'tfbake[sandbox]' ({err.name})"
        ) from None
    from tfbake.sandbox.machines.prerequisites import PrerequisiteMissing
    from tfbake.sandbox.machines.roots import RootBuildError
    from tfbake.sandbox.middleware import known_regions

    region = settings.region or "us-east-1"
    if region not in known_regions():
        raise BadInput(f"--region {region!r}: AWS has no such region, so neither does the sandbox")
    _check_port_free(port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox = start_sandbox(
            port=port,
            region=region,
            instances=instances,
            state_dir=state_dir,
            log=lambda message: click.echo(f"# {message}", err=True),
        )
    except OSError as err:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from None
    except SystemExit:  # werkzeug exits by itself when it cannot bind
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: address already in use") from None
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


def _check_port_free(port: int) -> None:
    # werkzeug reports a taken port by printing two lines and calling sys.exit itself.
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as err:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from None
    finally:
        probe.close()
