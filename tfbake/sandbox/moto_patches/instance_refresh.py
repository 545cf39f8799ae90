"""Instance refreshes for the sandbox's autoscaling groups (moto has none).

The Terraform AWS provider starts a refresh when a group's launch template changes and waits for
it; without these actions an apply retries for minutes. A sandbox refresh completes at once and
is recorded for tests to read. Instances are replaced only in real mode, where they run: the
group's instances end and the group launches new ones from its current launch template.
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
        replaced = _replace_instances(self.autoscaling_backend, group)
        reason = (
            f"tfbake sandbox: {replaced} instances replaced at once"
            if replaced
            else "tfbake sandbox: completed at once, no instances replaced"
        )
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group,
            "Status": "Successful",
            "StatusReason": reason,
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


def _replace_instances(backend: Any, group_name: str) -> int:
    """Real mode: each instance of the group is ended and the group launches its replacement
    from the group's current launch template, as a rolling refresh does one batch at a time."""
    from tfbake.sandbox.machines import hooks

    if hooks.active() is None:
        return 0
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        return 0
    _normalise_user_data(group)
    instance_ids = [state.instance.id for state in list(group.instance_states)]
    for instance_id in instance_ids:
        backend.terminate_instance(instance_id, should_decrement=False)
    return len(instance_ids)


def _normalise_user_data(group: Any) -> None:
    # moto keeps the user data of a version made by CreateLaunchTemplateVersion as plain text,
    # and then refuses to launch from it; it is base64 there as everywhere else.
    from moto.core.types import Base64EncodedString

    template = getattr(group, "ec2_launch_template", None)
    for version in getattr(template, "versions", []) or []:
        user_data = version.data.get("UserData")
        if isinstance(user_data, str):
            version.data["UserData"] = Base64EncodedString(user_data)


def recorded(group: str, region: str) -> list[dict[str, Any]]:
    with _lock:
        return list(_refreshes.get((region, group), []))


def clear() -> None:
    with _lock:
        _refreshes.clear()
