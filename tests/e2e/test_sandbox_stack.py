"""examples/sandbox through real Terraform: one stack's life, from the first apply to destroy.

The tests share one root and one sandbox account (module scope) and run in file order, as a
user's applies do: first apply, re-plan, an apply kept from baking by TFBAKE_ON_MISSING, a
changed salt, destroy. Each asserts one behaviour; each re-plans or applies with the stack's
current inputs, so any one of them also runs alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.terraform import Root, Run, tfbake_command
from tfbake.sandbox import Sandbox

STARTS = "StartAutomationExecution"


@dataclass
class Stack:
    root: Root
    sandbox: Sandbox
    variables: dict[str, Any]
    applies: list[tuple[Run, dict[str, Any], int]] = field(default_factory=list)

    def apply(self, **changes: Any) -> tuple[Run, dict[str, Any], int]:
        """Apply with `changes` to the inputs; returns the run, the outputs and bakes started."""
        self.variables.update(changes)
        self.sandbox.log.clear()
        run = self.root.apply(self.variables).check()
        applied = (run, self.root.outputs(), self.sandbox.log.count(STARTS))
        self.applies.append(applied)
        return applied

    def client(self, service: str) -> Any:
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        return boto3.client(
            service, endpoint_url=self.sandbox.url, region_name=self.sandbox.region, config=config
        )


@pytest.fixture(scope="module")
def stack(
    sandbox_server: Sandbox,
    copy_sandbox_root: Callable[[Path], Root],
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    sandbox_server.reset()  # a fresh account, with the managed policies bake-infra attaches
    root = copy_sandbox_root(tmp_path_factory.mktemp("stack") / "tree")
    return Stack(root, sandbox_server, {"tfbake_command": tfbake_command(), "salt": "1"})


@pytest.fixture(scope="module")
def first_apply(stack: Stack) -> tuple[Run, dict[str, Any], int]:
    return stack.applies[0] if stack.applies else stack.apply()


def latest_template_version(stack: Stack, template_id: str) -> dict[str, Any]:
    versions = stack.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return versions[0]


def test_first_apply_bakes_and_launches_the_group_from_the_baked_ami(
    stack: Stack, first_apply: tuple[Run, dict[str, Any], int]
) -> None:
    _, outputs, bakes = first_apply
    assert bakes == 1
    ec2 = stack.client("ec2")
    image = ec2.describe_images(ImageIds=[outputs["ami_id"]])["Images"][0]
    tags = {tag["Key"]: tag["Value"] for tag in image["Tags"]}
    assert tags["tfbake:status"] == "ready"
    assert tags["tfbake:fingerprint"] == outputs["fingerprint"]
    version = latest_template_version(stack, outputs["launch_template_id"])
    assert version["LaunchTemplateData"]["ImageId"] == outputs["ami_id"]
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    group = stack.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["autoscaling_group_name"]]
    )["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["LaunchTemplateId"] == outputs["launch_template_id"]
    instance_ids = [instance["InstanceId"] for instance in group["Instances"]]
    assert instance_ids
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    assert {i["ImageId"] for r in reservations for i in r["Instances"]} == {outputs["ami_id"]}


def test_replan_shows_no_changes_and_starts_no_bake(
    stack: Stack, first_apply: tuple[Run, dict[str, Any], int]
) -> None:
    stack.sandbox.log.clear()
    plan = stack.root.plan(stack.variables)
    assert plan.code == 0, plan.stdout + plan.stderr  # -detailed-exitcode: 2 means changes
    assert "No changes." in plan.stdout
    assert stack.sandbox.log.count(STARTS) == 0
    assert stack.sandbox.log.count("DescribeImages") >= 1  # tfbake looked the AMI up


def test_tfbake_on_missing_fail_keeps_an_apply_from_baking(
    stack: Stack, first_apply: tuple[Run, dict[str, Any], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFBAKE_ON_MISSING", "fail")
    variables = {**stack.variables, "salt": "not-baked-yet"}
    stack.sandbox.log.clear()
    plan = stack.root.plan(variables)
    assert plan.code == 2, plan.stdout + plan.stderr  # the bake to come, planned
    applied = stack.root.apply(variables)
    assert applied.code == 1
    # Terraform wraps the detail to its width; tfbake wrote one line, then exited 3 (missing).
    detail = " ".join(applied.stderr.split())
    assert re.search(r"tfbake: error: no ready AMI for image set 'sandbox-web'", detail), detail
    assert "on_missing is fail" in detail
    assert stack.sandbox.log.count(STARTS) == 0


def test_changed_salt_bakes_once_and_rolls_the_launch_template(
    stack: Stack, first_apply: tuple[Run, dict[str, Any], int]
) -> None:
    before = stack.root.outputs()
    run, after, bakes = stack.apply(salt=stack.variables["salt"] + "-changed")
    assert bakes == 1
    assert after["fingerprint"] != before["fingerprint"]
    assert after["ami_id"] != before["ami_id"]
    assert after["launch_template_id"] == before["launch_template_id"]
    assert after["launch_template_version"] == before["launch_template_version"] + 1
    version = latest_template_version(stack, after["launch_template_id"])
    assert version["LaunchTemplateData"]["ImageId"] == after["ami_id"]
    group = stack.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[after["autoscaling_group_name"]]
    )["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == str(after["launch_template_version"])
    assert "2 changed" in run.stdout  # the launch template and the group, nothing replaced


def test_destroy_leaves_no_builder_instance(
    stack: Stack, first_apply: tuple[Run, dict[str, Any], int]
) -> None:
    stack.root.destroy(stack.variables).check()
    reservations = stack.client("ec2").describe_instances(
        Filters=[{"Name": "tag:tfbake:role", "Values": ["builder"]}]
    )["Reservations"]
    builders = [i for r in reservations for i in r["Instances"]]
    assert builders, "the bakes should have launched builders"
    assert {b["State"]["Name"] for b in builders} == {"terminated"}
    groups = stack.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert groups == []
