"""`tfbake gc` against the sandbox: what it removes, what it never removes, and how it fails."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.support.cli import run_tfbake
from tests.support.lifecycle import (
    dated_ami,
    existing_amis,
    existing_snapshots,
    instance_from,
    launch_template,
    pin_snapshot_to,
    snapshots_of,
)
from tfbake.aws.calls import AwsContext
from tfbake.lifecycle.collection import plan_gc
from tfbake.model import tags
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox


def fp(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def gc_json(*args: str) -> dict[str, Any]:
    result = run_tfbake("gc", "--json", *args)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def verdicts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ami["ami_id"]: ami for ami in report["amis"]}


def test_never_removes_an_ami_of_an_old_launch_template_version(ec2: Any) -> None:
    old = dated_ami(ec2, fp(1), days_old=30)
    unused = dated_ami(ec2, fp(2), days_old=20)
    default = dated_ami(ec2, fp(3), days_old=10)
    latest = dated_ami(ec2, fp(4), days_old=1)
    # Version 1 is neither $Default (2) nor $Latest (3): only a scan of every version sees it.
    launch_template(ec2, "web-lt", [old, default, latest], default_version=2)
    result = run_tfbake("gc", "--keep", "1", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [old, unused, default, latest]) == {old, default, latest}
    assert f"deregistered {unused}" in result.stdout


def test_never_removes_an_ami_of_an_autoscaling_group_or_launch_configuration(ec2: Any) -> None:
    autoscaling = AwsContext().client("autoscaling")
    by_template = dated_ami(ec2, fp(1), days_old=30)
    by_configuration = dated_ami(ec2, fp(2), days_old=20)
    newest = dated_ami(ec2, fp(3), days_old=1)
    template = launch_template(ec2, "web-lt", [by_template, newest], default_version=2)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
    )  # fmt: skip
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="web-lc", ImageId=by_configuration, InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="legacy-asg", LaunchConfigurationName="web-lc",
        MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
    )  # fmt: skip

    report = verdicts(gc_json("--keep", "0"))
    assert report[by_template]["action"] == "keep"
    via_group = "autoscaling-group web-asg (launch template web-lt version 1)"
    assert via_group in report[by_template]["used_by"]
    assert report[by_configuration]["used_by"] == [
        "launch-configuration web-lc",
        "autoscaling-group legacy-asg (launch configuration web-lc)",
    ]
    assert via_group not in report[newest]["used_by"]

    result = run_tfbake("gc", "--keep", "0", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [by_template, by_configuration, newest]) == {
        by_template,
        by_configuration,
        newest,
    }


def test_asg_on_latest_resolves_to_the_latest_version(ec2: Any) -> None:
    first = dated_ami(ec2, fp(1), days_old=30)
    second = dated_ami(ec2, fp(2), days_old=20)
    template = launch_template(ec2, "web-lt", [first, second], default_version=1)
    AwsContext().client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
    )  # fmt: skip
    report = verdicts(gc_json("--keep", "0"))
    via_group = "autoscaling-group web-asg (launch template web-lt version 2)"
    assert via_group in report[second]["used_by"]
    assert not any("autoscaling-group" in use for use in report[first]["used_by"])


@pytest.mark.parametrize(("state", "kept"), [("running", True), ("stopped", True),
                                             ("terminated", False)])  # fmt: skip
def test_an_instance_keeps_its_ami_unless_terminated(ec2: Any, state: str, kept: bool) -> None:
    used = dated_ami(ec2, fp(1), days_old=30)
    newest = dated_ami(ec2, fp(2), days_old=1)
    instance = instance_from(ec2, used, state)
    report = verdicts(gc_json("--keep", "1"))
    assert report[used]["action"] == ("keep" if kept else "remove")
    if kept:
        assert report[used]["used_by"] == [f"instance {instance} ({state})"]
    result = run_tfbake("gc", "--keep", "1", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [used, newest]) == ({used, newest} if kept else {newest})


def test_deletes_the_snapshots_of_what_it_deregisters(ec2: Any) -> None:
    removed = [dated_ami(ec2, fp(n), days_old=30 - n) for n in range(3)]
    kept = dated_ami(ec2, fp(9), days_old=1)
    removed_snapshots = [snap for ami in removed for snap in snapshots_of(ec2, ami)]
    kept_snapshots = snapshots_of(ec2, kept)
    assert removed_snapshots and kept_snapshots
    result = run_tfbake("gc", "--keep", "1", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [*removed, kept]) == {kept}
    assert existing_snapshots(ec2, removed_snapshots + kept_snapshots) == set(kept_snapshots)
    for snapshot in removed_snapshots:
        assert f"deleted snapshot {snapshot}" in result.stdout


def test_keeps_the_newest_n_ready_amis_per_name(ec2: Any) -> None:
    web = [dated_ami(ec2, fp(n), days_old=10 * (n + 1), name="web") for n in range(3)]
    api = [dated_ami(ec2, fp(10 + n), days_old=10 * (n + 1), name="api") for n in range(3)]
    report = verdicts(gc_json("--keep", "2"))
    removed = {ami for ami, verdict in report.items() if verdict["action"] == "remove"}
    assert removed == {web[2], api[2]}  # the oldest of each name
    assert "one of the newest 2 ready AMI(s) of 'web'" in report[web[0]]["reason"]


def test_name_limits_gc_to_one_image_set(ec2: Any) -> None:
    web = [dated_ami(ec2, fp(n), days_old=10 * (n + 1), name="web") for n in range(2)]
    api = [dated_ami(ec2, fp(10 + n), days_old=10 * (n + 1), name="api") for n in range(2)]
    result = run_tfbake("gc", "--keep", "1", "--name", "web", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [*web, *api]) == {web[0], *api}


def test_respects_min_age(ec2: Any) -> None:
    old = dated_ami(ec2, fp(1), days_old=30)
    young = dated_ami(ec2, fp(2), days_old=3)
    newest = dated_ami(ec2, fp(3), days_old=1)
    report = verdicts(gc_json("--keep", "1", "--min-age", "7"))
    assert report[old]["action"] == "remove"
    assert report[young]["action"] == "keep"
    assert "younger than the minimum age of 7 day(s)" in report[young]["reason"]
    assert report[newest]["action"] == "keep"
    # Without --min-age the young one is just another old ready AMI.
    assert verdicts(gc_json("--keep", "1"))[young]["action"] == "remove"


def test_failed_and_revoked_go_regardless_of_keep_pending_never(ec2: Any) -> None:
    failed = dated_ami(ec2, fp(1), days_old=5, status=tags.STATUS_FAILED)
    revoked = dated_ami(ec2, fp(2), days_old=1, status=tags.STATUS_REVOKED)
    pending = dated_ami(ec2, fp(3), days_old=30, status=tags.STATUS_PENDING)
    ready = dated_ami(ec2, fp(4), days_old=10)
    report = verdicts(gc_json("--keep", "5"))
    assert {ami for ami, v in report.items() if v["action"] == "remove"} == {failed, revoked}
    assert report[pending]["reason"] == "pending: a bake may be in progress"
    result = run_tfbake("gc", "--keep", "0", "--apply")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, [failed, revoked, pending, ready]) == {pending}


def test_dry_run_changes_nothing_and_says_what_it_would_remove(ec2: Any) -> None:
    amis = [dated_ami(ec2, fp(n), days_old=10 + n) for n in range(3)]
    snapshots = [snap for ami in amis for snap in snapshots_of(ec2, ami)]
    result = run_tfbake("gc", "--keep", "0")
    assert result.code == 0, result.stderr
    assert existing_amis(ec2, amis) == set(amis)
    assert existing_snapshots(ec2, snapshots) == set(snapshots)
    for ami in amis:
        assert f"would deregister {ami}" in result.stdout
        for snapshot in snapshots_of(ec2, ami):
            assert f"would delete snapshot {snapshot} of {ami}" in result.stdout
    assert "dry run: would deregister 3 AMI(s)" in result.stdout


def test_follows_every_page_of_images(
    ec2: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    amis = [dated_ami(ec2, fp(n), days_old=n + 1) for n in range(5)]
    monkeypatch.setattr("tfbake.aws.catalog.PAGE_SIZE", 2)
    sandbox.log.clear()
    plan = plan_gc(AwsContext(), keep=1)
    assert sandbox.log.count("DescribeImages") == 3
    assert {v.ami.ami_id for v in plan.verdicts} == set(amis)
    assert [ami.ami_id for ami in plan.removals] == amis[1:]


def test_a_failure_midway_stops_and_reports_what_is_left(ec2: Any) -> None:
    kept = dated_ami(ec2, fp(0), days_old=1)
    newer, middle, oldest = (dated_ami(ec2, fp(n), days_old=10 * n) for n in (1, 2, 3))
    (newer_snapshot,) = snapshots_of(ec2, newer)
    (middle_snapshot,) = snapshots_of(ec2, middle)
    (oldest_snapshot,) = snapshots_of(ec2, oldest)
    # The middle AMI's snapshot also backs the kept AMI: EC2 refuses to delete it (InUse).
    pin_snapshot_to(middle_snapshot, kept)

    result = run_tfbake("gc", "--keep", "1", "--apply")
    assert result.code == ExitCode.AWS
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert f"gc stopped at `delete snapshot {middle_snapshot} of {middle}`" in error[0]
    assert "InvalidSnapshot.InUse" in error[0]
    assert "5 step(s) left undone" in error[0]

    assert f"deregistered {newer}" in result.stdout
    assert f"deleted snapshot {newer_snapshot} of {newer}" in result.stdout
    assert f"deregistered {middle}" in result.stdout
    assert f"left: delete snapshot {middle_snapshot} of {middle}" in result.stdout
    assert f"left: deregister {oldest}" in result.stdout
    assert f"left: delete snapshot {oldest_snapshot} of {oldest}" in result.stdout
    assert f"deleted the recorded inputs of fingerprint {fp(1)[:16]}" in result.stdout
    assert f"left: delete the recorded inputs of fingerprint {fp(3)[:16]}" in result.stdout
    # Done is done, the rest untouched: the oldest AMI still has its snapshot.
    assert existing_amis(ec2, [kept, newer, middle, oldest]) == {kept, oldest}
    assert existing_snapshots(ec2, [newer_snapshot, middle_snapshot, oldest_snapshot]) == {
        middle_snapshot,
        oldest_snapshot,
    }


def test_a_failed_deregistration_keeps_the_snapshots(ec2: Any, sandbox: Sandbox) -> None:
    newest = dated_ami(ec2, fp(0), days_old=1)
    old = dated_ami(ec2, fp(1), days_old=30)
    (snapshot,) = snapshots_of(ec2, old)
    sandbox.deny("DeregisterImage")
    try:
        result = run_tfbake("gc", "--keep", "1", "--apply", "--json")
    finally:
        sandbox.clear_faults()
    assert result.code == ExitCode.AWS
    assert "access denied: ec2:DeregisterImage" in result.stderr
    report = json.loads(result.stdout)
    assert report["done"] == []
    assert report["left"] == [
        {"action": "deregister", "resource": old, "ami_id": old},
        {"action": "delete-snapshot", "resource": snapshot, "ami_id": old},
        {"action": "delete-manifest", "resource": fp(1), "ami_id": old},
    ]
    assert "DeregisterImage" in report["error"]
    assert existing_amis(ec2, [newest, old]) == {newest, old}
    assert existing_snapshots(ec2, [snapshot]) == {snapshot}


def test_json_schema(ec2: Any) -> None:
    kept = dated_ami(ec2, fp(0), days_old=1)
    removed = dated_ami(ec2, fp(1), days_old=30)
    report = gc_json("--keep", "1")
    assert report["schema"] == "tfbake.gc/1"
    assert (report["applied"], report["keep"], report["min_age_days"], report["name"]) == (
        False, 1, 0, None,
    )  # fmt: skip
    assert report["region"] == "us-east-1"
    assert [a["ami_id"] for a in report["amis"]] == [kept, removed]
    assert set(report["amis"][0]) == {
        "ami_id", "ami_name", "name", "fingerprint", "created", "status", "state", "action",
        "reason", "used_by", "snapshots",
    }  # fmt: skip
    assert [step["resource"] for step in report["planned"]] == [
        removed,
        *snapshots_of(ec2, removed),
        fp(1),
    ]
    assert (report["done"], report["left"], report["error"]) == ([], [], None)


def test_nothing_to_do(sandbox: Sandbox) -> None:
    result = run_tfbake("gc", "--keep", "1")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "no tfbake AMIs in us-east-1"


def test_keep_is_required(sandbox: Sandbox) -> None:
    result = run_tfbake("gc")
    assert result.code == ExitCode.BAD_INPUT
    assert "--keep" in result.stderr


def test_recorded_inputs_go_with_the_last_ami_of_their_fingerprint(ec2: Any) -> None:
    from tfbake.aws.manifests import load_manifest, store_manifest
    from tfbake.model.fingerprint import fingerprint_of

    ssm = AwsContext().client("ssm")
    manifests = [{"scheme": "tfbake.fingerprint/1", "name": "web", "salt": str(n)} for n in (0, 1)]
    kept_fp, removed_fp = (fingerprint_of(m).value for m in manifests)
    for manifest, fingerprint in zip(manifests, (kept_fp, removed_fp), strict=True):
        store_manifest(ssm, fingerprint, manifest, "us-east-1")
    dated_ami(ec2, kept_fp, days_old=1)
    dated_ami(ec2, removed_fp, days_old=30)
    result = run_tfbake("gc", "--keep", "1", "--apply")
    assert result.code == 0, result.stderr
    assert load_manifest(ssm, kept_fp, "us-east-1") == manifests[0]
    assert load_manifest(ssm, removed_fp, "us-east-1") is None
