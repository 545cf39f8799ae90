"""A wait of more than 12 hours without an Automation role fails at plan, through the module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.terraform import Root, stage
from tfbake.sandbox import Sandbox

ROLE = "arn:aws:iam::123456789012:role/tfbake-automation"


@pytest.mark.parametrize(
    ("builder", "refused"),
    [
        ({"timeout_minutes": 721}, True),
        ({"timeout_minutes": 721, "automation_role_arn": ROLE}, False),
        ({"timeout_minutes": 720}, False),
    ],
)
def test_a_long_timeout_needs_an_automation_role_at_plan(
    sandbox: Sandbox, terraform_bin: str, tmp_path: Path, builder: dict[str, object], refused: bool
) -> None:
    module = stage(tmp_path, "modules/baked-ami")
    variables = {"name": "web", "images": ["nginx:1.27"], "base_ami": "ami-0123456789abcdef0",
                 "builder": builder}  # fmt: skip
    (module / "terraform.tfvars.json").write_text(json.dumps(variables))
    root = Root(module, terraform_bin)
    root.init().check()
    plan = root.plan()

    message = " ".join(plan.stderr.split())
    assert (
        "builder.timeout_minutes above 720 needs builder.automation_role_arn" in message
    ) is refused
    assert sandbox.log.count("StartAutomationExecution") == 0
