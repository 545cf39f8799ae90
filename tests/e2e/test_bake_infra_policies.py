"""modules/bake-infra's IAM, read from the JSON Terraform renders: each dangerous grant's reach.

One apply of the module alone in the sandbox; the policies are then read from `terraform show
-json`, exactly as Terraform rendered them, statement by statement.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakes import BASE
from tests.support.cli import external, run_tfbake
from tests.support.specs import query, write_spec
from tests.support.terraform import Root, stage
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

ROOT = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

module "bake_infra" {
  source = "../modules/bake-infra"

  name                               = "policies"
  registry_credentials_parameter_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/team/auths"
  ecr_repository_arns                = ["arn:aws:ecr:us-east-1:123456789012:repository/team/web"]
  recipe_log_group_name              = "/tfbake/recipe-output"
  extra_egress = [
    { description = "Team registry", port = 5000, cidr_blocks = ["10.0.0.0/8"] },
  ]
}
"""
RECIPE_STREAMS = "arn:aws:logs:us-east-1:123456789012:log-group:/tfbake/recipe-output:*"


@pytest.fixture(scope="module")
def resources(
    sandbox_server: Sandbox, terraform_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """The module's resources and data sources as `terraform show -json` gives them."""
    sandbox_server.reset()
    tree = tmp_path_factory.mktemp("bake-infra")
    stage(tree)
    root_dir = tree / "root"
    root_dir.mkdir()
    (root_dir / "main.tf").write_text(ROOT)
    root = Root(root_dir, terraform_bin)
    root.init().check()
    root.apply().check()
    shown = subprocess.run(
        [terraform_bin, "show", "-json"], cwd=root_dir, capture_output=True, text=True, check=True
    )
    (module,) = json.loads(shown.stdout)["values"]["root_module"]["child_modules"]
    return module["resources"]


@pytest.fixture(scope="module")
def policies(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each policy document of the module by its name, as a list of statements."""
    return {
        resource["name"]: _statements(resource["values"]["json"])
        for resource in resources
        if resource["type"] == "aws_iam_policy_document"
    }


def test_builders_take_no_inbound_traffic_and_reach_out_on_named_ports_only(
    resources: list[dict[str, Any]],
) -> None:
    (group,) = [r["values"] for r in resources if r["type"] == "aws_security_group"]
    assert group["ingress"] == []
    egress = sorted(
        (r["protocol"], r["from_port"], r["to_port"], *r["cidr_blocks"]) for r in group["egress"]
    )
    assert egress == [
        ("tcp", 80, 80, "0.0.0.0/0"),
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("tcp", 5000, 5000, "10.0.0.0/8"),
    ]


def _statements(document: str) -> list[dict[str, Any]]:
    statements = json.loads(document)["Statement"]
    for statement in statements:
        for key in ("Action", "Resource"):
            if isinstance(statement.get(key), str):
                statement[key] = [statement[key]]
        # IAM accepts a single value or a list; compare lists only.
        for tests in statement.get("Condition", {}).values():
            for variable, values in tests.items():
                tests[variable] = sorted([values] if isinstance(values, str) else values)
    return statements


def granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Effect", "Allow") == "Allow" and action in s["Action"]]


def conditions(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return statement.get("Condition", {})


def test_create_tags_reaches_only_this_bakes_pending_images(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    grants = granting(policies["automation"], "ec2:CreateTags")
    assert grants
    for statement in grants:
        condition = conditions(statement)
        on_creation = condition.get("StringEquals", {}).get("ec2:CreateAction")
        pending = condition.get("StringEquals", {}).get("aws:ResourceTag/tfbake:status")
        assert on_creation in (["RunInstances"], ["CreateImage"]) or (
            pending == ["pending"]
            and condition["Null"]["aws:ResourceTag/tfbake:execution-id"] == ["false"]
        ), statement
    images = [s for s in grants if any(":image/" in r for r in s["Resource"])]
    assert {tuple(conditions(s)["StringEquals"]) for s in images} == {
        ("ec2:CreateAction",),
        ("aws:ResourceTag/tfbake:status",),
    }


def test_the_caller_may_write_only_the_last_returned_tag(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    (statement,) = granting(policies["caller"], "ec2:CreateTags")
    assert statement["Resource"] == ["arn:aws:ec2:*::image/*"]
    assert conditions(statement) == {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["tfbake:last-returned"]}
    }


def test_create_image_must_tag_the_image_pending(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    for statement in granting(policies["automation"], "ec2:CreateImage"):
        tagged = conditions(statement)["StringEquals"]
        assert tagged in ({"aws:RequestTag/tfbake:status": ["pending"]},
                          {"aws:ResourceTag/tfbake:role": ["builder"]}), statement  # fmt: skip


@pytest.mark.parametrize(
    ("action", "statuses"),
    [("ec2:DeregisterImage", ["failed", "pending"]), ("ec2:DeleteSnapshot", ["pending"])],
)
def test_deletion_reaches_only_unfinished_bakes(
    policies: dict[str, list[dict[str, Any]]], action: str, statuses: Any
) -> None:
    (statement,) = granting(policies["automation"], action)
    assert conditions(statement)["StringEquals"] == {"aws:ResourceTag/tfbake:status": statuses}
    assert conditions(statement)["Null"] == {"aws:ResourceTag/tfbake:execution-id": ["false"]}


def test_terminate_reaches_only_builders(policies: dict[str, list[dict[str, Any]]]) -> None:
    grants = [
        *granting(policies["automation"], "ec2:TerminateInstances"),
        *granting(policies["caller"], "ec2:TerminateInstances"),
    ]
    assert len(grants) == 2
    for statement in grants:
        assert statement["Resource"] == ["arn:aws:ec2:*:123456789012:instance/*"]
        assert conditions(statement)["StringEquals"] == {"aws:ResourceTag/tfbake:role": ["builder"]}


@pytest.mark.parametrize(
    ("policy", "service"), [("automation", "ec2.amazonaws.com"), ("caller", "ssm.amazonaws.com")]
)
def test_pass_role_passes_one_role_to_one_service(
    policies: dict[str, list[dict[str, Any]]], policy: str, service: str
) -> None:
    (statement,) = granting(policies[policy], "iam:PassRole")
    (role,) = statement["Resource"]
    assert role.startswith("arn:aws:iam::123456789012:role/policies-")
    assert conditions(statement)["StringEquals"] == {"iam:PassedToService": [service]}


def test_send_command_sends_only_the_recipe_only_to_builders(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    grants = granting(policies["automation"], "ssm:SendCommand")
    resources = sorted(r for s in grants for r in s["Resource"])
    assert resources == [
        "arn:aws:ec2:*:123456789012:instance/*",
        "arn:aws:ssm:*:123456789012:document/tfbake-recipe-*",
    ]
    (to_instances,) = [s for s in grants if ":instance/" in s["Resource"][0]]
    assert conditions(to_instances)["StringEquals"] == {"ssm:resourceTag/tfbake:role": ["builder"]}


def test_only_the_caller_policy_creates_tfbake_documents(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    others = [name for name, statements in policies.items() if name != "caller"]
    assert all(
        not granting(policies[name], action)
        for name in others
        for action in ("ssm:CreateDocument", "ssm:UpdateDocument", "ssm:DeleteDocument", "ssm:*")
    )
    (statement,) = granting(policies["caller"], "ssm:CreateDocument")
    assert sorted(statement["Resource"]) == [
        "arn:aws:ssm:*:123456789012:document/tfbake-bake-*",
        "arn:aws:ssm:*:123456789012:document/tfbake-recipe-*",
    ]
    assert not granting(policies["caller"], "ssm:UpdateDocument")


def test_the_builder_reads_one_parameter_and_the_image_sets_repositories(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    builder = [*policies["builder"], *policies["registry_credentials"]]
    reads = [s for s in builder for a in s["Action"] if a.startswith("ssm:Get")]
    assert [s["Resource"] for s in reads] == [
        ["arn:aws:ssm:us-east-1:123456789012:parameter/team/auths"]
    ]
    (pull,) = granting(builder, "ecr:BatchGetImage")
    assert pull["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/team/web"]
    (agent,) = granting(builder, "ssm:UpdateInstanceInformation")
    assert sorted(agent["Action"]) == [
        "ec2messages:*",
        "ssm:UpdateInstanceInformation",
        "ssmmessages:*",
    ]


def test_the_builder_role_has_no_managed_policy(
    policies: dict[str, list[dict[str, Any]]], sandbox_server: Sandbox
) -> None:
    import boto3

    iam = boto3.client("iam", endpoint_url=sandbox_server.url, region_name="us-east-1")
    (role,) = [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("policies-builder")]
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert attached == []


def test_the_caller_reads_public_base_ami_parameters_and_its_own_only(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    reads = sorted(
        r for s in granting(policies["caller"], "ssm:GetParameter") for r in s["Resource"]
    )
    assert reads == [
        "arn:aws:ssm:*:123456789012:parameter/tfbake/locks/*",
        "arn:aws:ssm:*:123456789012:parameter/tfbake/manifests/*",
        "arn:aws:ssm:*::parameter/aws/service/*",
    ]


def test_the_caller_policy_grants_every_call_of_ensure_and_external(
    policies: dict[str, list[dict[str, Any]]], sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.log.clear()  # the fixture's own set-up calls
    spec = write_spec(tmp_path, base_ami=BASE)
    baked = run_tfbake("ensure", str(spec))
    assert baked.code == 0, baked.stderr
    assert run_tfbake("ensure", str(spec)).code == 0
    assert external(query(base_ami=BASE, on_missing="fail")).code == 0
    sandbox.inject_failure("RunRecipe", "tfbake: pull failed")
    failed = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE, salt="fails")))
    assert failed.code == ExitCode.BAKE_FAILED, failed.stderr
    called = {f"{call.service}:{call.action}" for call in sandbox.log.calls}
    # Every principal may ask who it is; IAM grants nothing for it.
    called.discard("sts:GetCallerIdentity")
    assert {"ssm:StartAutomationExecution", "ssm:GetCommandInvocation"} <= called
    granted = [
        action
        for statement in policies["caller"]
        if statement.get("Effect", "Allow") == "Allow"
        for action in statement["Action"]
    ]
    missing = sorted(a for a in called if not any(fnmatch.fnmatchcase(a, g) for g in granted))
    assert missing == []


@pytest.mark.parametrize("action", ["logs:CreateLogStream", "logs:PutLogEvents"])
def test_the_builder_writes_only_the_recipe_log_group(
    policies: dict[str, list[dict[str, Any]]], action: str
) -> None:
    (statement,) = granting(policies["recipe_logs"], action)
    assert statement["Resource"] == [RECIPE_STREAMS]
    assert not [s for s in policies["recipe_logs"] if "logs:CreateLogGroup" in s["Action"]]


def test_the_caller_reads_only_the_recipe_log_group(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    (statement,) = granting(policies["caller"], "logs:GetLogEvents")
    assert statement["Resource"] == [RECIPE_STREAMS]
    assert not [s for s in policies["caller"] if any(a.startswith("logs:Put") for a in s["Action"])]
