"""`tfbake list` against the sandbox: every tfbake AMI, its status, and whether it is in use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.cli import run_tfbake
from tests.support.lifecycle import (
    dated_ami,
    ec2_backend,
    instance_from,
    launch_template,
    snapshots_of,
)
from tfbake.aws.calls import AwsContext
from tfbake.model import tags
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

WEB_FP = "a1" * 32
API_FP = "b2" * 32
OLD_FP = "c3" * 32


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def rows(stdout: str) -> dict[str, list[str]]:
    """The table's rows by AMI id, cells split on the two-space column gap."""
    lines = stdout.strip().splitlines()
    header = lines[0].split()
    assert header[:5] == ["NAME", "FINGERPRINT", "AMI", "CREATED", "STATUS"], header
    cells = [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines[1:]]
    return {row[2]: row for row in cells}


def list_json(*args: str) -> dict[str, Any]:
    result = run_tfbake("list", "--json", *args)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_table_shows_every_tfbake_ami_and_whether_it_is_in_use(ec2: Any) -> None:
    running = dated_ami(ec2, WEB_FP, days_old=1)
    templated = dated_ami(ec2, API_FP, days_old=2, name="api")
    unused = dated_ami(ec2, OLD_FP, days_old=3, status=tags.STATUS_FAILED)
    instance_from(ec2, running, "running")
    launch_template(ec2, "api-lt", [templated], default_version=1)

    result = run_tfbake("list")
    assert result.code == 0, result.stderr
    table = rows(result.stdout)
    assert list(table) == [running, templated, unused]  # newest first
    assert table[running] == ["web", WEB_FP[:16], running, table[running][3], "ready",
                              "us-east-1", "yes (1)", "-"]  # fmt: skip
    assert table[templated][0] == "api" and table[templated][-2] == "yes (1)"
    assert table[unused][4] == "failed" and table[unused][-2] == "no"


def test_json_schema_and_in_use(ec2: Any) -> None:
    used = dated_ami(ec2, WEB_FP, days_old=1)
    unused = dated_ami(ec2, OLD_FP, days_old=5)
    instance = instance_from(ec2, used, "stopped")

    report = list_json()
    assert report["schema"] == "tfbake.amis/1"
    assert report["region"] == "us-east-1"
    first, second = report["amis"]
    assert first == {
        "name": "web",
        "fingerprint": WEB_FP,
        "fingerprint_short": WEB_FP[:16],
        "ami_id": used,
        "ami_name": first["ami_name"],
        "created": first["created"],
        "status": "ready",
        "state": "available",
        "regions": {"us-east-1": used},
        "in_use": True,
        "used_by": [f"instance {instance} (stopped)"],
        "snapshots": snapshots_of(ec2, used),
        "shared_with": [],
        "deprecation_time": None,
    }
    assert first["ami_name"].startswith(f"tfbake-web-{WEB_FP[:16]}")
    assert first["created"] > second["created"]
    assert (second["ami_id"], second["in_use"], second["used_by"]) == (unused, False, [])


def test_shows_with_whom_each_ami_is_shared(ec2: Any) -> None:
    shared, private = dated_ami(ec2, WEB_FP, days_old=1), dated_ami(ec2, OLD_FP, days_old=2)
    organization = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
    unit = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
    ec2.modify_image_attribute(
        ImageId=shared,
        LaunchPermission={
            "Add": [
                {"UserId": "210987654321"},
                {"OrganizationArn": organization},
                {"OrganizationalUnitArn": unit},
            ]
        },
    )

    result = run_tfbake("list")

    table = rows(result.stdout)
    assert table[shared][-1] == "210987654321,organization/o-abcdefghij,ou/ou-ab12-cdefgh34"
    assert table[private][-1] == "-"
    by_id = {ami["ami_id"]: ami for ami in list_json()["amis"]}
    assert by_id[shared]["shared_with"][0] == "210987654321"


def test_filters_by_name_and_status(ec2: Any) -> None:
    web = dated_ami(ec2, WEB_FP, days_old=1)
    api = dated_ami(ec2, API_FP, days_old=2, name="api")
    revoked = dated_ami(ec2, OLD_FP, days_old=3, status=tags.STATUS_REVOKED)
    assert [a["ami_id"] for a in list_json("--name", "api")["amis"]] == [api]
    assert [a["ami_id"] for a in list_json("--status", "revoked")["amis"]] == [revoked]
    assert [a["ami_id"] for a in list_json("--name", "web", "--status", "ready")["amis"]] == [web]


def test_status_shows_the_ec2_state_when_not_available(ec2: Any) -> None:
    ami = dated_ami(ec2, WEB_FP, days_old=1, status=tags.STATUS_PENDING)
    ec2_backend().amis[ami].state = "pending"
    assert rows(run_tfbake("list").stdout)[ami][4] == "pending (pending)"
    assert list_json()["amis"][0]["state"] == "pending"


def test_other_amis_are_not_listed(ec2: Any) -> None:
    instance = instance_from(ec2, "ami-12c6146b", "running")
    ec2.create_image(InstanceId=instance, Name="not-from-tfbake")
    result = run_tfbake("list")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "no tfbake AMIs in us-east-1"
    assert list_json()["amis"] == []


def test_an_empty_filtered_list_names_the_filter(ec2: Any) -> None:
    dated_ami(ec2, WEB_FP, days_old=1)
    result = run_tfbake("list", "--name", "nope", "--status", "ready")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "no tfbake AMIs named 'nope' with status ready in us-east-1"


def test_unknown_status_is_a_usage_error(sandbox: Sandbox) -> None:
    result = run_tfbake("list", "--status", "gone")
    assert result.code == ExitCode.BAD_INPUT
    assert "--status" in result.stderr
