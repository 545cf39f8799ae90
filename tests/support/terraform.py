"""Run the real Terraform CLI offline: find it, build a provider mirror, stage roots, run commands.

Providers come from a filesystem mirror (Terraform's unpacked layout) that is built per run:
`hashicorp/aws` linked from an existing mirror, and `hashicorp/external` from the stand-in in
tests/support/external_provider. The existing mirror is the directory named by
TFBAKE_TF_PROVIDER_MIRROR, or else the first of Terraform's usual plugin directories (and a
few install locations) that holds hashicorp/aws. Terraform reads a CLI config written here,
never the user's, so nothing is downloaded and nothing outside the run's directory changes.

This module does not import pytest: examples/sandbox/demo.py uses it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR_ENV = "TFBAKE_TF_PROVIDER_MIRROR"
AWS_PROVIDER = Path("registry.terraform.io/hashicorp/aws")
EXTERNAL_PROVIDER = Path("registry.terraform.io/hashicorp/external")
# Terraform's implied local mirror directories on Linux, then places images unpack plugins to.
MIRROR_CANDIDATES = (
    Path.home() / ".terraform.d/plugins",
    Path.home() / ".local/share/terraform/plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
    Path("/opt/tf-plugins"),
    Path("/opt/terraform/plugins"),
)
SEARCH_ROOTS = (Path("/opt"), Path("/usr/local"), Path("/srv"), Path.home())
SEARCH_DEPTH = 4
INSTALL_HINT = (
    "terraform is not on PATH: install Terraform >= 1.5 "
    "(https://developer.hashicorp.com/terraform/install; on Debian/Ubuntu add "
    "apt.releases.hashicorp.com and `apt-get install terraform`), or put its binary on PATH"
)
# The AWS provider of a test root: the sandbox's endpoint comes from AWS_ENDPOINT_URL, and
# nothing is asked of AWS that the sandbox does not answer.
SANDBOX_AWS_PROVIDER = """\
provider "aws" {
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
"""
STAGE_IGNORE = shutil.ignore_patterns(
    ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "__pycache__"
)


def tfbake_command() -> list[str]:
    """This interpreter running tfbake, so Terraform calls the checkout under test."""
    return [sys.executable, "-m", "tfbake"]


class TerraformUnavailable(Exception):
    """Terraform or a provider it needs cannot be found; the message says how to fix it."""


def find_terraform() -> str:
    found = shutil.which("terraform")
    if found is None:
        raise TerraformUnavailable(INSTALL_HINT)
    return found


def find_aws_mirror() -> Path:
    """The filesystem mirror holding hashicorp/aws, from TFBAKE_TF_PROVIDER_MIRROR or a search."""
    configured = os.environ.get(MIRROR_ENV)
    if configured:
        if not (Path(configured) / AWS_PROVIDER).is_dir():
            raise TerraformUnavailable(
                f"{MIRROR_ENV}={configured} holds no {AWS_PROVIDER} "
                "(expected Terraform's filesystem-mirror layout)"
            )
        return Path(configured)
    for candidate in MIRROR_CANDIDATES:
        if (candidate / AWS_PROVIDER).is_dir():
            return candidate
    for root in SEARCH_ROOTS:
        for directory in _walk(root, SEARCH_DEPTH):
            if (directory / AWS_PROVIDER).is_dir():
                return directory
    raise TerraformUnavailable(
        f"no filesystem mirror with {AWS_PROVIDER} found: set {MIRROR_ENV} to a directory "
        "in Terraform's mirror layout (`terraform providers mirror DIR` writes one)"
    )


def _walk(root: Path, depth: int) -> Iterator[Path]:
    if depth < 0 or not root.is_dir():
        return
    yield root
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if not child.name.startswith("."):
            yield from _walk(child, depth - 1)


def build_mirror(directory: Path, source: Path, *, stand_in_external: bool) -> Path:
    """A mirror with hashicorp/aws linked from `source`, and hashicorp/external either from the
    stand-in or, when `source` holds a real one, linked from there too."""
    _link_provider(source, directory, AWS_PROVIDER)
    if stand_in_external:
        from tests.support import external_provider

        problem = external_provider.missing_dependency()
        if problem:
            raise TerraformUnavailable(problem)
        external_provider.install(directory)
    elif (source / EXTERNAL_PROVIDER).is_dir():
        _link_provider(source, directory, EXTERNAL_PROVIDER)
    return directory


def has_external_provider(mirror: Path) -> bool:
    return (mirror / EXTERNAL_PROVIDER).is_dir()


def _link_provider(source: Path, destination: Path, provider: Path) -> None:
    # Terraform's mirror scan does not follow symlinked directories: link file by file.
    origin = (source / provider).resolve()
    for path in origin.rglob("*"):
        if path.is_file():
            link = destination / provider / path.relative_to(origin)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path)


def write_cli_config(path: Path, mirror: Path) -> Path:
    """A CLI config that installs every provider from `mirror` and never from the network."""
    path.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )
    return path


def offline_environment(cli_config: Path) -> dict[str, str]:
    return {
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",  # no version check against checkpoint-api.hashicorp.com
    }


def stage(destination: Path, *parts: str) -> Path:
    """Copy modules/ and the given repository paths under `destination`, keeping their layout
    (examples name modules by relative path); returns the last one copied."""
    shutil.copytree(REPO_ROOT / "modules", destination / "modules", ignore=STAGE_IGNORE)
    copied = destination
    for part in parts:
        copied = destination / part
        shutil.copytree(REPO_ROOT / part, copied, ignore=STAGE_IGNORE, dirs_exist_ok=True)
    return copied


@dataclass(frozen=True)
class Run:
    command: str
    code: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> Run:
        if self.code != 0:
            raise AssertionError(
                f"terraform {self.command} exited {self.code}\n{self.stderr}\n{self.stdout[-3000:]}"
            )
        return self


class Root:
    """One Terraform root directory driven through python-terraform, offline."""

    def __init__(self, directory: Path, terraform_bin: str) -> None:
        from python_terraform import Terraform

        self.directory = directory
        self.tf = Terraform(working_dir=str(directory), terraform_bin_path=terraform_bin)

    def _run(self, command: str, call: Any) -> Run:
        started = time.perf_counter()
        code, out, err = call()
        return Run(command, code, out or "", err or "", time.perf_counter() - started)

    def init(self) -> Run:
        from python_terraform import IsFlagged

        # Terraform accepts "-no-color" but not python-terraform's "-no-color=true".
        return self._run("init", lambda: self.tf.init(no_color=IsFlagged))

    def apply(self, variables: Mapping[str, Any] | None = None) -> Run:
        # python-terraform asks for approval unless skip_plan, which passes -auto-approve.
        return self._run(
            "apply", lambda: self.tf.apply(skip_plan=True, var=dict(variables or {}) or None)
        )

    def plan(self, variables: Mapping[str, Any] | None = None) -> Run:
        """Exit 0: no changes, 2: changes (python-terraform adds -detailed-exitcode), 1: error."""
        return self._run("plan", lambda: self.tf.plan(var=dict(variables or {}) or None))

    def destroy(self, variables: Mapping[str, Any] | None = None) -> Run:
        from python_terraform import IsNotFlagged

        # Terraform removed destroy's -force; -auto-approve replaces it.
        return self._run(
            "destroy",
            lambda: self.tf.destroy(
                force=IsNotFlagged, auto_approve=True, var=dict(variables or {}) or None
            ),
        )

    def command(self, *args: str, env: Mapping[str, str] | None = None) -> Run:
        """Any terraform command line, as a pipeline runs it (`plan -out F`, `apply F`)."""
        return self._subprocess([self.tf.terraform_bin_path, *args], " ".join(args), env)

    def _subprocess(self, argv: list[str], name: str, env: Mapping[str, str] | None) -> Run:
        started = time.perf_counter()
        completed = subprocess.run(
            argv,
            cwd=self.directory,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        return Run(
            name,
            completed.returncode,
            completed.stdout,
            completed.stderr,
            time.perf_counter() - started,
        )

    def shell(self, command_line: str, env: Mapping[str, str] | None = None) -> Run:
        """A command line as a CI runner runs it: through sh, in this directory."""
        return self._subprocess(["/bin/sh", "-c", command_line], command_line, env)

    def validate(self) -> Run:
        from python_terraform import IsFlagged

        return self._run("validate", lambda: self.tf.cmd("validate", no_color=IsFlagged))

    def outputs(self) -> dict[str, Any]:
        values = self.tf.output()
        assert values is not None, "terraform output failed"
        return {name: entry["value"] for name, entry in values.items()}
