"""Fast snapshot restore for the baked AMI's snapshots in the zones the spec names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bakes import BASE, no_progress, plan_for
from tests.support.cli import assert_one_line_error, run_tfbake
from tests.support.specs import spec_data, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.ensure import ensure
from tfbake.model.errors import ExitCode, SpecError
from tfbake.sandbox import Sandbox
from tfbake.spec.mapping import image_set_from_mapping

ZONES = ["us-east-1a", "us-east-1b"]


def snapshots_of(aws: AwsContext, ami_id: str) -> list[str]:
    image = aws.client("ec2").describe_images(ImageIds=[ami_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]]


def fast_restores(aws: AwsContext) -> set[tuple[str, str, str]]:
    items = aws.client("ec2").describe_fast_snapshot_restores()["FastSnapshotRestores"]
    return {(i["SnapshotId"], i["AvailabilityZone"], i["State"]) for i in items}


def test_fast_restore_is_enabled_in_the_given_zones(aws: AwsContext, sandbox: Sandbox) -> None:
    result = ensure(plan_for(aws, fast_snapshot_restore=ZONES), aws, on_progress=no_progress)
    (snapshot,) = snapshots_of(aws, result.ami_id)
    assert fast_restores(aws) == {(snapshot, zone, "enabled") for zone in ZONES}
    assert sandbox.log.count("EnableFastSnapshotRestores") == 1


def test_fast_restore_is_enabled_once_and_repaired_when_a_zone_is_added(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    ensure(plan_for(aws, fast_snapshot_restore=ZONES[:1]), aws, on_progress=no_progress)
    sandbox.log.clear()
    result = ensure(plan_for(aws, fast_snapshot_restore=ZONES[:1]), aws, on_progress=no_progress)
    assert sandbox.log.count("EnableFastSnapshotRestores") == 0
    ensure(plan_for(aws, fast_snapshot_restore=ZONES), aws, on_progress=no_progress)
    assert sandbox.log.count("EnableFastSnapshotRestores") == 1
    assert sandbox.log.count("StartAutomationExecution") == 0
    (snapshot,) = snapshots_of(aws, result.ami_id)
    assert fast_restores(aws) == {(snapshot, zone, "enabled") for zone in ZONES}


def test_without_fast_restore_nothing_is_enabled(aws: AwsContext, sandbox: Sandbox) -> None:
    ensure(plan_for(aws), aws, on_progress=no_progress)
    assert sandbox.log.count("DescribeFastSnapshotRestores") == 0
    assert fast_restores(aws) == set()


def test_a_zone_outside_the_home_region_is_refused_before_any_bake(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, fast_snapshot_restore=["eu-west-1a"])
    result = run_tfbake("ensure", str(spec))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "eu-west-1a not in the home region us-east-1")
    assert sandbox.log.count("StartAutomationExecution") == 0


def test_a_zone_unknown_to_ec2_fails_with_the_zone_named(tmp_path: Path, sandbox: Sandbox) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, fast_snapshot_restore=["us-east-1z"])
    result = run_tfbake("ensure", str(spec))
    assert result.code == ExitCode.AWS, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for fragment in ("EnableFastSnapshotRestores", "us-east-1z", "InvalidParameterValue"):
        assert fragment in last


@pytest.mark.parametrize("zone", ["us-east-1", "use1-az1", "US-EAST-1A"])
def test_a_malformed_zone_is_a_spec_error(zone: str) -> None:
    with pytest.raises(SpecError) as caught:
        image_set_from_mapping(spec_data(fast_snapshot_restore=[zone]))
    assert "is not an availability zone" in caught.value.message
