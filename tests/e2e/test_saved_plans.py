"""A pipeline that saves its plan, as Atlantis runs one: the plan reads, the apply acts.

`terraform plan -out F` bakes nothing and shows the bake to come; `terraform apply F`, from a
copy of the working directory as a later job gets it, bakes once and rolls the launch template.
A re-plan is clean, a moved tag is a planned bake, and a bake that failed at apply is planned
again and recovers.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_tfbake
from tests.support.images import push_busybox_image
from tests.support.registry import RegistryServer
from tests.support.terraform import SANDBOX_AWS_PROVIDER, Root, stage, tfbake_command
from tfbake.aws.calls import AwsContext
from tfbake.sandbox import Sandbox

STARTS = "StartAutomationExecution"
WRITES = ("CreateTags", "PutParameter", "DeleteParameter", STARTS, "CopyImage", "CreateImage")
LAUNCH_TEMPLATE = "saved-plan-web"
MAIN_TF = (
    SANDBOX_AWS_PROVIDER
    + """
variable "tfbake_command" {
  type = list(string)
}

variable "image" {
  type = string
}

module "web_ami" {
  source = "../modules/baked-ami"

  name           = "saved-plan-web"
  images         = [var.image]
  base_ami       = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  architecture   = "x86_64"
  builder        = { instance_profile = "tfbake-builder" }
  tfbake_command = var.tfbake_command
}

resource "aws_launch_template" "web" {
  name                   = "saved-plan-web"
  image_id               = module.web_ami.ami_id
  update_default_version = true
}

output "ami_id" {
  value = module.web_ami.ami_id
}
"""
)


@pytest.fixture
def plan_job(terraform_bin: str, tmp_path: Path, registry: RegistryServer) -> Root:
    stage(tmp_path / "plan-job")
    root = tmp_path / "plan-job" / "root"
    root.mkdir()
    (root / "main.tf").write_text(MAIN_TF)
    variables = {"tfbake_command": tfbake_command(), "image": f"{registry.host}/web:1.0"}
    (root / "terraform.tfvars.json").write_text(json.dumps(variables))
    return Root(root, terraform_bin)


def _copy_job(plan_job: Root, destination: Path, terraform_bin: str) -> Root:
    # A CI artifact of the whole working directory: plan file, .terraform and the lock file.
    shutil.copytree(plan_job.directory.parent, destination, symlinks=True)
    return Root(destination / "root", terraform_bin)


def _plan(root: Root) -> Any:
    run = root.command("plan", "-input=false", "-no-color", "-out=tfplan")
    return run.check()


def _launch_template_image(aws: AwsContext) -> str:
    versions = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateName=LAUNCH_TEMPLATE, Versions=["$Latest"]
    )
    return versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"]


def _writes(sandbox: Sandbox) -> list[str]:
    return [action for action in sandbox.log.actions() if action in WRITES]


def test_an_atlantis_shaped_run_plans_bakes_once_and_recovers(
    plan_job: Root,
    sandbox: Sandbox,
    aws: AwsContext,
    registry: RegistryServer,
    terraform_bin: str,
    tmp_path: Path,
) -> None:
    first = push_busybox_image(registry, "web", "1.0", files={"v": b"1\n"})
    plan_job.init().check()

    # The plan bakes nothing, writes nothing, and shows the bake to come.
    sandbox.log.clear()
    plan = _plan(plan_job)
    assert _writes(sandbox) == []
    assert "module.web_ami.terraform_data.bake will be created" in plan.stdout, plan.stdout
    assert first.digest in plan.stdout

    # The apply of that plan file, from a copy of the directory: one bake, the template rolled.
    apply_job = _copy_job(plan_job, tmp_path / "apply-job", terraform_bin)
    sandbox.log.clear()
    applied = apply_job.command("apply", "-input=false", "-no-color", "tfplan").check()
    assert sandbox.log.count(STARTS) == 1
    assert "(local-exec):" in applied.stdout  # the bake's progress reaches the apply's output
    ami_id = apply_job.outputs()["ami_id"]
    assert ami_id.startswith("ami-")
    assert _launch_template_image(aws) == ami_id

    # A clean re-plan: no change, no write, one lookup.
    sandbox.log.clear()
    replan = apply_job.command("plan", "-input=false", "-no-color", "-detailed-exitcode")
    assert replan.code == 0, replan.stdout + replan.stderr
    assert _writes(sandbox) == []

    # A moved tag is a planned bake, and its apply rolls the launch template.
    moved = push_busybox_image(registry, "web", "1.0", files={"v": b"2\n"})
    sandbox.log.clear()
    plan = _plan(apply_job)
    assert _writes(sandbox) == []
    assert "module.web_ami.terraform_data.bake must be replaced" in plan.stdout, plan.stdout
    assert moved.digest in plan.stdout
    apply_job.command("apply", "-input=false", "-no-color", "tfplan").check()
    assert sandbox.log.count(STARTS) == 1
    rolled = apply_job.outputs()["ami_id"]
    assert rolled != ami_id
    assert _launch_template_image(aws) == rolled

    # A bake that fails at apply is planned again by the next plan, whose apply recovers.
    push_busybox_image(registry, "web", "1.0", files={"v": b"3\n"})
    _plan(apply_job)
    sandbox.inject_failure("RunRecipe", "tfbake: pull failed for the injected image")
    failed = apply_job.command("apply", "-input=false", "-no-color", "tfplan")
    assert failed.code != 0
    assert "failed at step RunRecipe" in " ".join(failed.stderr.split())
    assert _launch_template_image(aws) == rolled  # the failed bake reached no template
    sandbox.clear_faults()
    sandbox.log.clear()
    plan = _plan(apply_job)
    assert "module.web_ami.terraform_data.bake" in plan.stdout
    assert _writes(sandbox) == []
    apply_job.command("apply", "-input=false", "-no-color", "tfplan").check()
    recovered = apply_job.outputs()["ami_id"]
    assert recovered not in (ami_id, rolled)
    assert _launch_template_image(aws) == recovered


def test_an_ami_invalidated_between_plan_and_apply_reaches_no_launch_template(
    plan_job: Root, sandbox: Sandbox, aws: AwsContext, registry: RegistryServer
) -> None:
    push_busybox_image(registry, "web", "1.0", files={"v": b"invalidated\n"})
    plan_job.init().check()
    _plan(plan_job)
    plan_job.command("apply", "-input=false", "-no-color", "tfplan").check()
    ami_id = plan_job.outputs()["ami_id"]
    # A root that has not handed the AMI on yet: its plan finds the AMI, and would create the
    # bake resource and the launch template.
    for address in ("module.web_ami.terraform_data.bake", "aws_launch_template.web"):
        plan_job.command("state", "rm", address).check()
    aws.client("ec2").delete_launch_template(LaunchTemplateName=LAUNCH_TEMPLATE)
    plan = _plan(plan_job)
    assert ami_id in plan.stdout
    invalidated = run_tfbake("invalidate", ami_id, "--reason", "found bad after the plan")
    assert invalidated.code == 0, invalidated.stderr
    sandbox.log.clear()
    applied = plan_job.command("apply", "-input=false", "-no-color", "tfplan")
    assert applied.code == 1
    assert "is no longer ready" in " ".join(applied.stderr.split())
    assert sandbox.log.count(STARTS) == 0
    templates = aws.client("ec2").describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [LAUNCH_TEMPLATE]}]
    )["LaunchTemplates"]
    assert templates == []
    # The next plan shows the rebake.
    replan = _plan(plan_job)
    assert "module.web_ami.terraform_data.bake" in replan.stdout


def test_an_interrupted_apply_blocks_nothing(
    plan_job: Root, sandbox: Sandbox, aws: AwsContext, registry: RegistryServer
) -> None:
    push_busybox_image(registry, "web", "1.0", files={"v": b"interrupted\n"})
    plan_job.init().check()
    _plan(plan_job)
    sandbox.delay_step("RunRecipe", 8)
    sandbox.log.clear()
    apply = subprocess.Popen(
        [plan_job.tf.terraform_bin_path, "apply", "-input=false", "-no-color", "tfplan"],
        cwd=plan_job.directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert apply.stdout is not None
    seen = []
    for line in apply.stdout:
        seen.append(line)
        if "(local-exec): baking" in line:
            apply.send_signal(signal.SIGINT)  # Ctrl-C, while the bake runs in AWS
            break
    rest, _ = apply.communicate(timeout=120)
    assert apply.returncode != 0, "".join(seen) + rest
    # The bake goes on in AWS; the next plan plans the bake resource again, and its apply
    # attaches to that bake instead of starting a second one.
    plan = _plan(plan_job)
    assert "module.web_ami.terraform_data.bake" in plan.stdout
    plan_job.command("apply", "-input=false", "-no-color", "tfplan").check()
    assert sandbox.log.count(STARTS) == 1
    assert _launch_template_image(aws) == plan_job.outputs()["ami_id"]
