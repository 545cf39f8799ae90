"""The demo through Terraform: apply bakes, apply again reuses, a changed salt rebakes and rolls.

Run from a checkout:  python3 examples/sandbox/demo.py
It starts the sandbox (a local AWS endpoint) in this process, copies examples/sandbox and the
modules to a temporary directory, and runs the real `terraform` there: init, apply (bakes the
AMI, creates the launch template and the group), apply again (no bake), apply with a changed
salt (one bake, a new launch template version). Then it prints a summary and stops.

Providers: when registry.terraform.io is reachable, `terraform init` installs them as usual
(cached in ~/.cache/tfbake/terraform-plugins). Offline, or when TFBAKE_TF_PROVIDER_MIRROR names
a filesystem mirror, they come from that mirror; if the mirror has no hashicorp/external, the
stand-in from tests/support/external_provider serves it (needs `pip install tf 'protobuf<6'`).

While Terraform runs, the demo prints what the bake resource's apply prints (each bake step,
then the AMI), and a heartbeat line after TFBAKE_HEARTBEAT_SECONDS (30 s) without anything else
printed.

`python3 examples/sandbox/demo.py --instances real` (root; see the README's "What is real here")
runs the same example on real instances: a loopback registry serves a busybox httpd image built
on the spot, the bake runs the recipe on a booted builder, the autoscaling group's instance
boots the baked AMI and serves a page from the baked container, and a changed salt rebakes and
rolls the group onto a new instance. Everything it started is stopped at the end.

`python3 examples/sandbox/demo.py --shell [--port N]` instead prints, for `eval` in your own
shell, what the by-hand steps of examples/sandbox/README.md need: the Terraform CLI config
(providers from the mirror, the stand-in external provider) under ~/.cache/tfbake, the
sandbox endpoint `tfbake sandbox --port N` serves, and the command Terraform runs tfbake with.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # tfbake and tests.support from this checkout

from tests.support import terraform  # noqa: E402

if TYPE_CHECKING:
    from tfbake.sandbox import Sandbox

EXAMPLE = "examples/sandbox"


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    bakes: int
    ami_id: str
    template_version: int


def registry_reachable() -> bool:
    try:
        socket.create_connection(("registry.terraform.io", 443), timeout=3).close()
    except OSError:
        return False
    return True


def provider_setup(scratch: Path) -> tuple[dict[str, str], str]:
    """Environment for Terraform and a line saying where the providers come from."""
    if not os.environ.get(terraform.MIRROR_ENV) and registry_reachable():
        cache = Path.home() / ".cache/tfbake/terraform-plugins"
        cache.mkdir(parents=True, exist_ok=True)
        return {"TF_PLUGIN_CACHE_DIR": str(cache)}, "providers: registry.terraform.io"
    source = terraform.find_aws_mirror()
    stand_in = not terraform.has_external_provider(source)
    mirror = terraform.build_mirror(scratch / "mirror", source, stand_in_external=stand_in)
    config = terraform.write_cli_config(scratch / "cli.tfrc", mirror)
    external = "the stand-in" if stand_in else source
    return (
        terraform.offline_environment(config),
        f"providers: offline, aws from {source}, external from {external}",
    )


def run(binary: str, root: Path, *args: str) -> float:
    """Run terraform, showing the bake's progress (the bake resource's local-exec output) and a
    heartbeat while it runs."""
    from tfbake.cli.progress import heartbeat_seconds

    started = time.perf_counter()
    printer = ProgressPrinter(f"terraform {args[0]}", started, heartbeat_seconds())
    with subprocess.Popen(
        [binary, *args, "-no-color"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        errors: list[str] = []
        threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
        threading.Thread(target=errors.extend, args=(process.stderr,), daemon=True).start()
        output = printer.follow(lines)
        process.wait()
    if process.returncode != 0:
        sys.exit(f"terraform {args[0]} failed ({process.returncode}):\n{''.join(errors)}{output}")
    return time.perf_counter() - started


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class ProgressPrinter:
    """Prints what tfbake says during the apply (Terraform's "(local-exec):" lines of the bake
    resource), and a heartbeat when nothing was printed for an interval.

    On a terminal the heartbeat is one live line, rewritten; elsewhere a line per interval."""

    MARK = "(local-exec): "

    def __init__(self, what: str, started: float, interval: float) -> None:
        self.what = what
        self.started = started
        self.interval = interval
        self.printed_at = started
        self.live = sys.stdout.isatty()
        self.pending_live = False

    def follow(self, lines: queue.Queue[str | None]) -> str:
        """Until the stream ends; returns all of Terraform's output, for a failure report."""
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=min(1.0, self.interval))
            except queue.Empty:
                self._heartbeat()
                continue
            if line is None:
                break
            seen.append(line)
            if self.MARK in line:
                self._print(f"  {line.split(self.MARK, 1)[1].rstrip()}")
                self.printed_at = time.perf_counter()
        if self.pending_live:
            print(flush=True)
        return "".join(seen)

    def _heartbeat(self) -> None:
        now = time.perf_counter()
        if now - self.printed_at >= self.interval:
            self._print(f"  {self.what}: running for {now - self.started:.0f} s", live=True)
            self.printed_at = now

    def _print(self, text: str, *, live: bool = False) -> None:
        if self.live and live:
            print(f"\r\033[K{text}", end="", flush=True)
            self.pending_live = True
            return
        if self.pending_live:
            print(flush=True)
            self.pending_live = False
        print(text, flush=True)


def outputs(binary: str, root: Path) -> dict[str, object]:
    text = subprocess.run(
        [binary, "output", "-json"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return {name: value["value"] for name, value in json.loads(text).items()}


def shell(port: int) -> None:
    """Print `export` lines for the by-hand steps; the mirror stays under ~/.cache/tfbake."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = cache / "tfbake" / "sandbox-terraform"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        terraform.find_terraform()
        environment, providers = provider_setup(directory)
    except terraform.TerraformUnavailable as err:
        sys.exit(str(err))
    from tfbake.sandbox.server import DUMMY_CREDENTIALS

    environment.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **DUMMY_CREDENTIALS,
            "TF_VAR_tfbake_command": json.dumps(terraform.tfbake_command()),
        }
    )
    print(f"# {providers}; the endpoint of `tfbake sandbox --port {port}`")
    for key, value in environment.items():
        print(f"export {key}={shlex.quote(value)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--shell", action="store_true", help="print the environment for the by-hand steps"
    )
    parser.add_argument("--port", type=int, default=4566, help="the sandbox's port (--shell)")
    parser.add_argument(
        "--instances",
        choices=["recorded", "real"],
        default="recorded",
        help="real: instances boot as systemd machines and serve from the baked containers",
    )
    arguments = parser.parse_args()
    if arguments.shell:
        shell(arguments.port)
        return
    try:
        binary = terraform.find_terraform()
    except terraform.TerraformUnavailable as err:
        sys.exit(str(err))
    if arguments.instances == "real":
        from examples.sandbox.real_demo import run_real_demo

        run_real_demo(binary)
        return
    from tfbake.sandbox import start_sandbox

    with tempfile.TemporaryDirectory(prefix="tfbake-demo-") as scratch_dir:
        scratch = Path(scratch_dir)
        try:
            environment, providers = provider_setup(scratch)
        except terraform.TerraformUnavailable as err:
            sys.exit(str(err))
        sandbox = start_sandbox()
        os.environ.update(sandbox.environment())
        os.environ.update(environment)
        print(f"sandbox AWS endpoint: {sandbox.url} (region {sandbox.region})")
        print(providers)
        try:
            root = terraform.stage(scratch / "tree", EXAMPLE)
            print(f"terraform init: {run(binary, root, 'init', '-input=false'):.1f} s")
            steps = [
                apply(binary, root, sandbox, "first apply", "1"),
                apply(binary, root, sandbox, "apply again", "1"),
                apply(binary, root, sandbox, "changed salt", "2"),
            ]
        finally:
            sandbox.stop()
    report(steps)


def apply(binary: str, root: Path, sandbox: Sandbox, name: str, salt: str, *extra: str) -> Step:
    command = ",".join(f'"{part}"' for part in terraform.tfbake_command())
    sandbox.log.clear()
    seconds = run(
        binary,
        root,
        "apply",
        "-auto-approve",
        "-input=false",
        f"-var=salt={salt}",
        f"-var=tfbake_command=[{command}]",
        *extra,
    )
    values = outputs(binary, root)
    bakes = sandbox.log.count("StartAutomationExecution")
    return Step(
        name, seconds, bakes, str(values["ami_id"]), int(str(values["launch_template_version"]))
    )


def report(steps: list[Step]) -> None:
    print(f"\n{'step':<14} {'seconds':>8} {'bakes':>6}  {'AMI':<22} {'launch template':>15}")
    for step in steps:
        print(
            f"{step.name:<14} {step.seconds:>8.1f} {step.bakes:>6}  {step.ami_id:<22} "
            f"{'version ' + str(step.template_version):>15}"
        )
    first, again, changed = steps
    assert first.bakes == 1, "the first apply should bake"
    assert again.bakes == 0 and again.ami_id == first.ami_id, "a second apply should reuse"
    assert changed.bakes == 1 and changed.ami_id != first.ami_id, "a new salt should rebake"
    assert changed.template_version == first.template_version + 1, "and roll the template"
    print("\nok: baked once, reused with no bake, rebaked on change and rolled the launch template")


if __name__ == "__main__":
    main()
