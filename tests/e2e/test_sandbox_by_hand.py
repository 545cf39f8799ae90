"""examples/sandbox/README.md's by-hand steps, run as written in bash, offline.

The one change to the text is the port: another run on this machine may hold 4566. Terraform's
own TF_CLI_ARGS_* answer the approval prompts a person would answer.
"""

from __future__ import annotations

import contextlib
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
    # What a checkout holds that the steps use: the example, the modules, and demo.py's helpers.
    stage(tree, "tests/support", "examples/sandbox")
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
    # Output to a file, not a pipe: when a step fails, the sandbox started with `&` is still
    # running and would hold a pipe open. Whatever the steps left in their session is ended.
    log = tmp_path / "steps.log"
    with log.open("w") as out:
        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", steps],
            cwd=tree,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            shell.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
            shell.wait()
    output = log.read_text()
    assert shell.returncode == 0, output[-4000:]
    plans = output.split("Terraform used the selected providers")
    assert "No changes." in output, output[-4000:]
    assert len(plans) >= 2, output[-4000:]  # the first plan showed what apply then created
    assert "Destroy complete!" in output
