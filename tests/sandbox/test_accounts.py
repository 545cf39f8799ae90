"""Accounts in the sandbox as AWS separates them: an AMI crosses only by a launch permission,
and is then shown with its owner's id and none of its owner's tags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.accounts import (
    IMAGE_ACCOUNT,
    OTHER_ACCOUNT,
    WORKLOAD_ACCOUNT,
    account_client,
)
from tfbake.sandbox import Sandbox


@pytest.fixture
def image_ec2(sandbox: Sandbox) -> Any:
    return account_client("ec2", IMAGE_ACCOUNT)


@pytest.fixture
def workload_ec2(sandbox: Sandbox) -> Any:
    return account_client("ec2", WORKLOAD_ACCOUNT)


def register(ec2: Any, name: str = "web") -> str:
    ami_id: str = ec2.register_image(Name=name, Description=f"{name} image")["ImageId"]
    ec2.create_tags(Resources=[ami_id], Tags=[{"Key": "team", "Value": "images"}])
    return ami_id


def share(ec2: Any, ami_id: str, **permission: str) -> None:
    ec2.modify_image_attribute(ImageId=ami_id, LaunchPermission={"Add": [permission]})


def listed(ec2: Any, **kwargs: Any) -> list[str]:
    return [image["ImageId"] for image in ec2.describe_images(**kwargs)["Images"]]


def test_an_unshared_ami_is_invisible_to_another_account(image_ec2: Any, workload_ec2: Any) -> None:
    ami_id = register(image_ec2)

    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT]) == []
    # The sandbox's seeded base images are public, as Amazon's are; only they are listed.
    assert ami_id not in listed(workload_ec2)


def test_a_shared_ami_is_listed_with_its_owner_and_without_its_tags(
    image_ec2: Any, workload_ec2: Any
) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    queries = ({"Owners": [IMAGE_ACCOUNT]}, {"ExecutableUsers": ["self"]}, {"ImageIds": [ami_id]})
    for query in queries:
        (image,) = workload_ec2.describe_images(**query)["Images"]
        assert image["ImageId"] == ami_id
        assert image["OwnerId"] == IMAGE_ACCOUNT
        assert image["Description"] == "web image"
        assert "Tags" not in image or image["Tags"] == []
    tag_filter = [{"Name": "tag:team", "Values": ["images"]}]
    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT], Filters=tag_filter) == []
    assert listed(image_ec2, Owners=["self"], Filters=tag_filter) == [ami_id]


def test_the_tags_an_account_puts_on_a_shared_ami_are_its_own(
    image_ec2: Any, workload_ec2: Any
) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    workload_ec2.create_tags(Resources=[ami_id], Tags=[{"Key": "seen", "Value": "yes"}])

    (seen,) = workload_ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert seen["Tags"] == [{"Key": "seen", "Value": "yes"}]
    mine = [{"Name": "tag:seen", "Values": ["yes"]}]
    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT], Filters=mine) == [ami_id]
    (owned,) = image_ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert owned["Tags"] == [{"Key": "team", "Value": "images"}]


def test_an_ami_shared_with_one_account_stays_hidden_from_the_others(image_ec2: Any) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    assert listed(account_client("ec2", OTHER_ACCOUNT), Owners=[IMAGE_ACCOUNT]) == []


def test_a_public_ami_is_listed_to_every_account(image_ec2: Any) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, Group="all")

    other = account_client("ec2", OTHER_ACCOUNT)
    assert listed(other, Owners=[IMAGE_ACCOUNT]) == [ami_id]
    assert ami_id in listed(other, ExecutableUsers=["all"])
    # Public is no explicit permission of the account's own.
    assert listed(other, ExecutableUsers=["self"]) == []


def test_an_ami_shared_with_an_organization_or_ou_reaches_its_members(image_ec2: Any) -> None:
    organizations = account_client("organizations", IMAGE_ACCOUNT)
    organization = organizations.create_organization(FeatureSet="ALL")["Organization"]
    member = organizations.create_account(AccountName="w", Email="w@example.com")
    member_id = member["CreateAccountStatus"]["AccountId"]
    root_id = organizations.list_roots()["Roots"][0]["Id"]
    unit = organizations.create_organizational_unit(ParentId=root_id, Name="workloads")
    unit_arn = unit["OrganizationalUnit"]["Arn"]
    in_org, in_unit = register(image_ec2, "org"), register(image_ec2, "unit")
    share(image_ec2, in_org, OrganizationArn=organization["Arn"])
    share(image_ec2, in_unit, OrganizationalUnitArn=unit_arn)
    member_ec2 = account_client("ec2", member_id)

    assert listed(member_ec2, Owners=[IMAGE_ACCOUNT]) == [in_org]
    organizations.move_account(
        AccountId=member_id,
        SourceParentId=root_id,
        DestinationParentId=unit["OrganizationalUnit"]["Id"],
    )
    assert sorted(listed(member_ec2, Owners=[IMAGE_ACCOUNT])) == sorted([in_org, in_unit])
    assert listed(account_client("ec2", OTHER_ACCOUNT), Owners=[IMAGE_ACCOUNT]) == []


def test_the_account_launches_a_shared_ami(image_ec2: Any, workload_ec2: Any) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    (instance,) = workload_ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1)["Instances"]

    assert instance["ImageId"] == ami_id


def test_a_copy_needs_the_snapshots_create_volume_permission(
    image_ec2: Any, workload_ec2: Any, sandbox: Sandbox
) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    with pytest.raises(ClientError, match="AuthFailure"):
        workload_ec2.copy_image(SourceImageId=ami_id, SourceRegion=sandbox.region, Name="mine")
    (snapshot_id,) = [
        m["Ebs"]["SnapshotId"]
        for m in image_ec2.describe_images(ImageIds=[ami_id])["Images"][0]["BlockDeviceMappings"]
    ]
    image_ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=[WORKLOAD_ACCOUNT],
    )
    copy_id = workload_ec2.copy_image(
        SourceImageId=ami_id, SourceRegion=sandbox.region, Name="mine"
    )["ImageId"]

    (copy,) = workload_ec2.describe_images(ImageIds=[copy_id])["Images"]
    assert copy["OwnerId"] == WORKLOAD_ACCOUNT


def test_only_the_owner_changes_who_may_launch(image_ec2: Any, workload_ec2: Any) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    with pytest.raises(ClientError, match="AuthFailure"):
        share(workload_ec2, ami_id, UserId=OTHER_ACCOUNT)
    assert listed(account_client("ec2", OTHER_ACCOUNT), Owners=[IMAGE_ACCOUNT]) == []


@pytest.mark.parametrize(
    "withdraw",
    [
        lambda ec2, ami_id: ec2.modify_image_attribute(
            ImageId=ami_id, LaunchPermission={"Remove": [{"UserId": WORKLOAD_ACCOUNT}]}
        ),
        lambda ec2, ami_id: ec2.deregister_image(ImageId=ami_id),
        lambda ec2, ami_id: ec2.disable_image(ImageId=ami_id),
    ],
    ids=["permission-removed", "deregistered", "disabled"],
)
def test_a_withdrawn_ami_leaves_the_other_accounts_view(
    image_ec2: Any, workload_ec2: Any, withdraw: Any
) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    withdraw(image_ec2, ami_id)

    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT]) == []
    with pytest.raises(ClientError, match="InvalidAMIID"):
        workload_ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1)


def test_a_disabled_ami_stays_private_when_enabled_again(image_ec2: Any, workload_ec2: Any) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    image_ec2.disable_image(ImageId=ami_id)
    assert listed(image_ec2, Owners=["self"]) == []
    assert listed(image_ec2, Owners=["self"], IncludeDisabled=True) == [ami_id]
    image_ec2.enable_image(ImageId=ami_id)

    assert listed(image_ec2, Owners=["self"]) == [ami_id]
    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT]) == []


def test_a_deprecated_ami_is_listed_to_others_only_when_asked_for(
    image_ec2: Any, workload_ec2: Any
) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)
    past = datetime.now(timezone.utc) - timedelta(days=1)

    image_ec2.enable_image_deprecation(ImageId=ami_id, DeprecateAt=past)

    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT]) == []
    (image,) = workload_ec2.describe_images(Owners=[IMAGE_ACCOUNT], IncludeDeprecated=True)[
        "Images"
    ]
    assert image["DeprecationTime"].startswith(past.strftime("%Y-%m-%dT%H:%M"))
    assert listed(workload_ec2, ImageIds=[ami_id]) == [ami_id]
    assert listed(image_ec2, Owners=["self"]) == [ami_id]
    workload_ec2.run_instances(ImageId=ami_id, MinCount=1, MaxCount=1)


def test_a_changed_description_shows_in_the_other_account(
    image_ec2: Any, workload_ec2: Any
) -> None:
    ami_id = register(image_ec2)
    share(image_ec2, ami_id, UserId=WORKLOAD_ACCOUNT)

    image_ec2.modify_image_attribute(ImageId=ami_id, Description={"Value": "revoked"})

    (image,) = workload_ec2.describe_images(ImageIds=[ami_id])["Images"]
    assert image["Description"] == "revoked"
    described = [{"Name": "description", "Values": ["revoked"]}]
    assert listed(workload_ec2, Owners=[IMAGE_ACCOUNT], Filters=described) == [ami_id]
