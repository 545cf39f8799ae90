"""AMI lookup by fingerprint against the sandbox's EC2: only ready AMIs are ever returned."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from tests.support.accounts import SANDBOX_ACCOUNT, WORKLOAD_ACCOUNT, account_client
from tests.support.amis import seed_ami
from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import find_by_fingerprint
from tfbake.model import tags
from tfbake.model.errors import AwsError
from tfbake.model.fingerprint import SCHEME
from tfbake.model.publication import published_description, revoked_description
from tfbake.sandbox import Sandbox

FP = "f" * 64
OWNER, WORKLOAD = SANDBOX_ACCOUNT, WORKLOAD_ACCOUNT


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def test_finds_the_ready_ami(ec2: Any) -> None:
    ami = seed_ami(ec2, FP)
    lookup = find_by_fingerprint(ec2, FP, ["self"], "us-east-1")
    assert lookup.ready is not None
    assert lookup.ready.ami_id == ami
    assert lookup.unusable == ()


def test_ignores_other_fingerprints(ec2: Any) -> None:
    seed_ami(ec2, "e" * 64)
    assert find_by_fingerprint(ec2, FP, ["self"], "us-east-1").ready is None


@pytest.mark.parametrize(
    "status", [tags.STATUS_PENDING, tags.STATUS_FAILED, tags.STATUS_REVOKED, None]
)
def test_never_returns_an_ami_that_is_not_ready(ec2: Any, status: str | None) -> None:
    ami = seed_ami(ec2, FP, status=status)
    lookup = find_by_fingerprint(ec2, FP, ["self"], "us-east-1")
    assert lookup.ready is None
    assert [record.ami_id for record in lookup.unusable] == [ami]
    assert lookup.unusable[0].status == (status or "")


def test_newest_ready_wins(ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    older = seed_ami(ec2, FP)
    newer = seed_ami(ec2, FP)
    # moto stamps creation dates to the second; make the order explicit.
    backend_images = _moto_images()
    backend_images[older].creation_date = datetime(2026, 1, 1, tzinfo=timezone.utc)
    backend_images[newer].creation_date = datetime(2026, 6, 1, tzinfo=timezone.utc)
    lookup = find_by_fingerprint(ec2, FP, ["self"], "us-east-1")
    assert lookup.ready is not None and lookup.ready.ami_id == newer
    assert [r.ami_id for r in lookup.unusable] == [older]


def test_unreachable_endpoint_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    ec2 = AwsContext().client("ec2")
    with pytest.raises(AwsError, match="cannot reach the AWS endpoint for ec2:DescribeImages"):
        find_by_fingerprint(ec2, FP, ["self"], "us-east-1")


def _moto_images() -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends["123456789012"]["us-east-1"].amis


def test_follows_every_page(ec2: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = {seed_ami(ec2, FP, status=tags.STATUS_FAILED) for _ in range(3)}
    ready = seed_ami(ec2, FP)
    monkeypatch.setattr("tfbake.aws.catalog.PAGE_SIZE", 1)
    sandbox.log.clear()
    lookup = find_by_fingerprint(ec2, FP, ["self"], "us-east-1")
    assert sandbox.log.count("DescribeImages") == 4
    assert lookup.ready is not None and lookup.ready.ami_id == ready
    assert {r.ami_id for r in lookup.unusable} == seeded


def published_in(ec2: Any, fingerprint: str, description: str) -> str:
    """An AMI of the sandbox's account, described as `description` and shared with WORKLOAD."""
    ami = seed_ami(ec2, fingerprint)
    ec2.modify_image_attribute(ImageId=ami, Description={"Value": description})
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": WORKLOAD}]})
    return ami


def test_another_owners_ami_is_found_by_its_published_description_in_one_call(
    ec2: Any, sandbox: Sandbox
) -> None:
    ami = published_in(ec2, FP, published_description(FP))
    sandbox.log.clear()

    lookup = find_by_fingerprint(account_client("ec2", WORKLOAD), FP, [OWNER], "us-east-1")

    assert lookup.ready is not None and lookup.ready.ami_id == ami
    assert lookup.ready.fingerprint == FP and lookup.ready.tags == {}
    assert sandbox.log.actions("ec2") == ["DescribeImages"]


@pytest.mark.parametrize(
    "description",
    [
        revoked_description(FP),
        f"tfbake image set web, fingerprint {SCHEME} {FP}",  # as the bake left it: not published
        published_description(FP)[:-1] + "0",  # another fingerprint
        published_description(FP[:16]),  # a prefix is no fingerprint
    ],
    ids=["revoked", "unpublished", "other-fingerprint", "prefix"],
)
def test_another_owners_ami_that_is_not_published_ready_is_never_returned(
    ec2: Any, description: str
) -> None:
    published_in(ec2, FP, description)

    lookup = find_by_fingerprint(account_client("ec2", WORKLOAD), FP, [OWNER], "us-east-1")

    assert lookup.ready is None


def test_tags_the_workload_account_puts_on_another_owners_ami_vouch_for_nothing(
    ec2: Any,
) -> None:
    ami = published_in(ec2, FP, revoked_description(FP))
    workload = account_client("ec2", WORKLOAD)
    workload.create_tags(
        Resources=[ami],
        Tags=[
            {"Key": tags.FINGERPRINT, "Value": FP},
            {"Key": tags.STATUS, "Value": tags.STATUS_READY},
        ],
    )

    lookup = find_by_fingerprint(workload, FP, [OWNER], "us-east-1")

    assert lookup.ready is None
    assert [(r.ami_id, r.status) for r in lookup.unusable] == [(ami, tags.STATUS_REVOKED)]


def test_self_is_asked_first_and_other_owners_only_when_it_has_none(
    ec2: Any, sandbox: Sandbox
) -> None:
    theirs = published_in(ec2, FP, published_description(FP))
    workload = account_client("ec2", WORKLOAD)
    sandbox.log.clear()
    assert find_by_fingerprint(workload, FP, ["self", OWNER], "us-east-1").ready is not None
    assert sandbox.log.actions("ec2") == ["DescribeImages", "DescribeImages"]

    mine = seed_ami(workload, FP)
    sandbox.log.clear()
    lookup = find_by_fingerprint(workload, FP, ["self", OWNER], "us-east-1")

    assert lookup.ready is not None and lookup.ready.ami_id == mine != theirs
    assert sandbox.log.actions("ec2") == ["DescribeImages"]
