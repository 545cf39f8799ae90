"""Resolve an image set's base AMI to an id and an architecture.

An AMI id with an explicit architecture needs no AWS call at all, which keeps the no-op path to
the single catalog lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code, paginate
from tfbake.aws.catalog import describe_image
from tfbake.model.errors import AwsError, BadInput
from tfbake.model.image_set import BaseAmi
from tfbake.model.patterns import AMI_ID_RE

# EC2 reports these architectures; tfbake bakes for the two Docker hosts run on.
SUPPORTED_ARCHITECTURES = {"x86_64", "arm64"}


@dataclass(frozen=True)
class ResolvedBase:
    ami_id: str
    architecture: str


def resolve_base_ami(base: BaseAmi, architecture: str | None, aws: AwsContext) -> ResolvedBase:
    if base.ami_id and architecture:
        return ResolvedBase(base.ami_id, architecture)
    if base.name_pattern:
        return _newest_match(base, architecture, aws)
    ami_id = base.ami_id or _from_parameter(str(base.ssm_parameter), aws)
    if architecture:
        return ResolvedBase(ami_id, architecture)
    return ResolvedBase(ami_id, _architecture_of(ami_id, base, aws))


def _from_parameter(name: str, aws: AwsContext) -> str:
    region = aws.effective_region
    ssm = aws.client("ssm")
    try:
        with aws_errors(f"ssm:GetParameter {name}", region):
            value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except AwsError as err:
        if error_code(err) == "ParameterNotFound":
            raise BadInput(f"base_ami: SSM parameter {name!r} not found in {region}") from None
        raise
    if not AMI_ID_RE.fullmatch(value):
        raise BadInput(f"base_ami: SSM parameter {name!r} holds {value!r}, not an AMI id")
    return value


def _architecture_of(ami_id: str, base: BaseAmi, aws: AwsContext) -> str:
    region = aws.effective_region
    image = describe_image(aws.client("ec2"), ami_id, region)
    if image is None:
        shown = ami_id if base.describe() == ami_id else f"{base.describe()} ({ami_id})"
        raise BadInput(f"base_ami: {shown} not found in {region} or not shared with this account")
    return _supported(image, ami_id)


def _newest_match(base: BaseAmi, architecture: str | None, aws: AwsContext) -> ResolvedBase:
    region = aws.effective_region
    filters = [
        {"Name": "name", "Values": [str(base.name_pattern)]},
        {"Name": "state", "Values": ["available"]},
    ]
    if architecture:
        filters.append({"Name": "architecture", "Values": [architecture]})
    with aws_errors(f"ec2:DescribeImages {base.describe()}", region):
        images = list(
            paginate(
                aws.client("ec2"),
                "describe_images",
                "Images",
                Owners=list(base.owners),
                Filters=filters,
            )
        )
    if not images:
        raise BadInput(f"base_ami: no available AMI matches {base.describe()} in {region}")
    newest = max(images, key=lambda image: (image.get("CreationDate", ""), image["ImageId"]))
    return ResolvedBase(newest["ImageId"], architecture or _supported(newest, newest["ImageId"]))


def _supported(image: dict[str, Any], ami_id: str) -> str:
    architecture = str(image.get("Architecture", ""))
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise BadInput(
            f"base_ami: {ami_id} is {architecture or 'of unknown architecture'}; "
            "tfbake bakes x86_64 and arm64 images"
        )
    return architecture


def verify_architecture(ami_id: str, architecture: str, aws: AwsContext) -> None:
    """Before a bake: a declared architecture must be the base AMI's.

    The lookup trusts a declared architecture to save a call; a bake must not, or an arm64
    image set would be pulled onto an x86_64 disk and fail only when its containers start.
    """
    actual = _architecture_of(ami_id, BaseAmi(ami_id=ami_id), aws)
    if actual != architecture:
        raise BadInput(
            f"architecture is {architecture} but base_ami {ami_id} is {actual}; fix one of them"
        )
