"""Instance refreshes for the sandbox's autoscaling groups (moto has none).

The Terraform AWS provider starts a refresh when a group's launch template changes and waits for
it; without these actions an apply retries for minutes. A sandbox refresh completes at once
(instances are not replaced: nothing runs on them here) and is recorded for tests to read.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any

_lock = threading.Lock()
# (region, group name) -> refreshes, newest last
_refreshes: dict[tuple[str, str], list[dict[str, Any]]] = {}


def install() -> None:
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    if getattr(AutoScalingResponse, "tfbake_refreshes", False):
        return

    def start_instance_refresh(self: Any) -> Any:
        group = self._get_param("AutoScalingGroupName")
        now = datetime.now(timezone.utc)
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group,
            "Status": "Successful",
            "StatusReason": "tfbake sandbox: completed at once, no instances replaced",
            "StartTime": now,
            "EndTime": now,
            "PercentageComplete": 100,
            "InstancesToUpdate": 0,
        }
        with _lock:
            _refreshes.setdefault((self.region, group), []).append(refresh)
        return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})

    def describe_instance_refreshes(self: Any) -> Any:
        group = self._get_param("AutoScalingGroupName")
        wanted = set(self._get_param("InstanceRefreshIds") or [])
        with _lock:
            found = list(reversed(_refreshes.get((self.region, group), [])))
        if wanted:
            found = [r for r in found if r["InstanceRefreshId"] in wanted]
        return ActionResult({"InstanceRefreshes": found})

    def cancel_instance_refresh(self: Any) -> Any:
        group = self._get_param("AutoScalingGroupName")
        with _lock:
            refreshes = _refreshes.get((self.region, group), [])
            active = [r for r in refreshes if r["Status"] in ("Pending", "InProgress")]
        if not active:
            from moto.autoscaling.exceptions import AutoscalingClientError

            raise AutoscalingClientError("ActiveInstanceRefreshNotFound", "No active refresh")
        active[-1]["Status"] = "Cancelled"
        return ActionResult({"InstanceRefreshId": active[-1]["InstanceRefreshId"]})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.tfbake_refreshes = True  # type: ignore[attr-defined]


def recorded(group: str, region: str) -> list[dict[str, Any]]:
    with _lock:
        return list(_refreshes.get((region, group), []))


def clear() -> None:
    with _lock:
        _refreshes.clear()
