"""EC2 image actions the sandbox answers where moto does not: fast snapshot restores, the
encryption CopyImage is asked for, and DeregisterImage's DeleteAssociatedSnapshots.

moto has no EnableFastSnapshotRestores or DescribeFastSnapshotRestores, its CopyImage ignores
Encrypted and KmsKeyId, and its DeregisterImage ignores DeleteAssociatedSnapshots (leaving the
snapshots a failed bake's runbook means to delete). All are added here as methods on moto's EC2
response class (like pagination.py), so they are served over HTTP like any other action. The
fast snapshot restore record lives on moto's EC2 backend of the account and region, so a
sandbox reset forgets it with everything else; DescribeFastSnapshotRestores reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

ENABLED = "enabled"
_RECORD_ATTRIBUTE = "tfbake_fast_snapshot_restores"


@dataclass(frozen=True)
class FastSnapshotRestore:
    snapshot_id: str
    availability_zone: str
    owner_id: str
    enabled_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "SnapshotId": self.snapshot_id,
            "AvailabilityZone": self.availability_zone,
            "State": ENABLED,
            "StateTransitionReason": "Client.UserInitiated - Lifecycle state transition",
            "OwnerId": self.owner_id,
            "EnablingTime": self.enabled_at,
            "OptimizingTime": self.enabled_at,
            "EnabledTime": self.enabled_at,
        }


def fast_snapshot_restores(backend: Any) -> dict[tuple[str, str], FastSnapshotRestore]:
    """(snapshot id, zone) -> record, for one account and region's EC2 backend."""
    records = getattr(backend, _RECORD_ATTRIBUTE, None)
    if records is None:
        records = {}
        setattr(backend, _RECORD_ATTRIBUTE, records)
    return records


def install() -> None:
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.amis import AmisResponse

    if getattr(EC2Response, "tfbake_fast_snapshot_restores", False):
        return
    EC2Response.enable_fast_snapshot_restores = _enable  # type: ignore[attr-defined]
    EC2Response.describe_fast_snapshot_restores = _describe  # type: ignore[attr-defined]
    EC2Response.tfbake_fast_snapshot_restores = True  # type: ignore[attr-defined]
    AmisResponse.copy_image = _encrypting_copy(AmisResponse.copy_image)  # type: ignore[method-assign]
    AmisResponse.create_image = _create_image_tagging_snapshots  # type: ignore[method-assign]
    AmisResponse.deregister_image = _deregistering_snapshots(AmisResponse.deregister_image)  # type: ignore[method-assign]


def _enable(self: Any) -> Any:
    from moto.core.responses import ActionResult

    zones = self._get_param("AvailabilityZones", [])
    snapshot_ids = self._get_param("SourceSnapshotIds", [])
    self.error_on_dryrun()
    backend = self.ec2_backend
    known_zones = {zone.name for zone in backend.describe_availability_zones()}
    records = fast_snapshot_restores(backend)
    now = datetime.now(timezone.utc)
    successful, unsuccessful = [], []
    for snapshot_id in snapshot_ids:
        snapshot = backend.snapshots.get(snapshot_id)
        for zone in zones:
            problem = None
            if snapshot is None:
                problem = (
                    "InvalidSnapshot.NotFound",
                    f"The snapshot '{snapshot_id}' does not exist.",
                )
            elif zone not in known_zones:
                problem = ("InvalidParameterValue", f"Invalid availability zone: [{zone}]")
            if problem:
                unsuccessful.append(_failure(snapshot_id, zone, *problem))
                continue
            record = records.setdefault(
                (snapshot_id, zone), FastSnapshotRestore(snapshot_id, zone, snapshot.owner_id, now)
            )
            # AWS answers "enabling"; the sandbox has nothing to optimise, so it is enabled at once.
            successful.append({**record.as_json(), "State": "enabling"})
    return ActionResult({"Successful": successful, "Unsuccessful": unsuccessful})


def _failure(snapshot_id: str, zone: str, code: str, message: str) -> dict[str, Any]:
    return {
        "SnapshotId": snapshot_id,
        "FastSnapshotRestoreStateErrors": [
            {"AvailabilityZone": zone, "Error": {"Code": code, "Message": message}}
        ],
    }


_FILTER_FIELDS = {
    "snapshot-id": "SnapshotId",
    "availability-zone": "AvailabilityZone",
    "owner-id": "OwnerId",
    "state": "State",
}


def _describe(self: Any) -> Any:
    from moto.core.responses import ActionResult

    filters = self._filters_from_querystring()
    items = [record.as_json() for record in fast_snapshot_restores(self.ec2_backend).values()]
    for name, values in filters.items():
        field = _FILTER_FIELDS.get(name)
        if field is not None:
            items = [item for item in items if str(item[field]) in values]
    items.sort(key=lambda item: (item["SnapshotId"], item["AvailabilityZone"]))
    return ActionResult({"FastSnapshotRestores": items})


def _create_image_tagging_snapshots(self: Any) -> Any:
    """CreateImage with TagSpecifications for the snapshots too, as EC2 accepts (moto raises).

    The runbook tags snapshots at creation so that a least-privilege role can delete exactly
    the snapshots tfbake made (an IAM condition on their tags), even after an early failure.
    """
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    specifications = self._get_param("TagSpecifications", [])
    snapshot_tags = {
        tag["Key"]: tag["Value"]
        for spec in specifications
        if spec.get("ResourceType") == "snapshot"
        for tag in spec.get("Tags", [])
    }
    image = self.ec2_backend.create_image(
        self._get_param("InstanceId"),
        self._get_param("Name"),
        self._get_param("Description", ""),
        tag_specifications=[s for s in specifications if s.get("ResourceType") != "snapshot"],
    )
    snapshot = getattr(image, "ebs_snapshot", None)
    if snapshot_tags and snapshot is not None:
        self.ec2_backend.create_tags([snapshot.id], snapshot_tags)
    return ActionResult({"ImageId": image.id})


def _encrypting_copy(copy_image: Any) -> Any:
    def encrypting_copy_image(self: Any) -> Any:
        response = copy_image(self)
        encrypted = str(self._get_param("Encrypted", "")).lower() == "true"
        kms_key_id = self._get_param("KmsKeyId")
        if encrypted or kms_key_id:
            # The copy's snapshot is what EC2 encrypts; DescribeSnapshots shows the key there.
            image = self.ec2_backend.amis[response.result["ImageId"]]
            image.ebs_snapshot.encrypted = True
            image.ebs_snapshot.kms_key_id = kms_key_id
        return response

    return encrypting_copy_image


def _deregistering_snapshots(deregister_image: Any) -> Any:
    def deregister_image_and_snapshots(self: Any) -> Any:
        if str(self._get_param("DeleteAssociatedSnapshots", "")).lower() != "true":
            return deregister_image(self)
        image = self.ec2_backend.amis.get(self._get_param("ImageId"))
        snapshot = getattr(image, "ebs_snapshot", None)
        response = deregister_image(self)
        if snapshot is not None:
            self.ec2_backend.delete_snapshot(snapshot.id)
        return response

    return deregister_image_and_snapshots
