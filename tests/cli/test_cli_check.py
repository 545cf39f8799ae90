"""`tfbake check`: a spec or a whole Terraform directory, found or missing, with exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.amis import seed_ami
from tests.support.cli import assert_one_line_error, run_tfbake
from tests.support.specs import BASE_AMI, NGINX, REDIS, spec_data, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.model.errors import ExitCode
from tfbake.pipeline import plan_image_set
from tfbake.sandbox import Sandbox
from tfbake.spec.mapping import image_set_from_mapping


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def fingerprint_of(**changes: Any) -> str:
    return plan_image_set(
        image_set_from_mapping(spec_data(**changes)), AwsContext()
    ).fingerprint.value


def test_found_prints_the_ami_id(tmp_path: Path, ec2: Any) -> None:
    ami = seed_ami(ec2, fingerprint_of())
    result = run_tfbake("check", str(write_spec(tmp_path)))
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == ami


def test_missing_exits_3_with_a_table(tmp_path: Path, sandbox: Sandbox) -> None:
    result = run_tfbake("check", str(write_spec(tmp_path)))
    assert result.code == ExitCode.AMI_MISSING
    header, row = result.stdout.strip().splitlines()
    assert header.split() == ["NAME", "STATUS", "AMI", "FINGERPRINT", "REGION"]
    assert row.split()[:3] == ["web", "missing", "-"]


def test_json_schema(tmp_path: Path, ec2: Any) -> None:
    ami = seed_ami(ec2, fingerprint_of())
    result = run_tfbake("--json", "check", str(write_spec(tmp_path)))
    data = json.loads(result.stdout)
    assert data["schema"] == "tfbake.result/1"
    assert (data["status"], data["ami_id"], data["name"]) == ("found", ami, "web")
    assert data["fingerprint"] == fingerprint_of()


def test_options_work_after_the_command(tmp_path: Path, sandbox: Sandbox) -> None:
    result = run_tfbake("check", str(write_spec(tmp_path)), "--json", "--region", "eu-west-1")
    assert result.code == ExitCode.AMI_MISSING
    assert json.loads(result.stdout)["region"] == "eu-west-1"


def test_needs_spec_or_terraform() -> None:
    assert_one_line_error(run_tfbake("check"), ExitCode.BAD_INPUT, "either SPEC or --terraform")


@pytest.mark.parametrize(
    "options",
    [["--var", "x=1"], ["--var-file", "x.tfvars"], ["--recursive"], ["--allow-empty"]],
    ids=["var", "var-file", "recursive", "allow-empty"],
)
def test_terraform_options_without_terraform_are_usage_errors(
    tmp_path: Path, options: list[str]
) -> None:
    result = run_tfbake("check", str(write_spec(tmp_path)), *options)
    assert_one_line_error(result, ExitCode.BAD_INPUT, f"{options[0]} applies only with "
                          "--terraform DIR", "see `tfbake check --help`")  # fmt: skip


def write_terraform(directory: Path, web_images: str = "var.web_images") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.tf").write_text(
        f"""
variable "web_images" {{
  type    = list(string)
  default = ["{NGINX}"]
}}

module "web" {{
  source       = "../modules/baked-ami"
  name         = "web"
  images       = {web_images}
  base_ami     = "{BASE_AMI}"
  architecture = "x86_64"
}}

module "api" {{
  source       = "git::https://example.com/tfbake.git//modules/baked-ami?ref=v1"
  name         = "api"
  images       = local.api_images
  base_ami     = "{BASE_AMI}"
}}

module "vpc" {{
  source = "terraform-aws-modules/vpc/aws"
}}
"""
    )
    return directory


def test_terraform_directory(tmp_path: Path, ec2: Any) -> None:
    directory = write_terraform(tmp_path / "infra")
    ami = seed_ami(ec2, fingerprint_of(images=[NGINX]))
    result = run_tfbake("check", "--terraform", str(directory))
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["MODULE", "STATUS", "AMI"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.startswith("module.")}
    assert rows["module.web"][1:3] == ["found", ami]
    assert rows["module.api"][1] == "unchecked"
    assert "module.vpc" not in rows
    assert "module.api: unresolved: images = ${local.api_images} (references local.api_images)" in (
        result.stdout
    )
    assert result.code == ExitCode.BAD_INPUT


def test_terraform_directory_missing_wins(tmp_path: Path, sandbox: Sandbox) -> None:
    directory = write_terraform(tmp_path / "infra")
    (directory / "terraform.tfvars").write_text(f'web_images = ["{REDIS}"]\n')
    result = run_tfbake("--json", "check", "--terraform", str(directory))
    reports = {report["address"]: report for report in json.loads(result.stdout)}
    assert reports["module.web"]["status"] == "missing"
    assert reports["module.web"]["result"]["images"] == [
        "docker.io/library/redis:7@sha256:" + "b" * 64
    ]
    assert result.code == ExitCode.AMI_MISSING


def test_terraform_all_found_exits_0(tmp_path: Path, ec2: Any) -> None:
    directory = write_terraform(tmp_path / "infra", web_images=f'["{REDIS}"]')
    (directory / "main.tf").write_text((directory / "main.tf").read_text().split('module "api"')[0])
    seed_ami(ec2, fingerprint_of(images=[REDIS]))
    result = run_tfbake("check", "--terraform", str(directory))
    assert result.code == 0, result.stdout + result.stderr


def test_terraform_parse_error_is_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "main.tf").write_text('module "web" {\n  source = \n')
    result = run_tfbake("check", "--terraform", str(directory))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "main.tf")


def test_terraform_unresolved_non_inputs_do_not_block(tmp_path: Path, ec2: Any) -> None:
    directory = tmp_path / "infra"
    directory.mkdir()
    (directory / "main.tf").write_text(
        f"""
module "web" {{
  source       = "./modules/baked-ami"
  name         = "web"
  images       = ["{NGINX}"]
  base_ami     = "{BASE_AMI}"
  architecture = "x86_64"
  builder      = module.bake_infra.builder
  tags         = local.common_tags
}}
"""
    )
    ami = seed_ami(ec2, fingerprint_of(images=[NGINX]))
    result = run_tfbake("--json", "check", "--terraform", str(directory))
    (report,) = json.loads(result.stdout)
    assert (report["status"], report["result"]["ami_id"]) == ("found", ami)
    assert len(report["unresolved"]) == 2
    assert result.code == 0


def test_a_malformed_region_is_bad_input(tmp_path: Path, sandbox: Sandbox) -> None:
    result = run_tfbake("check", str(write_spec(tmp_path)), "--region", "us-east-1;id")
    assert_one_line_error(result, ExitCode.BAD_INPUT, "'us-east-1;id' is not an AWS region")


def test_no_region_anywhere_is_bad_input(tmp_path: Path, sandbox: Sandbox) -> None:
    env = {
        "AWS_REGION": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_PROFILE": None,
    }
    result = run_tfbake("check", str(write_spec(tmp_path)), env=env)
    assert_one_line_error(
        result,
        ExitCode.BAD_INPUT,
        "no AWS region: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION)",
    )


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_either_region_variable_gives_the_region(
    tmp_path: Path, sandbox: Sandbox, variable: str
) -> None:
    env = {
        "AWS_REGION": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_PROFILE": None,
        variable: "eu-west-3",
    }
    result = run_tfbake("check", str(write_spec(tmp_path)), "--json", env=env)
    assert result.code == ExitCode.AMI_MISSING, result.stderr
    assert json.loads(result.stdout)["region"] == "eu-west-3"


def test_terraform_directory_without_module_calls_is_bad_input(tmp_path: Path) -> None:
    directory = tmp_path / "wrong"
    directory.mkdir()
    (directory / "main.tf").write_text('variable "x" {}\n')
    result = run_tfbake("check", "--terraform", str(directory))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "no tfbake module calls found",
                          "--recursive", "--allow-empty")  # fmt: skip
    allowed = run_tfbake("check", "--terraform", str(directory), "--allow-empty")
    assert allowed.code == 0, allowed.stderr
    assert "checked 0 module call(s) in 1 root(s)" in allowed.stderr


def test_terraform_recursive_checks_every_root_below(tmp_path: Path, ec2: Any) -> None:
    infra = tmp_path / "infra"
    write_terraform(infra / "live" / "web", web_images=f'["{REDIS}"]')
    (infra / "live" / "web" / "main.tf").write_text(
        (infra / "live" / "web" / "main.tf").read_text().split('module "api"')[0]
    )
    write_terraform(infra / "live" / "api", web_images=f'["{NGINX}"]')
    (infra / "live" / "api" / "main.tf").write_text(
        (infra / "live" / "api" / "main.tf").read_text().split('module "api"')[0]
    )
    (infra / ".terraform" / "modules" / "x").mkdir(parents=True)
    (infra / ".terraform" / "modules" / "x" / "main.tf").write_text(
        (infra / "live" / "api" / "main.tf").read_text()
    )
    seed_ami(ec2, fingerprint_of(images=[REDIS]))
    seed_ami(ec2, fingerprint_of(images=[NGINX]))
    alone = run_tfbake("check", "--terraform", str(infra))
    assert alone.code == ExitCode.BAD_INPUT  # no calls in infra itself
    result = run_tfbake("check", "--terraform", str(infra), "--recursive", "--var", "unused=1")
    assert result.code == 0, result.stdout + result.stderr
    locations = [line.split()[-1] for line in result.stdout.splitlines()[1:]]
    assert [Path(location).parent.name for location in locations] == ["api", "web"]
    assert "checked 2 module call(s) in 3 root(s)" in result.stderr


def test_an_undeclared_var_is_named_as_the_option_was_given(tmp_path: Path) -> None:
    directory = write_terraform(tmp_path / "infra")
    result = run_tfbake("check", "--terraform", str(directory), "--var", "nope=1")
    assert_one_line_error(result, ExitCode.BAD_INPUT, '--var nope: no variable "nope"')
