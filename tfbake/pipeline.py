"""The one flow every entry point runs: image set -> resolved inputs -> fingerprint -> AMI.

Adapters (CLI commands, the Terraform external protocol) build an ImageSet, call `plan_image_set`
and then `look_up` or `ensure`, and render the Result. Nothing here prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import Lookup, find_by_fingerprint
from tfbake.model.fingerprint import fingerprint_of, inputs_manifest
from tfbake.model.image_set import ImageSet
from tfbake.model.plan import FOUND, MISSING, NOT_READY, Plan, Result
from tfbake.model.reference import ResolvedImage
from tfbake.resolve.baseami import resolve_base_ami

if TYPE_CHECKING:
    pass


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
