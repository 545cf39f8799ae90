"""modules/baked-ami's default: a `terraform plan` never bakes; the apply job bakes.

Terraform reads the data source on every plan and gives the program no way to tell a plan from
an apply, so the module's `on_missing` defaults to `fail` and the apply job says
`TFBAKE_ON_MISSING=bake`. A root of its own: the module alone, no `on_missing` given.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.terraform import Root, stage, tfbake_command
from tfbake.sandbox import Sandbox

STARTS = "StartAutomationExecution"
MAIN_TF = """
provider "aws" {
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variable "tfbake_command" {
  type = list(string)
}

module "web_ami" {
  source = "../modules/baked-ami"

  name           = "plan-web"
  images         = ["%s"]
  base_ami       = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  architecture   = "x86_64"
  builder        = { instance_profile = "tfbake-builder" }
  tfbake_command = var.tfbake_command
}

output "ami_id" {
  value = module.web_ami.ami_id
}
""" % ("nginx:1.27@sha256:" + "6784fb0834aa7dbbe12e3d7471e69c290df3e6ba810dc38b34ae33d3c1c05f7d")


@pytest.fixture
def root(terraform_bin: str, tmp_path: Path) -> Root:
    stage(tmp_path)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "main.tf").write_text(MAIN_TF)
    return Root(tmp_path / "root", terraform_bin)


def test_a_plan_of_a_missing_ami_fails_without_baking_and_the_apply_job_bakes(
    root: Root, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TFBAKE_ON_MISSING", raising=False)
    variables = {"tfbake_command": tfbake_command()}
    root.init().check()
    plan = root.plan(variables)
    assert plan.code == 1, plan.stdout + plan.stderr
    detail = " ".join(plan.stderr.split())
    assert re.search(r"tfbake: error: no ready AMI for image set 'plan-web'", detail), detail
    assert "TFBAKE_ON_MISSING=bake terraform apply" in detail
    assert sandbox.log.count(STARTS) == 0

    monkeypatch.setenv("TFBAKE_ON_MISSING", "bake")
    root.apply(variables).check()
    assert sandbox.log.count(STARTS) == 1
    ami_id = root.outputs()["ami_id"]

    monkeypatch.delenv("TFBAKE_ON_MISSING")
    sandbox.log.clear()
    replan = root.plan(variables)
    assert replan.code == 0, replan.stdout + replan.stderr
    assert "No changes." in replan.stdout
    assert sandbox.log.count(STARTS) == 0
    assert root.outputs()["ami_id"] == ami_id
