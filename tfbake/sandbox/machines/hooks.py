"""Hooks on moto's EC2 backend that hand instance and image changes to the active fleet.

They wrap the backend's methods rather than the HTTP actions, so every caller is covered: a
client, the sandbox's automation steps, and moto's own autoscaling when it launches or ends
instances. With no fleet active (recorded mode) each hook is moto's method unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

from tfbake.sandbox.machines.fleet import Fleet

_active: Fleet | None = None


def activate(fleet: Fleet | None) -> None:
    global _active
    if fleet is not None and _active is not None and _active is not fleet:
        raise RuntimeError("a real-instances sandbox is already running in this process")
    _active = fleet


def active() -> Fleet | None:
    return _active


def install() -> None:
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.instances import InstanceBackend

    if getattr(InstanceBackend, "tfbake_machines", False):
        return
    InstanceBackend.tfbake_machines = True  # type: ignore[attr-defined]
    InstanceBackend.run_instances = _after_run(InstanceBackend.run_instances)  # type: ignore[method-assign]
    for name, hook in (
        ("start_instances", "started"),
        ("stop_instances", "stopped"),
        ("terminate_instances", "terminated"),
    ):
        setattr(InstanceBackend, name, _after_change(getattr(InstanceBackend, name), hook))
    AmiBackend.create_image = _after_create_image(AmiBackend.create_image)  # type: ignore[method-assign]
    AmiBackend.copy_image = _after_copy_image(AmiBackend.copy_image)  # type: ignore[method-assign]
    EBSBackend.delete_snapshot = _after_delete_snapshot(EBSBackend.delete_snapshot)  # type: ignore[method-assign]
    from moto.ec2.responses.general import General

    General.get_console_output = _machine_console(General.get_console_output)  # type: ignore[method-assign]


# GetConsoleOutput returns at most the last 64 KiB of the instance's console.
CONSOLE_OUTPUT_BYTES = 64 * 1024


def _console_sources(machine: Any) -> list[Any]:
    # On EC2 the serial console carries cloud-init's output (cloud-final runs with
    # StandardOutput=journal+console). nspawn passes the machine's own console on only when its
    # buffer flushes, so the sandbox adds the log cloud-init keeps of the same output.
    return [machine.console, machine.root / "var/log/cloud-init-output.log"]


def _machine_console(get_console_output: Any) -> Any:
    @functools.wraps(get_console_output)
    def hooked(self: Any) -> Any:
        fleet = _active
        instance_id = self._get_param("InstanceId")
        machine = fleet.machine(instance_id) if fleet is not None else None
        if machine is None:
            return get_console_output(self)
        import base64

        from moto.core.responses import ActionResult
        from moto.core.utils import utcnow

        data = b"".join(path.read_bytes() for path in _console_sources(machine) if path.is_file())[
            -CONSOLE_OUTPUT_BYTES:
        ]
        # Base64, as EC2 sends it (moto's own answer is not encoded).
        output = base64.b64encode(data).decode()
        return ActionResult({"InstanceId": instance_id, "Timestamp": utcnow(), "Output": output})

    return hooked


def _after_run(run_instances: Any) -> Any:
    @functools.wraps(run_instances)
    def hooked(self: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        fleet = _active
        if fleet is not None and image_id:
            _check_launchable(fleet, self, image_id)
        reservation = run_instances(self, image_id, count, *args, **kwargs)
        _associate_template_profile(self, reservation, kwargs.get("launch_template"))
        if fleet is not None:
            for instance in reservation.instances:
                fleet.launched(self, instance)
        return reservation

    return hooked


def _associate_template_profile(backend: Any, reservation: Any, template: Any) -> None:
    # EC2 gives an instance its launch template's instance profile; moto drops it, and without
    # one the instance's agent would never register.
    if not template:
        return
    profile = backend._get_template_from_args(template).data.get("IamInstanceProfile") or {}
    name, arn = profile.get("Name"), profile.get("Arn")
    if not (name or arn):
        return
    for instance in reservation.instances:
        if instance.id not in backend.iam_instance_profile_associations:
            backend.associate_iam_instance_profile(
                instance_id=instance.id,
                iam_instance_profile_name=name,
                iam_instance_profile_arn=arn,
            )


def _check_launchable(fleet: Fleet, backend: Any, image_id: str) -> None:
    from moto.ec2.exceptions import EC2ClientError

    image = backend.amis.get(image_id)
    if image is not None and fleet.source_root(image) is None:
        raise EC2ClientError(
            "InvalidAMIID.Unavailable",
            f"The image '{image_id}' has no root file system in the tfbake sandbox's real "
            "mode: launch a seeded Debian AMI (debian-12-amd64-*) or an image made from one",
        )


def _after_change(change: Any, hook: str) -> Any:
    @functools.wraps(change)
    def hooked(self: Any, instance_ids: list[str], *args: Any, **kwargs: Any) -> Any:
        before = {i.id: i.state for i in self.get_multi_instances_by_id(instance_ids)}
        changed = change(self, instance_ids, *args, **kwargs)
        fleet = _active
        if fleet is not None:
            for instance, _previous in changed:
                if _needs_machine_change(hook, before.get(instance.id, "")):
                    getattr(fleet, hook)(instance)
        return changed

    return hooked


def _needs_machine_change(hook: str, state_before: str) -> bool:
    # Stopping a stopped instance or terminating a terminated one changes nothing on EC2.
    if hook == "started":
        return state_before == "stopped"
    if hook == "stopped":
        return state_before in ("pending", "running")
    return state_before not in ("shutting-down", "terminated")


def _after_create_image(create_image: Any) -> Any:
    @functools.wraps(create_image)
    def hooked(self: Any, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        image = create_image(self, instance_id, *args, **kwargs)
        if _active is not None:
            _active.image_created(image, instance_id)
        return image

    return hooked


def _after_copy_image(copy_image: Any) -> Any:
    @functools.wraps(copy_image)
    def hooked(self: Any, source_image_id: str, source_region: str, *args: Any, **kw: Any) -> Any:
        copy = copy_image(self, source_image_id, source_region, *args, **kw)
        if _active is not None:
            from moto.ec2.models import ec2_backends

            source = ec2_backends[self.account_id][source_region].amis.get(source_image_id)
            if source is not None:
                _active.image_copied(source, copy)
        return copy

    return hooked


def _after_delete_snapshot(delete_snapshot: Any) -> Any:
    @functools.wraps(delete_snapshot)
    def hooked(self: Any, snapshot_id: str) -> Any:
        deleted = delete_snapshot(self, snapshot_id)
        if _active is not None:
            _active.snapshot_deleted(snapshot_id)
        return deleted

    return hooked
