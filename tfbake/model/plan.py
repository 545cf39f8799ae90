"""A plan (an image set with every input pinned, and its fingerprint) and what became of it."""

from __future__ import annotations

from dataclasses import dataclass

from tfbake.model.ami import AmiRecord
from tfbake.model.bake_timing import BakeTiming
from tfbake.model.fingerprint import Fingerprint
from tfbake.model.image_set import ImageSet
from tfbake.model.reference import ResolvedImage

# Result statuses, as the CLI's JSON and the external protocol report them.
FOUND = "found"  # a ready AMI exists
BAKED = "baked"  # no AMI existed; this run baked one
MISSING = "missing"  # no AMI of this fingerprint at all
NOT_READY = "not-ready"  # AMIs of this fingerprint exist, none usable (pending, failed, revoked)

# What `ensure` does when a plan's AMI (or a region copy) is missing.
ON_MISSING_BAKE = "bake"
ON_MISSING_FAIL = "fail"  # fail instead: a run without side effects, like a CI plan
ON_MISSING_CHOICES = (ON_MISSING_BAKE, ON_MISSING_FAIL)

# A region copy's statuses.
COPY_FOUND = "found"  # the region had a ready copy
COPIED = "copied"  # this run copied the home AMI there
COPY_MISSING = "missing"  # no ready copy (only `check` reports this; ensure copies or fails)


@dataclass(frozen=True)
class Plan:
    """An image set with every input resolved, and its fingerprint."""

    image_set: ImageSet
    base_ami_id: str
    architecture: str
    images: tuple[ResolvedImage, ...]
    fingerprint: Fingerprint

    @property
    def pinned_images(self) -> list[str]:
        """The references the bake pulls, each pinned by digest, sorted and without repeats."""
        return sorted({str(image.pinned) for image in self.images})


@dataclass(frozen=True)
class RegionAmi:
    region: str
    ami_id: str | None
    status: str  # COPY_FOUND, COPIED or COPY_MISSING


@dataclass(frozen=True)
class Result:
    plan: Plan
    region: str
    status: str
    ami: AmiRecord | None
    unusable: tuple[AmiRecord, ...] = ()
    timing: BakeTiming | None = None  # how long the bake took, when this run baked
    copies: tuple[RegionAmi, ...] = ()  # in the spec's other regions, once distributed

    @property
    def ami_id(self) -> str | None:
        return self.ami.ami_id if self.ami else None

    @property
    def ami_ids(self) -> dict[str, str]:
        """Region -> ready AMI id, the home region included; empty when there is no home AMI."""
        if not self.ami_id:
            return {}
        ids = {self.region: self.ami_id}
        ids.update((copy.region, copy.ami_id) for copy in self.copies if copy.ami_id)
        return dict(sorted(ids.items()))

    @property
    def complete(self) -> bool:
        """A ready AMI at home and a ready copy in every other region of the spec."""
        return self.status == FOUND and not self.missing_regions

    @property
    def missing_regions(self) -> list[str]:
        return sorted(copy.region for copy in self.copies if copy.status == COPY_MISSING)
