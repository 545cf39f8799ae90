"""examples/sandbox/README.md's by-hand steps, run as written in bash, offline.

The one change to the text is the port: another run on this machine may hold 4566. Terraform's
own TF_CLI_ARGS_* answer the approval prompts a person would answer.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.support.registry import free_port
from tests.support.terraform import REPO_ROOT, stage

README = REPO_ROOT / "examples/sandbox/README.md"


def by_hand_steps() -> str:
    text = README.read_text()
    section = text[text.index("## By hand") :]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL)[1]


def test_the_by_hand_steps_pass_as_written(terraform_bin: str, tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    stage(tree, "examples/sandbox")
    steps = by_hand_steps().replace("4566", str(free_port()))
    environment = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TF_CLI_ARGS_apply": "-auto-approve",
        "TF_CLI_ARGS_destroy": "-auto-approve",
        "TF_CLI_ARGS_plan": "-no-color",
    }
    for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "TF_CLI_CONFIG_FILE"):
        environment.pop(key, None)  # everything the steps need, they set themselves
    with subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", steps],
        cwd=tree,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as shell:
        try:
            output, _ = shell.communicate(timeout=600)
        finally:
            if shell.poll() is None:
                os.killpg(shell.pid, signal.SIGTERM)
    assert shell.returncode == 0, output[-4000:]
    plans = output.split("Terraform used the selected providers")
    assert "No changes." in output, output[-4000:]
    assert len(plans) >= 2, output[-4000:]  # the first plan showed what apply then created
    assert "Destroy complete!" in output
