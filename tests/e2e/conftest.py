"""Real Terraform runs: the CLI from PATH, providers from an offline mirror built per session.

How Terraform and the providers are found is described in tests/support/terraform.py. A missing
Terraform or provider fails the run (never skips it) with a message saying what to install.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.terraform import (
    Root,
    TerraformUnavailable,
    build_mirror,
    find_aws_mirror,
    find_terraform,
    offline_environment,
    stage,
    write_cli_config,
)

SANDBOX_EXAMPLE = "examples/sandbox"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)
            # python-terraform 0.10.1 logs failed commands through the deprecated Logger.warn.
            item.add_marker(
                pytest.mark.filterwarnings("ignore:The 'warn' method:DeprecationWarning")
            )


@pytest.fixture(scope="session")
def terraform_bin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Terraform's path, with this process's environment pointed at an offline CLI config."""
    try:
        binary = find_terraform()
        root = tmp_path_factory.mktemp("terraform")
        mirror = build_mirror(root / "mirror", find_aws_mirror(), stand_in_external=True)
    except TerraformUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    environment = {
        **offline_environment(write_cli_config(root / "cli.tfrc", mirror)),
        # Where `tfbake external` logs bake progress; kept out of the user's cache directory.
        "TFBAKE_LOG_FILE": str(root / "tfbake-external.log"),
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    yield binary
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def sandbox_template(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/sandbox staged and initialised once; tests work on copies of it."""
    tree = tmp_path_factory.mktemp("sandbox-template")
    Root(stage(tree, SANDBOX_EXAMPLE), terraform_bin).init().check()
    return tree


@pytest.fixture(scope="session")
def copy_sandbox_root(terraform_bin: str, sandbox_template: Path) -> Callable[[Path], Root]:
    """Make a copy of the initialised example at a path: its own root with its own state."""

    def copy(destination: Path) -> Root:
        # Symlinks stay links: .terraform/providers points into the session's mirror.
        shutil.copytree(sandbox_template, destination, symlinks=True)
        return Root(destination / SANDBOX_EXAMPLE, terraform_bin)

    return copy
