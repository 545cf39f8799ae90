"""tfbake as a pipeline runner gets it: a wheel built from this checkout, installed into a clean
virtualenv, answers Terraform's query and says its version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.specs import planned_query
from tfbake import __version__
from tfbake.sandbox import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "tfbake")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # What the distribution is made of, copied: a build writes its work files beside its source.
    source = tmp_path_factory.mktemp("source")
    for part in SOURCES:
        copy = shutil.copytree if (REPO_ROOT / part).is_dir() else shutil.copy2
        copy(REPO_ROOT / part, source / part)
    # As the README says: an isolated build, its backend (setuptools) fetched as pyproject.toml
    # asks.
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return dist


@pytest.fixture(scope="module")
def installed(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv that sees nothing of this environment's packages, with the wheel in it."""
    environment = tmp_path_factory.mktemp("venv")
    venv.create(environment, with_pip=True, clear=True)
    (wheel,) = built.glob("tfbake-*.whl")
    subprocess.run(
        [str(environment / "bin/python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return environment / "bin" / "tfbake"


def test_build_makes_a_wheel_and_an_sdist_of_this_release(built: Path) -> None:
    names = sorted(path.name for path in built.iterdir())
    assert names == [f"tfbake-{__version__}-py3-none-any.whl", f"tfbake-{__version__}.tar.gz"]


def test_the_installed_command_says_its_version(installed: Path) -> None:
    result = subprocess.run(
        [str(installed), "--version"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"tfbake, version {__version__}")


def test_the_installed_command_answers_a_terraform_query(
    installed: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Run from elsewhere, with no path to this checkout: only the wheel's code can answer.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [str(installed), "external"],
        input=json.dumps(planned_query()),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["status"] == "missing"
    assert reply["tfbake_version"] == __version__
    assert sandbox.log.count("DescribeImages") >= 1
