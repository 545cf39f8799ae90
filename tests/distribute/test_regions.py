"""Copies of the baked AMI in other regions: found per region, copied when missing, not rebaked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakes import BASE, no_progress, plan_for
from tests.support.cli import external, run_tfbake
from tests.support.specs import query, spec_data, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import find_by_fingerprint
from tfbake.ensure import ensure
from tfbake.model import tags
from tfbake.model.errors import BadInput, ExitCode, SpecError
from tfbake.model.fingerprint import inputs_manifest
from tfbake.sandbox import Sandbox
from tfbake.spec.mapping import image_set_from_mapping

HOME = "us-east-1"
REGIONS = ["eu-west-1", "us-west-2"]
EU_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def ready_in(aws: AwsContext, region: str, fingerprint: str) -> str | None:
    lookup = find_by_fingerprint(aws.client("ec2", region), fingerprint, ["self"], region)
    return lookup.ready.ami_id if lookup.ready else None


def image(aws: AwsContext, region: str, ami_id: str) -> dict[str, Any]:
    return aws.client("ec2", region).describe_images(ImageIds=[ami_id])["Images"][0]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def snapshot_of(aws: AwsContext, region: str, ami_id: str) -> dict[str, Any]:
    (mapping,) = image(aws, region, ami_id)["BlockDeviceMappings"]
    snapshot_id = mapping["Ebs"]["SnapshotId"]
    ec2 = aws.client("ec2", region)
    return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]


def test_copies_to_two_regions_tagged_like_the_home_ami(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws, regions=REGIONS, tags={"team": "platform"})
    result = ensure(plan, aws, on_progress=no_progress)
    assert result.status == "baked"
    fingerprint = plan.fingerprint.value
    ids = {region: ready_in(aws, region, fingerprint) for region in [HOME, *REGIONS]}
    assert all(ids.values()), ids
    assert len(set(ids.values())) == 3
    assert [(c.region, c.ami_id, c.status) for c in result.copies] == [
        (region, ids[region], "copied") for region in REGIONS
    ]
    home_tags = tags_of(image(aws, HOME, ids[HOME]))
    home_tags.pop(tags.LAST_RETURNED)  # the home AMI's own record of being returned
    # The home AMI records its copies, so `tfbake list` can show every region.
    assert {region: home_tags.pop(tags.COPY_PREFIX + region) for region in REGIONS} == {
        region: ids[region] for region in REGIONS
    }
    for region in REGIONS:
        copy = image(aws, region, ids[region])
        assert copy["Name"] == image(aws, HOME, ids[HOME])["Name"]
        expected = {**home_tags, tags.SOURCE_AMI: ids[HOME], tags.SOURCE_REGION: HOME}
        assert tags_of(copy) == expected
        assert tags_of(snapshot_of(aws, region, ids[region])) == expected
    assert sandbox.log.count("StartAutomationExecution") == 1
    assert sandbox.log.count("CopyImage") == 2


def test_each_region_is_looked_up_and_left_alone(tmp_path: Path, sandbox: Sandbox) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, regions=REGIONS)
    first = run_tfbake("--json", "ensure", str(spec))
    assert first.code == 0, first.stderr
    sandbox.log.clear()
    second = run_tfbake("--json", "ensure", str(spec))
    assert second.code == 0, second.stderr
    first_ids, second_ids = (json.loads(r.stdout)["ami_ids"] for r in (first, second))
    assert sorted(first_ids) == sorted([HOME, *REGIONS])
    assert second_ids == first_ids
    assert json.loads(second.stdout)["ami_id"] == first_ids[HOME]
    assert sandbox.log.count("CopyImage") == 0
    assert sandbox.log.count("StartAutomationExecution") == 0
    # One lookup at home, one per region.
    assert sandbox.log.count("DescribeImages") == 3


def test_a_region_missing_its_copy_gets_a_copy_not_a_bake(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    first = ensure(plan_for(aws, regions=["eu-west-1"]), aws, on_progress=no_progress)
    sandbox.log.clear()
    plan = plan_for(aws, regions=REGIONS)
    second = ensure(plan, aws, on_progress=no_progress)
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert sandbox.log.count("CopyImage") == 1
    assert second.status == "found"
    assert second.ami_id == first.ami_id
    assert [(c.region, c.status) for c in second.copies] == [
        ("eu-west-1", "found"), ("us-west-2", "copied"),
    ]  # fmt: skip
    assert ready_in(aws, "us-west-2", plan.fingerprint.value) == second.copies[1].ami_id


def test_a_copy_is_encrypted_with_its_regions_key(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws, regions=REGIONS, region_kms_keys={"eu-west-1": EU_KEY})
    result = ensure(plan, aws, on_progress=no_progress)
    copies = {c.region: c.ami_id for c in result.copies}
    eu = snapshot_of(aws, "eu-west-1", copies["eu-west-1"])
    assert (eu["Encrypted"], eu.get("KmsKeyId")) == (True, EU_KEY)
    west = snapshot_of(aws, "us-west-2", copies["us-west-2"])
    assert west.get("KmsKeyId") is None


def test_partial_failure_names_the_region_keeps_the_other_and_rerun_repairs(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, regions=REGIONS)
    sandbox.deny("CopyImage", times=1)
    failed = run_tfbake("ensure", str(spec))
    assert failed.code == ExitCode.AWS, failed.stderr
    assert failed.stdout == ""
    line = failed.stderr.strip().splitlines()[-1]
    fingerprint = plan_for(aws).fingerprint.value
    present = [r for r in REGIONS if ready_in(aws, r, fingerprint)]
    assert len(present) == 1, line
    (missing,) = set(REGIONS) - set(present)
    assert f"failed in {missing} (" in line
    assert "ec2:CopyImage" in line
    assert f"kept: {HOME} " in line and f"{present[0]} ami-" in line

    sandbox.log.clear()
    repaired = run_tfbake("--json", "ensure", str(spec))
    assert repaired.code == 0, repaired.stderr
    ami_ids = json.loads(repaired.stdout)["ami_ids"]
    assert ami_ids[missing] == ready_in(aws, missing, fingerprint)
    assert sandbox.log.count("StartAutomationExecution") == 0
    assert sandbox.log.count("CopyImage") == 1


def test_a_pending_copy_left_by_an_earlier_run_is_awaited_not_copied_again(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    home = ensure(plan_for(aws), aws, on_progress=no_progress)
    ec2 = aws.client("ec2", "eu-west-1")
    # What a run that died right after CopyImage and its first CreateTags leaves behind.
    orphan = ec2.copy_image(SourceImageId=home.ami_id, SourceRegion=HOME, Name=home.ami.ami_name)
    pending = {**home.ami.tags, tags.STATUS: tags.STATUS_PENDING}
    ec2.create_tags(
        Resources=[orphan["ImageId"]], Tags=[{"Key": k, "Value": v} for k, v in pending.items()]
    )
    sandbox.log.clear()
    result = ensure(plan_for(aws, regions=["eu-west-1"]), aws, on_progress=no_progress)
    assert sandbox.log.count("CopyImage") == 0
    assert [(c.ami_id, c.status) for c in result.copies] == [(orphan["ImageId"], "copied")]
    assert tags_of(image(aws, "eu-west-1", orphan["ImageId"]))[tags.STATUS] == tags.STATUS_READY


def test_external_reply_has_ami_ids(sandbox: Sandbox) -> None:
    result = external(query(base_ami=BASE, regions=REGIONS))
    assert result.code == 0, result.stderr
    reply = result.external_result()
    ami_ids = json.loads(reply["ami_ids"])
    assert sorted(ami_ids) == sorted([HOME, *REGIONS])
    assert ami_ids[HOME] == reply["ami_id"]


def test_check_reports_a_missing_region_copy(tmp_path: Path, sandbox: Sandbox) -> None:
    assert (
        run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE, regions=REGIONS[:1]))).code
        == 0
    )
    wider = write_spec(tmp_path, base_ami=BASE, regions=REGIONS)
    checked = run_tfbake("--json", "check", str(wider))
    assert checked.code == ExitCode.AMI_MISSING, checked.stderr
    report = json.loads(checked.stdout)
    assert report["status"] == "found"
    assert report["missing_regions"] == ["us-west-2"]
    assert sorted(report["ami_ids"]) == [REGIONS[0], HOME]
    text = run_tfbake("check", str(wider))
    assert text.code == ExitCode.AMI_MISSING
    assert "us-west-2  missing  -" in text.stdout
    assert run_tfbake("ensure", str(wider)).code == 0
    assert run_tfbake("check", str(wider)).code == 0


def test_regions_and_distribution_are_not_fingerprint_inputs() -> None:
    plain = image_set_from_mapping(spec_data())
    distributed = image_set_from_mapping(
        spec_data(
            regions=REGIONS,
            region_kms_keys={"eu-west-1": EU_KEY},
            share={"accounts": ["111122223333"]},
            volume={"kms_key_id": "alias/tfbake"},
            fast_snapshot_restore=["us-east-1a"],
        )
    )
    arguments = {"base_ami_id": "ami-0123456789abcdef0", "architecture": "x86_64", "images": (),
                 "recipe_digest": "sha256:" + "0" * 64}  # fmt: skip
    with_key = image_set_from_mapping(spec_data(volume={"kms_key_id": "alias/tfbake"}))
    assert inputs_manifest(distributed, **arguments) == inputs_manifest(with_key, **arguments)
    assert plain.distribution.regions == ()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"regions": ["Europe"]}, "regions: 'Europe' is not a region name"),
        ({"regions": ["eu-west-1", "eu-west-1"]}, "listed twice"),
        ({"regions": ["eu-west-1"], "region_kms_keys": {"us-west-2": "alias/k"}},
         "'us-west-2' is not in regions"),
        ({"regions": ["us-west-2"], "region_kms_keys": {"us-west-2": EU_KEY}},
         "a copy needs a key of its own region"),
    ],
    ids=["bad-region", "duplicate", "key-for-unlisted-region", "key-of-another-region"],
)  # fmt: skip
def test_invalid_region_settings_are_refused(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        image_set_from_mapping(spec_data(**changes))
    assert fragment in caught.value.message


def test_a_key_for_the_home_region_is_refused_before_any_bake(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws, regions=[HOME, "eu-west-1"], region_kms_keys={HOME: "alias/k"})
    sandbox.log.clear()
    with pytest.raises(BadInput) as caught:
        ensure(plan, aws, on_progress=no_progress)
    assert "us-east-1 is the home region" in caught.value.message
    assert sandbox.log.actions() == []


def test_on_missing_fail_reports_a_missing_copy_instead_of_copying(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    ensure(plan_for(aws), aws, on_progress=no_progress)
    sandbox.log.clear()
    result = external(query(base_ami=BASE, regions=REGIONS[:1]), env={"TFBAKE_ON_MISSING": "fail"})
    assert result.code == ExitCode.AMI_MISSING, result.stderr
    assert "no ready copy of ami-" in result.stderr
    assert "in eu-west-1; on_missing is fail" in result.stderr
    assert sandbox.log.count("CopyImage") == 0


def test_list_shows_every_region_of_an_ami(tmp_path: Path, sandbox: Sandbox) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, regions=REGIONS)
    ami_ids = json.loads(run_tfbake("--json", "ensure", str(spec)).stdout)["ami_ids"]
    listing = json.loads(run_tfbake("--json", "list").stdout)
    (ami,) = listing["amis"]
    assert ami["regions"] == ami_ids


def test_invalidate_revokes_the_copies_too(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws, regions=REGIONS)
    old_ids = ensure(plan, aws, on_progress=no_progress).ami_ids
    result = run_tfbake("--json", "invalidate", plan.fingerprint.value)
    assert result.code == 0, result.stderr
    revoked = {r["region"]: r["ami_id"] for r in json.loads(result.stdout)["revoked"]}
    assert revoked == old_ids
    second = ensure(plan, aws, on_progress=no_progress)
    assert second.status == "baked"
    new_ids = second.ami_ids
    assert all(new_ids[region] != old_ids[region] for region in old_ids)
