"""Other accounts' AMIs as EC2 shows them to an account they are shared with.

DescribeImages lists, besides an account's own AMIs, every AMI of the region whose launch
permissions reach it (its id, its organization or OU, or public), with the owner's OwnerId and
without the owner's tags. Filters on tags cannot match them either: the tags are not there.
A deprecated AMI of another account is listed only when asked for (IncludeDeprecated) or named
by id; the owner sees its own always. RunInstances and CopyImage find an AMI the same way, so
what an account sees it can launch; a copy also needs the snapshot's createVolumePermission.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tfbake.sandbox.accounts.organizations import permissions_reaching


class SharedImage:
    """Another account's AMI seen through a launch permission: every attribute but its tags and
    its launch permissions, which only the owner can read. The tags it shows are the viewing
    account's own: EC2 lets an account tag a shared AMI and shows those tags to it alone."""

    def __init__(self, image: Any, viewer: Any) -> None:
        self._image = image
        self._viewer = viewer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._image, name)

    @property
    def owned(self) -> Any:
        return self._image

    def get_tags(self) -> list[dict[str, str]]:
        tags: list[dict[str, str]] = self._viewer.describe_tags(
            filters={"resource-id": [self._image.id]}
        )
        return tags

    # Every name moto's serializer reads an image's tags from (TagList, Tags, tagSet).
    @property
    def tag_list(self) -> list[dict[str, str]]:
        return self.get_tags()

    tags = tag_set = tag_list

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name.startswith("tag"):
            return _tag_filter_value(self.get_tags(), filter_name)
        return self._image.get_filter_value(filter_name, method_name)


def _tag_filter_value(tags: list[dict[str, str]], filter_name: str) -> Any:
    # As moto's TaggedEC2Resource answers tag filters, from these tags.
    if filter_name.startswith("tag:"):
        wanted = filter_name[len("tag:") :]
        return next((tag["value"] for tag in tags if tag["key"] == wanted), None)
    if filter_name == "tag-key":
        return [tag["key"] for tag in tags]
    return [tag["value"] for tag in tags]


def is_deprecated(image: Any, now: datetime | None = None) -> bool:
    deprecation = getattr(image, "deprecation_time", None)
    if not deprecation:
        return False
    moment = datetime.fromisoformat(deprecation.replace("Z", "+00:00"))
    return moment <= (now or datetime.now(timezone.utc))


def shared_with(backend: Any) -> list[SharedImage]:
    """The AMIs of other accounts, in `backend`'s region, that `backend`'s account may launch."""
    reaching = permissions_reaching(backend.account_id)
    return [
        SharedImage(image, backend)
        for other in other_accounts(backend)
        for image in list(other.amis.values())
        if any(permission in reaching for permission in image.launch_permissions)
    ]


def other_accounts(backend: Any) -> list[Any]:
    """The EC2 backends of the other accounts that exist in `backend`'s region."""
    from moto.ec2.models import ec2_backends

    others = []
    for account_id in list(ec2_backends):
        if account_id != backend.account_id:
            # Not `in`/[]: moto's account dict creates a backend for any region it is asked for.
            other = dict.get(ec2_backends[account_id], backend.region_name)
            if other is not None:
                others.append(other)
    return others


def install() -> None:
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.amis import AmisResponse

    if getattr(AmiBackend, "tfbake_accounts", False):
        return
    AmiBackend.describe_images = _describe_visible_images  # type: ignore[method-assign]
    AmiBackend.modify_image_attribute = _owner_only(AmiBackend.modify_image_attribute)  # type: ignore[method-assign]
    AmiBackend.copy_image = _copy_needing_snapshot_permission(AmiBackend.copy_image)  # type: ignore[method-assign]
    AmisResponse.describe_images = _describe_images_response  # type: ignore[method-assign]
    InstanceBackend.run_instances = _launching_visible_images_only(InstanceBackend.run_instances)  # type: ignore[method-assign]
    AmiBackend.tfbake_accounts = True  # type: ignore[attr-defined]


def _describe_visible_images(
    self: Any,
    ami_ids: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    exec_users: list[str] | None = None,
    owners: list[str] | None = None,
    include_deprecated: bool = True,
) -> list[Any]:
    from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
    from moto.ec2.utils import generic_filter

    own = list(self.amis.copy().values())
    others = shared_with(self)
    if ami_ids:
        malformed = [ami_id for ami_id in ami_ids if not ami_id.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [image for image in own + others if image.id in ami_ids]
        deleted = [ami_id for ami_id in ami_ids if ami_id in self.deleted_amis]
        if not images and not deleted:
            raise InvalidAMIIdError(ami_ids)
        return images
    if not include_deprecated:
        others = [image for image in others if not is_deprecated(image)]
    images = own + others
    if exec_users:
        images = [image for image in images if _executable_by(image, exec_users, self.account_id)]
    if owners:
        owners = [self.account_id if owner == "self" else owner for owner in owners]
        images = [i for i in images if i.owner_id in owners or i.owner_alias in owners]
    return generic_filter(filters, images) if filters else images


def _executable_by(image: Any, users: list[str], caller: str) -> bool:
    permissions = image.launch_permissions
    for user in users:
        if user == "all" and {"Group": "all"} in permissions:
            return True
        if user == "self" and isinstance(image, SharedImage):
            # Explicit permissions only: ExecutableUsers=self does not list public AMIs.
            reaching = [p for p in permissions_reaching(caller) if p != {"Group": "all"}]
            if any(p in reaching for p in permissions):
                return True
        if {"UserId": user} in permissions:
            return True
    return False


def _describe_images_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    ami_ids = self._get_param("ImageIds", [])
    images = self.ec2_backend.describe_images(
        ami_ids=ami_ids,
        filters=self._filters_from_querystring(),
        exec_users=self._get_param("ExecutableUsers", []),
        owners=self._get_param("Owners", []),
        include_deprecated=bool(ami_ids) or self._get_bool_param("IncludeDeprecated", False),
    )
    if not self._get_bool_param("IncludeDisabled", False):
        images = [image for image in images if image.state != "disabled"]
    return ActionResult({"Images": images})


def _owner_only(modify_image_attribute: Any) -> Any:
    def modify_own_image_attribute(self: Any, ami_id: str, *args: Any, **kwargs: Any) -> Any:
        _refuse_shared(self, ami_id)
        return modify_image_attribute(self, ami_id, *args, **kwargs)

    return modify_own_image_attribute


def _refuse_shared(backend: Any, ami_id: str) -> None:
    from moto.ec2.exceptions import EC2ClientError

    if ami_id not in backend.amis and any(i.id == ami_id for i in shared_with(backend)):
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{ami_id}")


def _copy_needing_snapshot_permission(copy_image: Any) -> Any:
    def copy_shared_image(
        self: Any, source_image_id: str, source_region: str, *args: Any, **kwargs: Any
    ) -> Any:
        from moto.ec2.exceptions import EC2ClientError
        from moto.ec2.models import ec2_backends

        source_backend = ec2_backends[self.account_id][source_region]
        source = next((i for i in shared_with(source_backend) if i.id == source_image_id), None)
        if source is not None and not _may_read_snapshot(source.ebs_snapshot, self.account_id):
            # EC2 copies the snapshots, so it needs read access to them, not only to the AMI.
            raise EC2ClientError(
                "AuthFailure",
                f"You do not have permission to access the storage of this ami {source_image_id}",
            )
        return copy_image(self, source_image_id, source_region, *args, **kwargs)

    return copy_shared_image


def _may_read_snapshot(snapshot: Any, account_id: str) -> bool:
    return (
        account_id in snapshot.create_volume_permission_userids
        or "all" in snapshot.create_volume_permission_groups
    )


def _launching_visible_images_only(run_instances: Any) -> Any:
    """moto launches from any image id (its AMI validation is off by default, and tests launch
    made-up ids); an AMI of another account, though, is launched only while this account sees
    it, as in EC2."""

    def run_visible(self: Any, image_id: str, *args: Any, **kwargs: Any) -> Any:
        from moto.ec2.exceptions import InvalidAMIIdError

        foreign = image_id and image_id not in self.amis and _held_elsewhere(self, image_id)
        if foreign and not any(image.id == image_id for image in shared_with(self)):
            raise InvalidAMIIdError(image_id)
        return run_instances(self, image_id, *args, **kwargs)

    return run_visible


def _held_elsewhere(backend: Any, image_id: str) -> bool:
    """Whether another account of the region holds or held AMI `image_id`."""
    return any(
        image_id in other.amis or image_id in other.deleted_amis
        for other in other_accounts(backend)
    )
