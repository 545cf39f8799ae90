"""The one flow every entry point runs: image set -> pinned inputs -> fingerprint -> AMI.

Adapters (CLI commands, the Terraform external protocol) make a Plan with `plan_image_set` or
`plan_spec_file`, then ask one question of it: `look_up`, `check` (the copies too),
`compare_with_previous`, or `tfbake.ensure.ensure` (bake when missing). They render the answer.
Nothing here prints.
"""

from __future__ import annotations

from pathlib import Path

from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import Lookup, find_by_fingerprint, newest_ready_by_name
from tfbake.aws.manifests import load_manifest
from tfbake.model.changes import Comparison, compare
from tfbake.model.fingerprint import fingerprint_of, inputs_manifest
from tfbake.model.image_set import ImageSet
from tfbake.model.plan import FOUND, MISSING, NOT_READY, Plan, Result
from tfbake.model.reference import ResolvedImage
from tfbake.resolve.baseami import resolve_base_ami
from tfbake.spec.specfile import load_image_set


def plan_image_set(image_set: ImageSet, aws: AwsContext) -> Plan:
    """Resolve the base AMI and the image digests, and fingerprint the result."""
    base = resolve_base_ami(image_set.base_ami, image_set.architecture, aws)
    images = _resolve_images(image_set, base.architecture, aws)
    manifest = inputs_manifest(
        image_set,
        base_ami_id=base.ami_id,
        architecture=base.architecture,
        images=images,
        recipe_digest=_recipe_digest(),
    )
    return Plan(image_set, base.ami_id, base.architecture, images, fingerprint_of(manifest))


def plan_spec_file(path: Path, aws: AwsContext) -> Plan:
    """The plan of a spec file (HCL or JSON)."""
    return plan_image_set(load_image_set(path), aws)


def look_up(plan: Plan, aws: AwsContext) -> Result:
    region = aws.effective_region
    lookup = find_by_fingerprint(
        aws.client("ec2"), plan.fingerprint.value, plan.image_set.ami_owners, region
    )
    return result_of(plan, region, lookup)


def result_of(plan: Plan, region: str, lookup: Lookup) -> Result:
    if lookup.ready:
        return Result(plan, region, FOUND, lookup.ready, lookup.unusable)
    status = NOT_READY if lookup.unusable else MISSING
    return Result(plan, region, status, None, lookup.unusable)


def check(plan: Plan, aws: AwsContext) -> Result:
    """The plan's ready AMI and its copies in the spec's other regions, changing nothing."""
    from tfbake.distribute.apply import check_copies

    return check_copies(look_up(plan, aws), aws)


def compare_with_previous(plan: Plan, aws: AwsContext) -> Comparison:
    """The plan against the newest ready AMI of its image set, input by input when the earlier
    bake recorded its inputs."""
    region = aws.effective_region
    previous = newest_ready_by_name(
        aws.client("ec2"), plan.image_set.name, plan.image_set.ami_owners, region
    )
    current = plan.fingerprint
    if previous is None:
        return Comparison(current.value, None, "", recorded=False, changes=())
    recorded = load_manifest(aws.client("ssm"), previous.fingerprint, region)
    same = previous.fingerprint == current.value
    changes = () if recorded is None or same else tuple(compare(recorded, current.manifest))
    return Comparison(
        current.value, previous.ami_id, previous.fingerprint, recorded is not None, changes
    )


def _resolve_images(
    image_set: ImageSet, architecture: str, aws: AwsContext
) -> tuple[ResolvedImage, ...]:
    if all(ref.is_pinned for ref in image_set.images):
        # Nothing to ask a registry; skip importing the HTTP client entirely.
        return tuple(ResolvedImage(ref, str(ref.digest)) for ref in image_set.images)
    from tfbake.resolve.registry import RegistryOptions, resolve_images

    options = RegistryOptions(insecure_registries=frozenset(image_set.insecure_registries), aws=aws)
    return tuple(resolve_images(image_set.images, architecture, options))


def _recipe_digest() -> str:
    from tfbake.bake.documents import recipe_digest

    digest = recipe_digest()
    return digest if digest.startswith("sha256:") else f"sha256:{digest}"
