"""Inputs tfbake would reject fail at plan, through the module's own checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.terraform import Root, tfbake_command
from tfbake.sandbox import Sandbox


def test_invalid_image_reference_fails_at_plan_naming_the_variable(
    sandbox: Sandbox, copy_sandbox_root: Callable[[Path], Root], tmp_path: Path
) -> None:
    root = copy_sandbox_root(tmp_path / "tree")
    images = ["nginx:1.27", "Acme/API:2"]
    plan = root.plan({"tfbake_command": tfbake_command(), "images": images})
    assert plan.code == 1
    assert 'var.images: invalid image reference "Acme/API:2"' in " ".join(plan.stderr.split())
    assert sandbox.log.count("StartAutomationExecution") == 0
