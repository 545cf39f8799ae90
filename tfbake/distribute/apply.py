"""Apply a spec's distribution to its ready home AMI: copies, sharing, fast snapshot restore.

`preflight` runs before any lookup or bake and refuses what AWS would refuse later (a share of
an AMI encrypted with the AWS-managed key, zones outside the home region). `distribute` runs on
every ensure that has a ready AMI, found or baked, so a missing copy or permission is repaired
by the next run. It tries every region before it reports failures, keeping what succeeded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.aws.catalog import describe_image
from tfbake.distribute.fast_launch import check_zones, enable_fast_restore
from tfbake.distribute.regions import RegionOutcome, copy_regions, ensure_copies, look_up_copies
from tfbake.distribute.sharing import check_shareable, publish_ready, share_image
from tfbake.model import tags
from tfbake.model.ami import snapshot_ids
from tfbake.model.errors import AwsError, BadInput, TfbakeError
from tfbake.model.plan import COPIED, COPY_FOUND, COPY_MISSING, Plan, RegionAmi, Result

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import TagTypeDef


def preflight(plan: Plan, home_region: str) -> None:
    """Refuse, before anything runs, a distribution that cannot work from this home region."""
    distribution = plan.image_set.distribution
    if distribution.kms_key_for(home_region):
        raise BadInput(
            f"region_kms_keys: {home_region} is the home region, where the bake runs; its AMI is "
            "encrypted with volume.kms_key_id"
        )
    check_shareable(distribution, plan.image_set.volume, copy_regions(plan, home_region))
    check_zones(distribution.fast_snapshot_restore, home_region)


def distribute(result: Result, aws: AwsContext) -> Result:
    """Copies, shares and fast restore for the ready AMI of `result`."""
    plan, home_region, home = result.plan, result.region, result.ami
    distribution = plan.image_set.distribution
    if home is None or not (
        copy_regions(plan, home_region) or distribution.share or distribution.fast_snapshot_restore
    ):
        # Nothing to do: the no-op path stays one DescribeImages call.
        return replace(result, copies=())
    share = distribution.share

    def after_ready(ec2: Any, ami_id: str, region: str) -> None:
        if share:
            image = _image(ec2, ami_id, region)
            publish_ready(ec2, image, plan.fingerprint.value, region)
            share_image(ec2, ami_id, snapshot_ids(image), share, region)

    failures: list[tuple[str, TfbakeError]] = []
    try:
        _home_region(aws, result, home.ami_id, after_ready)
    except TfbakeError as err:
        failures.append((home_region, err))
    outcomes = ensure_copies(plan, aws, home, home_region, after_ready)
    failures += [(o.region, o.error) for o in outcomes if o.error is not None]
    if failures:
        raise _incomplete(result, outcomes, failures)
    copies = tuple(
        RegionAmi(o.region, o.ami_id, COPIED if o.copied else COPY_FOUND) for o in outcomes
    )
    _record_copies(aws, result, copies)
    return replace(result, copies=copies)


def _record_copies(aws: AwsContext, result: Result, copies: tuple[RegionAmi, ...]) -> None:
    """Note each copy on the home AMI (only what its tags do not say yet)."""
    assert result.ami is not None
    known = result.ami.tags
    missing: list[TagTypeDef] = [
        {"Key": tags.COPY_PREFIX + copy.region, "Value": copy.ami_id}
        for copy in copies
        if copy.ami_id and known.get(tags.COPY_PREFIX + copy.region) != copy.ami_id
    ]
    if missing:
        with aws_errors(f"ec2:CreateTags {result.ami.ami_id}", result.region):
            aws.client("ec2", result.region).create_tags(
                Resources=[result.ami.ami_id], Tags=missing
            )


def _home_region(aws: AwsContext, result: Result, ami_id: str, after_ready: Any) -> None:
    zones = result.plan.image_set.distribution.fast_snapshot_restore
    ec2 = aws.client("ec2", result.region)
    if zones:
        snapshots = _snapshots_of(ec2, ami_id, result.region)
        enable_fast_restore(ec2, snapshots, zones, result.region)
    after_ready(ec2, ami_id, result.region)


def _snapshots_of(ec2: Any, ami_id: str, region: str) -> tuple[str, ...]:
    return snapshot_ids(_image(ec2, ami_id, region))


def _image(ec2: Any, ami_id: str, region: str) -> dict[str, Any]:
    image = describe_image(ec2, ami_id, region)
    if image is None:
        raise AwsError(f"{ami_id} is gone from {region}", code="InvalidAMIID.NotFound")
    return image


def _incomplete(
    result: Result, outcomes: list[RegionOutcome], failures: list[tuple[str, TfbakeError]]
) -> AwsError:
    failed = "; ".join(f"{region}: {err.one_line()}" for region, err in failures)
    kept = [f"{result.region} {result.ami_id}"] + [
        f"{o.region} {o.ami_id}" for o in outcomes if o.ami_id
    ]
    first = failures[0][1]
    return AwsError(
        f"AMI {result.ami_id} is ready, but distributing it failed in "
        f"{', '.join(region for region, _ in failures)} ({failed}); kept: {', '.join(kept)}; "
        "rerun to repair",
        code=getattr(first, "code", ""),
    )


def check_copies(result: Result, aws: AwsContext) -> Result:
    """For `check`: which regions hold a ready copy of a found AMI; nothing is changed."""
    regions = copy_regions(result.plan, result.region)
    if result.ami is None or not regions:
        return result
    found = look_up_copies(result.plan, aws, result.region)
    copies = tuple(
        RegionAmi(region, ami.ami_id, COPY_FOUND) if ami else RegionAmi(region, None, COPY_MISSING)
        for region, ami in found.items()
    )
    return replace(result, copies=copies)
