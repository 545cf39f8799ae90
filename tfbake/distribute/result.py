"""A pipeline Result that also knows the AMI's copies in other regions (pure)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from tfbake.pipeline import Result

FOUND = "found"  # the region had a ready copy
COPIED = "copied"  # this run copied the home AMI there
MISSING = "missing"  # no ready copy (only `check` reports this; ensure copies or fails)


@dataclass(frozen=True)
class RegionAmi:
    region: str
    ami_id: str | None
    status: str  # FOUND, COPIED or MISSING


@dataclass(frozen=True)
class DistributedResult(Result):
    copies: tuple[RegionAmi, ...] = ()


def with_copies(result: Result, copies: tuple[RegionAmi, ...]) -> DistributedResult:
    own = {field.name: getattr(result, field.name) for field in fields(Result)}
    return DistributedResult(**own, copies=copies)


def ami_ids(result: Result) -> dict[str, str]:
    """Region -> ready AMI id, the home region included; empty when there is no home AMI."""
    if not result.ami_id:
        return {}
    ids = {result.region: result.ami_id}
    for copy in result.copies if isinstance(result, DistributedResult) else ():
        if copy.ami_id:
            ids[copy.region] = copy.ami_id
    return dict(sorted(ids.items()))


def missing_regions(result: Result) -> list[str]:
    if not isinstance(result, DistributedResult):
        return []
    return sorted(copy.region for copy in result.copies if copy.status == MISSING)
