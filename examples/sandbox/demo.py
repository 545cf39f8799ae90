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
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
    started = time.perf_counter()
    done = subprocess.run(
        [binary, *args, "-no-color"], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"terraform {args[0]} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return time.perf_counter() - started


def outputs(binary: str, root: Path) -> dict[str, object]:
    text = subprocess.run(
        [binary, "output", "-json"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return {name: value["value"] for name, value in json.loads(text).items()}


def main() -> None:
    try:
        binary = terraform.find_terraform()
    except terraform.TerraformUnavailable as err:
        sys.exit(str(err))
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
        os.environ["TFBAKE_LOG_FILE"] = str(scratch / "tfbake-external.log")
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


def apply(binary: str, root: Path, sandbox: Sandbox, name: str, salt: str) -> Step:
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
