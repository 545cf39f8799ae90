"""gc across the estate: other accounts, other regions, recent lookups, and a changing account."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.lifecycle.test_gc import fp
from tests.support.amis import seed_ami
from tests.support.bakes import no_progress, plan_for
from tests.support.cli import run_tfbake
from tests.support.lifecycle import dated_ami, existing_amis, launch_template, set_created
from tfbake.aws.calls import AwsContext
from tfbake.ensure import ensure
from tfbake.lifecycle.collection import apply_gc, plan_gc
from tfbake.model import tags
from tfbake.sandbox import Sandbox

OTHER_REGION = "eu-west-1"


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def record_copy(ec2: Any, home: str, copy: str) -> None:
    """Tag `home` with its copy in OTHER_REGION, as ensure's distribution does."""
    ec2.create_tags(
        Resources=[home], Tags=[{"Key": tags.COPY_PREFIX + OTHER_REGION, "Value": copy}]
    )


def test_never_removes_an_ami_shared_with_another_account(ec2: Any) -> None:
    shared = dated_ami(ec2, fp(1), days_old=30)
    ec2.modify_image_attribute(
        ImageId=shared, LaunchPermission={"Add": [{"UserId": "210987654321"}]}
    )
    result = run_tfbake("gc", "--keep", "0", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [shared]) == {shared}
    assert "shared with other accounts" in result.stdout


def test_a_shared_ami_gc_would_remove_is_deprecated_ahead_instead(ec2: Any) -> None:
    shared = dated_ami(ec2, fp(1), days_old=30)
    ec2.modify_image_attribute(
        ImageId=shared, LaunchPermission={"Add": [{"UserId": "210987654321"}]}
    )

    dry = run_tfbake("--json", "gc", "--keep", "0", "--shared-grace", "10")
    (planned,) = json.loads(dry.stdout)["planned"]
    assert (planned["action"], planned["resource"]) == ("deprecate", shared)
    assert "DeprecationTime" not in ec2.describe_images(ImageIds=[shared])["Images"][0]

    result = run_tfbake("gc", "--keep", "0", "--shared-grace", "10", "--apply")

    assert result.code == 0, result.stderr
    (image,) = ec2.describe_images(ImageIds=[shared])["Images"]
    notice = datetime.fromisoformat(image["DeprecationTime"].replace("Z", "+00:00"))
    assert timedelta(days=9) < notice - datetime.now(timezone.utc) <= timedelta(days=10)
    assert f"deprecated {shared}" in result.stdout


def test_a_shared_ami_goes_once_its_notice_has_passed(ec2: Any) -> None:
    noticed, pending = dated_ami(ec2, fp(1), days_old=60), dated_ami(ec2, fp(2), days_old=60)
    for ami_id, days in ((noticed, -1), (pending, 5)):
        ec2.modify_image_attribute(
            ImageId=ami_id, LaunchPermission={"Add": [{"UserId": "210987654321"}]}
        )
        at = datetime.now(timezone.utc) + timedelta(days=days)
        ec2.enable_image_deprecation(ImageId=ami_id, DeprecateAt=at)

    result = run_tfbake("gc", "--keep", "0", "--apply")

    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [noticed, pending]) == {pending}
    assert "removable after" in result.stdout


def test_never_removes_an_ami_a_rollback_just_returned(aws: AwsContext, ec2: Any) -> None:
    plan = plan_for(aws)
    older = ensure(plan, aws, on_progress=no_progress).ami_id
    assert older is not None
    set_created(older, datetime.now(timezone.utc) - timedelta(days=30))
    newer = seed_ami(ec2, fp(2), name=plan.image_set.name)
    # Rolled back: the spec pins the older inputs again, and nothing launches from it yet.
    ec2.delete_tags(Resources=[older], Tags=[{"Key": tags.LAST_RETURNED}])
    assert ensure(plan, aws, on_progress=no_progress).ami_id == older

    result = run_tfbake("gc", "--keep", "1", "--apply")

    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [older, newer]) == {older, newer}
    assert "within the grace period of 14 day(s)" in result.stdout


def test_an_ami_whose_copy_is_in_use_in_its_region_stays(ec2: Any) -> None:
    remote = AwsContext(region=OTHER_REGION).client("ec2")
    home = dated_ami(ec2, fp(1), days_old=30)
    copy = seed_ami(remote, fp(1))
    ec2.create_tags(
        Resources=[home], Tags=[{"Key": tags.COPY_PREFIX + OTHER_REGION, "Value": copy}]
    )
    launch_template(remote, "web-lt", [copy], default_version=1)

    report = json.loads(run_tfbake("gc", "--json", "--keep", "0").stdout)

    (verdict,) = [ami for ami in report["amis"] if ami["ami_id"] == home]
    assert verdict["action"] == "keep"
    assert f"its copy {copy} in {OTHER_REGION} is in use" in verdict["reason"]


def test_removing_an_ami_removes_its_copies_in_their_regions(ec2: Any) -> None:
    remote = AwsContext(region=OTHER_REGION).client("ec2")
    home = dated_ami(ec2, fp(1), days_old=30, status=tags.STATUS_REVOKED)
    copy = seed_ami(remote, fp(1), status=tags.STATUS_REVOKED)
    ec2.create_tags(
        Resources=[home], Tags=[{"Key": tags.COPY_PREFIX + OTHER_REGION, "Value": copy}]
    )

    result = run_tfbake("gc", "--keep", "0", "--apply")

    assert result.code == 0, result.stderr
    assert f"deregistered copy {copy} of {home} in {OTHER_REGION}" in result.stdout
    assert existing_amis(ec2, [home]) == set()
    assert existing_amis(remote, [copy]) == set()


def test_usage_is_rescanned_just_before_each_deletion(aws: AwsContext, ec2: Any) -> None:
    old = dated_ami(ec2, fp(1), days_old=30, status=tags.STATUS_REVOKED)
    plan = plan_gc(aws, keep=0)
    assert [ami.ami_id for ami in plan.removals] == [old]
    # A deploy between the plan and its application starts using the AMI.
    launch_template(ec2, "deployed-meanwhile", [old], default_version=1)

    outcome = apply_gc(aws, plan)

    assert outcome.error is None
    assert [ami_id for ami_id, _ in outcome.kept] == [old]
    assert "launch-template deployed-meanwhile" in outcome.kept[0][1]
    assert existing_amis(ec2, [old]) == {old}
