"""`tfbake invalidate` against the sandbox: a revoked AMI is never returned, and ensure rebakes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.amis import seed_ami
from tests.support.cli import assert_one_line_error, run_tfbake
from tests.support.lifecycle import instance_from, snapshots_of
from tests.support.specs import write_spec
from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import find_by_fingerprint
from tfbake.model import tags
from tfbake.model.errors import ExitCode
from tfbake.model.publication import published_description, revoked_description
from tfbake.sandbox import Sandbox

BASE = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
FP = "d4" * 32
OTHER_FP = "d4" * 8 + "e5" * 24  # shares the first 16 characters with FP


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def tags_of(ec2: Any, ami_id: str) -> dict[str, str]:
    image = ec2.describe_images(ImageIds=[ami_id])["Images"][0]
    return {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}


def snapshot_tags(ec2: Any, snapshot_id: str) -> dict[str, str]:
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    return {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}


def test_invalidate_then_check_misses_and_ensure_bakes_anew(tmp_path: Path, ec2: Any) -> None:
    spec = write_spec(tmp_path, base_ami=BASE)
    baked = run_tfbake("ensure", str(spec))
    assert baked.code == 0, baked.stderr
    first = baked.stdout.strip()
    fingerprint = run_tfbake("fingerprint", str(spec)).stdout.strip()

    revoked = run_tfbake("invalidate", fingerprint, "--reason", "CVE-2026-0001 in nginx")
    assert revoked.code == 0, revoked.stderr
    assert (
        f"revoked {first} in us-east-1 (web, fingerprint {fingerprint[:16]}), was ready"
        in revoked.stdout
    )
    first_tags = tags_of(ec2, first)
    assert first_tags[tags.STATUS] == tags.STATUS_REVOKED
    assert first_tags[tags.REVOKED_REASON] == "CVE-2026-0001 in nginx"
    revoked_at = datetime.strptime(first_tags[tags.REVOKED_AT], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(revoked_at.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)).seconds < 60

    check = run_tfbake("check", str(spec), "--json")
    assert check.code == ExitCode.AMI_MISSING
    result = json.loads(check.stdout)
    assert (result["status"], result["ami_id"]) == ("not-ready", None)
    assert result["unusable_amis"] == [{"ami_id": first, "state": "available", "status": "revoked"}]

    rebaked = run_tfbake("ensure", str(spec))
    assert rebaked.code == 0, rebaked.stderr
    second = rebaked.stdout.strip()
    assert second.startswith("ami-") and second != first
    # AMI names are unique per region: reusing the revoked AMI's name fails the bake.
    first_name = ec2.describe_images(ImageIds=[first])["Images"][0]["Name"]
    second_name = ec2.describe_images(ImageIds=[second])["Images"][0]["Name"]
    assert first_name == f"tfbake-web-{fingerprint[:16]}"
    assert second_name.startswith(first_name + "-")
    assert tags_of(ec2, second)[tags.STATUS] == tags.STATUS_READY

    again = run_tfbake("check", str(spec))
    assert (again.code, again.stdout.strip()) == (0, second)


def test_invalidate_one_ami_by_id(ec2: Any) -> None:
    older = seed_ami(ec2, FP)
    newer = seed_ami(ec2, FP)
    result = run_tfbake("invalidate", newer)
    assert result.code == 0, result.stderr
    assert tags_of(ec2, newer)[tags.STATUS] == tags.STATUS_REVOKED
    assert tags.REVOKED_REASON not in tags_of(ec2, newer)
    assert tags_of(ec2, older)[tags.STATUS] == tags.STATUS_READY
    lookup = find_by_fingerprint(ec2, FP, ["self"], "us-east-1")
    assert lookup.ready is not None and lookup.ready.ami_id == older


def test_the_description_other_accounts_read_says_revoked_too(ec2: Any) -> None:
    ami = seed_ami(ec2, FP)
    ec2.modify_image_attribute(ImageId=ami, Description={"Value": published_description(FP)})

    assert run_tfbake("invalidate", FP).code == 0
    (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert image["Description"] == revoked_description(FP)

    # A run whose description change was lost: the rerun, finding the AMI revoked, repairs it.
    ec2.modify_image_attribute(ImageId=ami, Description={"Value": published_description(FP)})
    again = run_tfbake("invalidate", FP)

    assert again.code == 0, again.stderr
    (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert image["Description"] == revoked_description(FP)


def test_revokes_every_ami_of_a_fingerprint_and_their_snapshots(ec2: Any) -> None:
    amis = [seed_ami(ec2, FP), seed_ami(ec2, FP, status=tags.STATUS_FAILED)]
    other = seed_ami(ec2, "9" * 64)
    result = run_tfbake("invalidate", FP)
    assert result.code == 0, result.stderr
    for ami in amis:
        assert tags_of(ec2, ami)[tags.STATUS] == tags.STATUS_REVOKED
        for snapshot in snapshots_of(ec2, ami):
            assert snapshot_tags(ec2, snapshot)[tags.STATUS] == tags.STATUS_REVOKED
    assert tags_of(ec2, other)[tags.STATUS] == tags.STATUS_READY
    assert find_by_fingerprint(ec2, FP, ["self"], "us-east-1").ready is None


def test_short_fingerprint_from_list_works_and_ambiguity_is_refused(ec2: Any) -> None:
    ami = seed_ami(ec2, FP)
    assert run_tfbake("invalidate", FP[:16]).code == 0
    assert tags_of(ec2, ami)[tags.STATUS] == tags.STATUS_REVOKED
    seed_ami(ec2, OTHER_FP)
    ambiguous = run_tfbake("invalidate", FP[:16])
    assert_one_line_error(ambiguous, ExitCode.BAD_INPUT, "ambiguous", FP, OTHER_FP)


def test_invalidating_twice_keeps_the_first_record(ec2: Any) -> None:
    ami = seed_ami(ec2, FP)
    assert run_tfbake("invalidate", ami, "--reason", "first").code == 0
    first_tags = tags_of(ec2, ami)
    again = run_tfbake("invalidate", ami, "--reason", "second", "--json")
    assert again.code == 0, again.stderr
    assert tags_of(ec2, ami) == first_tags
    report = json.loads(again.stdout)
    assert report["schema"] == "tfbake.invalidate/1"
    assert report["revoked"] == [
        {
            "ami_id": ami,
            "region": "us-east-1",
            "ami_name": report["revoked"][0]["ami_name"],
            "name": "web",
            "fingerprint": FP,
            "previous_status": "revoked",
            "already_revoked": True,
            "revoked_at": first_tags[tags.REVOKED_AT],
            "reason": "first",
        }
    ]


def test_a_pending_ami_is_refused(ec2: Any) -> None:
    ami = seed_ami(ec2, FP, status=tags.STATUS_PENDING)
    result = run_tfbake("invalidate", FP)
    assert_one_line_error(result, ExitCode.BAD_INPUT, ami, "still being baked")
    assert tags_of(ec2, ami)[tags.STATUS] == tags.STATUS_PENDING


def test_an_ami_not_made_by_tfbake_is_refused(ec2: Any) -> None:
    instance = instance_from(ec2, "ami-12c6146b", "running")
    ami = ec2.create_image(InstanceId=instance, Name="hand-made")["ImageId"]
    result = run_tfbake("invalidate", ami)
    assert_one_line_error(result, ExitCode.BAD_INPUT, "not a tfbake AMI")
    assert tags.STATUS not in tags_of(ec2, ami)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("ami-0123456789abcdef0", "no AMI ami-0123456789abcdef0 in us-east-1"),
        ("f" * 64, "no tfbake AMI of fingerprint"),
        ("web", "neither an AMI id"),
        ("abc123", "neither an AMI id"),
        ("ami-123", "'ami-123' is not an AMI id: ami- and then 8 or 17 lower-case hex digits"),
    ],
    ids=["unknown-ami", "unknown-fingerprint", "a-name", "short-prefix", "short-ami-id"],
)
def test_bad_targets_are_one_line_errors(sandbox: Sandbox, target: str, fragment: str) -> None:
    assert_one_line_error(run_tfbake("invalidate", target), ExitCode.BAD_INPUT, fragment)


def test_a_reason_too_long_for_a_tag_is_refused(ec2: Any) -> None:
    ami = seed_ami(ec2, FP)
    result = run_tfbake("invalidate", ami, "--reason", "x" * 257)
    assert_one_line_error(result, ExitCode.BAD_INPUT, "at most 256")
    assert tags_of(ec2, ami)[tags.STATUS] == tags.STATUS_READY
