"""Run tfbake as its users do: a separate process, stdin in, stdout and stderr out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Completed:
    code: int
    stdout: str
    stderr: str

    def external_result(self) -> dict[str, str]:
        """Parse stdout the way Terraform's external provider does, or fail the test."""
        data = json.loads(self.stdout)
        assert isinstance(data, dict), self.stdout
        assert all(isinstance(v, str) for v in data.values()), self.stdout
        return data


def run_tfbake(
    *args: str,
    stdin: str | bytes = "",
    env: Mapping[str, str | None] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> Completed:
    """`stdin` as bytes is written as is (to send what is not UTF-8)."""
    environment = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    proc = subprocess.run(
        [sys.executable, "-m", "tfbake", *args],
        input=stdin if isinstance(stdin, bytes) else stdin.encode(),
        capture_output=True,
        env=environment,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    return Completed(proc.returncode, _text(proc.stdout), _text(proc.stderr))


def _text(output: bytes) -> str:
    # As text mode would read it (universal newlines), without failing on what is not UTF-8.
    return output.decode(errors="replace").replace("\r\n", "\n")


def external(query: Mapping[str, Any] | str | bytes, **kwargs: Any) -> Completed:
    stdin = query if isinstance(query, str | bytes) else json.dumps(query)
    return run_tfbake("external", stdin=stdin, **kwargs)


def assert_one_line_error(result: Completed, code: int, *fragments: str) -> None:
    """The error contract: the exit code, nothing on stdout, one line on stderr, no traceback."""
    assert result.code == code, (result.code, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
