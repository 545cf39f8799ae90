"""The README's first command, examples/sandbox/demo.py, as a user runs it: it bakes on apply and
is never silent for long while Terraform runs."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.terraform import REPO_ROOT


def test_the_demo_bakes_on_apply_and_shows_progress_while_terraform_runs(
    terraform_bin: str,
) -> None:
    demo = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples/sandbox/demo.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TFBAKE_HEARTBEAT_SECONDS": "1"},
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lines = demo.stdout.splitlines()
    assert lines[-1].startswith("ok: baked once, reused with no bake, rebaked on change")
    # The bake resource's output, printed while Terraform applies: the steps and the result.
    assert any(line.startswith("  baking ") for line in lines), demo.stdout
    assert sum(line.startswith("  tfbake: baked ami-") for line in lines) == 2
    assert any(line.startswith("  terraform apply: running for ") for line in lines), demo.stdout
    assert "\r" not in demo.stdout  # off a terminal: whole lines only
