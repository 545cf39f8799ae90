"""`tfbake sandbox` and the sandbox's answers as users meet them: errors in the documented form."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.support.bakes import BASE
from tests.support.cli import assert_one_line_error, run_tfbake
from tests.support.specs import write_spec
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox


def test_without_the_sandbox_extra_it_says_what_to_install(tmp_path: Path) -> None:
    # moto missing, as in an environment without the extra: a package that fails to import.
    hidden = tmp_path / "no-moto"
    (hidden / "moto").mkdir(parents=True)
    (hidden / "moto" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'moto'\", name='moto')\n"
    )

    path = os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])
    result = run_tfbake("sandbox", "--port", "0", env={"PYTHONPATH": path})
    assert_one_line_error(result, ExitCode.BAD_INPUT, "pip install 'tfbake[sandbox]'", "(moto)")


def test_a_taken_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_tfbake("sandbox", "--port", str(port))
    assert_one_line_error(result, ExitCode.BAD_INPUT, f"cannot listen on 127.0.0.1:{port}",
                          "in use")  # fmt: skip


def test_json_is_a_usage_error() -> None:
    result = run_tfbake("sandbox", "--json", "--port", "0")
    assert_one_line_error(result, ExitCode.BAD_INPUT, "--json", "see `tfbake sandbox --help`")


def test_an_unknown_region_is_refused_by_the_sandbox_command() -> None:
    result = run_tfbake("sandbox", "--region", "us-east-9", "--port", "0")
    assert_one_line_error(result, ExitCode.BAD_INPUT, "'us-east-9'", "no such region")


def test_an_unknown_region_is_answered_as_aws_does_and_named(
    tmp_path: Path, sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_tfbake("check", str(write_spec(tmp_path, base_ami=BASE)), "--region", "us-east-9")
    assert_one_line_error(result, ExitCode.AWS, "AWS does not know the region 'us-east-9'",
                          "check the region given")  # fmt: skip
    assert "HTML" not in result.stderr
    assert "Traceback" not in capfd.readouterr().err  # the sandbox's own output, in this process
