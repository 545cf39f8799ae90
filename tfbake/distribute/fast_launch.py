"""Fast snapshot restore for the home AMI's snapshots, so first launches skip lazy loading.

Without it, a volume created from a snapshot fetches each block from S3 on first read, and the
baked image layers are exactly what a new host reads first. FSR is billed per snapshot per zone
per hour while enabled (docs/cli.md), so it is enabled only in the zones the spec names, and
only in the home region.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfbake.aws.calls import aws_errors, paginate
from tfbake.model.errors import AwsError, BadInput

# States in which a snapshot is, or is becoming, fast to restore in a zone.
ACTIVE_STATES = frozenset({"enabling", "optimizing", "enabled"})


def check_zones(zones: Sequence[str], home_region: str) -> None:
    foreign = [zone for zone in zones if not _in_region(zone, home_region)]
    if foreign:
        raise BadInput(
            f"fast_snapshot_restore: {', '.join(foreign)} not in the home region {home_region}; "
            "fast snapshot restore applies to the home region's AMI only"
        )


def _in_region(zone: str, region: str) -> bool:
    # us-east-1a, or a Local Zone such as us-west-2-lax-1a.
    rest = zone[len(region) :] if zone.startswith(region) else ""
    return len(rest) == 1 or rest.startswith("-")


def enable_fast_restore(
    ec2: Any, snapshots: Sequence[str], zones: Sequence[str], region: str
) -> None:
    """Enable FSR for every snapshot in every zone where it is not already on."""
    if not snapshots or not zones:
        return
    with aws_errors("ec2:DescribeFastSnapshotRestores", region):
        active = {
            (item["SnapshotId"], item["AvailabilityZone"])
            for item in paginate(
                ec2,
                "describe_fast_snapshot_restores",
                "FastSnapshotRestores",
                Filters=[{"Name": "snapshot-id", "Values": list(snapshots)}],
            )
            if item.get("State") in ACTIVE_STATES
        }
    for snapshot_id in snapshots:
        missing = [zone for zone in zones if (snapshot_id, zone) not in active]
        if not missing:
            continue
        with aws_errors("ec2:EnableFastSnapshotRestores", region):
            response = ec2.enable_fast_snapshot_restores(
                AvailabilityZones=missing, SourceSnapshotIds=[snapshot_id]
            )
        _raise_unsuccessful(response, region)


def _raise_unsuccessful(response: dict[str, Any], region: str) -> None:
    # The call succeeds as a whole and reports refused snapshot/zone pairs in a list.
    for item in response.get("Unsuccessful", []):
        for error in item.get("FastSnapshotRestoreStateErrors", []):
            detail = error.get("Error", {})
            raise AwsError(
                f"ec2:EnableFastSnapshotRestores failed in {region} for {item.get('SnapshotId')} "
                f"in {error.get('AvailabilityZone')}: "
                f"{detail.get('Code')}: {detail.get('Message')}",
                code=str(detail.get("Code", "")),
            )
