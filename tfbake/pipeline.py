"""The one flow every entry point runs: image set -> resolved inputs -> fingerprint -> AMI.

Adapters (CLI commands, the Terraform external protocol) build an ImageSet, call `plan_image_set`
and then `look_up` or `ensure`, and render the Result. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tfbake.aws.calls import AwsContext
from tfbake.aws.catalog import AmiRecord, Lookup, find_by_fingerprint
from tfbake.model.fingerprint import Fingerprint, fingerprint_of, inputs_manifest
from tfbake.model.reference import ResolvedImage
from tfbake.resolve.baseami import resolve_base_ami
from tfbake.spec.mapping import ImageSet

if TYPE_CHECKING:
    from tfbake.bake.timing import BakeTiming

# Result statuses, as the CLI's JSON and the external protocol report them.
FOUND = "found"  # a ready AMI exists
BAKED = "baked"  # no AMI existed; this run baked one
MISSING = "missing"  # no AMI of this fingerprint at all
NOT_READY = "not-ready"  # AMIs of this fingerprint exist, none usable (pending, failed, revoked)


@dataclass(frozen=True)
class Plan:
    """An image set with every input resolved, and its fingerprint."""

    image_set: ImageSet
    base_ami_id: str
    architecture: str
    images: tuple[ResolvedImage, ...]
    fingerprint: Fingerprint


@dataclass(frozen=True)
class Result:
    plan: Plan
    region: str
    status: str
    ami: AmiRecord | None
    unusable: tuple[AmiRecord, ...] = ()
    timing: BakeTiming | None = None  # how long the bake took, when this run baked

    @property
    def ami_id(self) -> str | None:
        return self.ami.ami_id if self.ami else None


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
