"""modules/baked-ami with regions and sharing, through real Terraform against the sandbox.

A root of its own (the baked-ami module alone, no bake-infra or group), so that its applies
never touch the session's sandbox stack. The apply bakes once in the home region and copies
the AMI to eu-west-1; the plans fail at plan, before tfbake runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.terraform import Root, stage, tfbake_command
from tfbake.sandbox import Sandbox

ROOT = "regions-root"
COPY_REGION = "eu-west-1"
# The sandbox example's images: pinned by digest, so no registry is needed.
IMAGES = [
    "nginx:1.27@sha256:6784fb0834aa7dbbe12e3d7471e69c290df3e6ba810dc38b34ae33d3c1c05f7d",
    "redis:7.4@sha256:bbf7b8d3d6be53c5dbfbc6b2b1b9a6c4b63e82a0ac1d5e3ad1e1ae8d64d1c7b1",
]
MAIN_TF = """
terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    external = {
      source = "hashicorp/external"
    }
  }
}

provider "aws" {
  region = var.region

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variable "region" {
  type = string
}

variable "images" {
  type = list(string)
}

variable "tfbake_command" {
  type = list(string)
}

variable "regions" {
  type    = list(string)
  default = null
}

variable "share" {
  type    = any
  default = null
}

module "web_ami" {
  source = "../modules/baked-ami"

  name           = "regions-web"
  images         = var.images
  base_ami       = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  architecture   = "x86_64"
  regions        = var.regions
  share          = var.share
  builder        = { instance_profile = "tfbake-builder" }
  tfbake_command = var.tfbake_command
}

output "ami_id" {
  value = module.web_ami.ami_id
}

output "ami_ids" {
  value = module.web_ami.ami_ids
}

output "fingerprint" {
  value = module.web_ami.fingerprint
}
"""


@pytest.fixture(scope="module")
def regions_template(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The modules and the root staged and initialised once; tests work on copies of it."""
    tree = tmp_path_factory.mktemp("regions-template")
    stage(tree)
    (tree / ROOT).mkdir()
    (tree / ROOT / "main.tf").write_text(MAIN_TF)
    Root(tree / ROOT, terraform_bin).init().check()
    return tree


@pytest.fixture
def regions_root(regions_template: Path, terraform_bin: str, tmp_path: Path) -> Root:
    tree = tmp_path / "tree"
    # Symlinks stay links: .terraform/providers points into the session's mirror.
    shutil.copytree(regions_template, tree, symlinks=True)
    return Root(tree / ROOT, terraform_bin)


@pytest.fixture
def variables(sandbox: Sandbox) -> Callable[..., dict[str, Any]]:
    def build(**changes: Any) -> dict[str, Any]:
        base = {"region": sandbox.region, "images": IMAGES, "tfbake_command": tfbake_command()}
        return {**base, **changes}

    return build


def ec2(sandbox: Sandbox, region: str) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("ec2", endpoint_url=sandbox.url, region_name=region, config=config)


def test_regions_return_ami_ids_with_a_copy_that_exists_in_the_other_region(
    sandbox: Sandbox, regions_root: Root, variables: Callable[..., dict[str, Any]]
) -> None:
    regions_root.apply(variables(regions=[COPY_REGION])).check()
    outputs = regions_root.outputs()
    ami_ids = outputs["ami_ids"]
    assert sorted(ami_ids) == sorted([sandbox.region, COPY_REGION])
    assert ami_ids[sandbox.region] == outputs["ami_id"]
    assert ami_ids[COPY_REGION] != outputs["ami_id"]
    assert sandbox.log.count("StartAutomationExecution") == 1  # copied, not baked twice
    (copy,) = ec2(sandbox, COPY_REGION).describe_images(ImageIds=[ami_ids[COPY_REGION]])["Images"]
    assert copy["State"] == "available"
    tags = {tag["Key"]: tag["Value"] for tag in copy["Tags"]}
    assert tags["tfbake:status"] == "ready"
    assert tags["tfbake:fingerprint"] == outputs["fingerprint"]
    assert tags["tfbake:source-ami"] == outputs["ami_id"]
    assert tags["tfbake:source-region"] == sandbox.region


def test_an_account_id_that_is_not_12_digits_fails_at_plan_naming_the_variable(
    sandbox: Sandbox, regions_root: Root, variables: Callable[..., dict[str, Any]]
) -> None:
    plan = regions_root.plan(variables(share={"accounts": ["12345"]}))
    assert plan.code == 1
    assert "Invalid value for variable" in plan.stderr
    assert "var.share" in plan.stderr
    assert "share.accounts must be 12-digit account IDs" in " ".join(plan.stderr.split())
    assert sandbox.log.count("StartAutomationExecution") == 0


def test_a_share_of_an_ami_without_customer_managed_keys_fails_at_plan(
    sandbox: Sandbox, regions_root: Root, variables: Callable[..., dict[str, Any]]
) -> None:
    plan = regions_root.plan(variables(share={"accounts": ["222222222222"]}))
    assert plan.code == 1
    assert "Resource precondition failed" in plan.stderr
    detail = " ".join(plan.stderr.split())
    assert "AWS cannot share an AMI encrypted with the AWS-managed EBS key" in detail
    assert sandbox.log.count("DescribeImages") == 0  # tfbake never ran
    assert sandbox.log.count("StartAutomationExecution") == 0
