"""Each workflow guide of docs/pipelines.md, run as written against the sandbox.

The commands come from the page itself: the shell blocks run line by line, and the GitHub Actions
workflow runs job by job, its artifacts carried from the plan job to a fresh checkout of the
apply job. Each guide must bake once at apply, none at plan, roll the launch template onto the
AMI, and leave a root whose next plan is clean.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.support.images import push_busybox_image
from tests.support.registry import RegistryServer
from tests.support.terraform import REPO_ROOT, SANDBOX_AWS_PROVIDER, Root, stage
from tfbake.aws.calls import AwsContext
from tfbake.sandbox import Sandbox

GUIDE = REPO_ROOT / "docs" / "pipelines.md"
STARTS = "StartAutomationExecution"
MARKED_BLOCK = re.compile(r"<!-- tested: ([a-z-]+) -->\n```(sh|yaml)\n(.*?)```", re.DOTALL)
MAIN_TF = (
    SANDBOX_AWS_PROVIDER
    + """
variable "image" {
  type = string
}

module "web_ami" {
  source = "./modules/baked-ami"

  name     = "pipeline-web"
  images   = [var.image]
  base_ami = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  builder  = { instance_profile = "tfbake-builder" }
}

resource "aws_launch_template" "web" {
  name                   = "pipeline-web"
  image_id               = module.web_ami.ami_id
  update_default_version = true
}

output "ami_id" {
  value = module.web_ami.ami_id
}
"""
)


@dataclass
class Job:
    """One job of a guide: commands run in one directory, and what it hands to the next."""

    commands: list[str] = field(default_factory=list)
    fresh_checkout: bool = False  # the job starts from the repository, not the last job's tree
    artifacts: list[str] = field(default_factory=list)  # files it uploads for the next job


def guides() -> dict[str, list[Job]]:
    found = {
        name: _jobs(kind, text) for name, kind, text in MARKED_BLOCK.findall(GUIDE.read_text())
    }
    assert set(found) == {"plain-cli", "atlantis", "github-actions", "hcp-terraform"}, found
    return found


def _jobs(kind: str, text: str) -> list[Job]:
    if kind == "yaml":
        return _workflow_jobs(yaml.safe_load(text))
    jobs = [Job()]
    for line in text.splitlines():
        if line.startswith("# apply stage"):
            # A stage of its own: the configuration, with the plan and lock files.
            jobs[-1].artifacts = ["tfplan", ".terraform.lock.hcl"]
            jobs.append(Job(fresh_checkout=True))
        elif line.strip() and not line.startswith("#"):
            jobs[-1].commands.append(line)
    return jobs


def _workflow_jobs(workflow: dict) -> list[Job]:
    jobs = []
    for definition in workflow["jobs"].values():
        job = Job(fresh_checkout=True)
        for step in definition["steps"]:
            uses = step.get("uses", "")
            if uses.startswith("actions/upload-artifact"):
                job.artifacts = step["with"]["path"].split()
            elif "run" in step and step.get("name") != "Install tfbake":
                # The tests run this checkout's tfbake, installed already.
                job.commands.append(step["run"])
        jobs.append(job)
    return jobs


@pytest.fixture
def repository(tmp_path: Path, registry: RegistryServer) -> Path:
    """What a checkout holds: the root and the modules it uses."""
    tree = tmp_path / "repository"
    stage(tree)
    (tree / "main.tf").write_text(MAIN_TF)
    (tree / "terraform.tfvars.json").write_text(json.dumps({"image": f"{registry.host}/web:1.0"}))
    return tree


def _run_jobs(jobs: list[Job], repository: Path, workspace: Path, terraform_bin: str) -> Root:
    directory = workspace / "job-0"
    shutil.copytree(repository, directory)
    handed: dict[str, bytes] = {}
    for number, job in enumerate(jobs):
        if job.fresh_checkout and number:
            directory = workspace / f"job-{number}"
            shutil.copytree(repository, directory)
        for name, content in handed.items():
            (directory / name).write_bytes(content)
        root = Root(directory, terraform_bin)
        for command in job.commands:
            run = root.shell(command, env={"PLANFILE": "tfplan.planfile"})
            assert run.code == 0, f"{command!r} exited {run.code}\n{run.stderr}\n{run.stdout}"
        handed = {name: (directory / name).read_bytes() for name in job.artifacts}
    return root


@pytest.mark.parametrize("guide", ["plain-cli", "atlantis", "github-actions", "hcp-terraform"])
def test_a_guide_bakes_at_apply_only_and_leaves_a_clean_plan(
    guide: str,
    repository: Path,
    registry: RegistryServer,
    sandbox: Sandbox,
    aws: AwsContext,
    terraform_bin: str,
    tmp_path: Path,
) -> None:
    jobs = guides()[guide]
    assert any("apply" in command for command in jobs[-1].commands)
    push_busybox_image(registry, "web", "1.0", files={"guide": guide.encode()})
    sandbox.log.clear()
    root = _run_jobs(jobs, repository, tmp_path / "workspace", terraform_bin)
    assert sandbox.log.count(STARTS) == 1
    ami_id = root.outputs()["ami_id"]
    template = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateName="pipeline-web", Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]
    assert template["LaunchTemplateData"]["ImageId"] == ami_id
    sandbox.log.clear()
    replan = root.command("plan", "-input=false", "-no-color", "-detailed-exitcode")
    assert replan.code == 0, replan.stdout + replan.stderr
    assert sandbox.log.count(STARTS) == 0
