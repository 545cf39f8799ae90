"""EC2 instances as booted machines: the real-instances mode of the sandbox.

moto stays the record of every instance, image and snapshot; this module makes the records
true. Its hooks wrap moto's EC2 backend (not the HTTP layer), so instances that autoscaling
launches inside moto become machines too:

- RunInstances boots a fresh copy of the AMI's root: a base root for the seeded Debian AMIs,
  else the AMI's snapshot directory. The instance is `pending` until the machine starts.
- StopInstances powers the machine off cleanly (`stopping`, then `stopped`); StartInstances
  boots the same root again.
- TerminateInstances ends the machine and removes its root (`shutting-down`, `terminated`).
- CreateImage copies the instance's root to `<state-dir>/snapshots/<snapshot-id>/` while the
  image is `pending`; the plain directory is what the AMI holds, for anyone to inspect.
- CopyImage gives the copy's snapshot the same tree; DeleteSnapshot removes the tree.

An instance counts as a managed instance (DescribeInstanceInformation) once its machine's
`amazon-ssm-agent.service` is active, and only while it has an instance profile, as on EC2.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfbake.sandbox.machines.machine import AGENT_UNIT, Machine, MachineError
from tfbake.sandbox.machines.reaper import Reaper, Started
from tfbake.sandbox.machines.roots import VARIANTS, BuiltRoot, ensure_root

_STATES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
_AGENT_POLL_SECONDS = 0.25


def _set_state(instance: Any, name: str) -> None:
    instance._state.name = name
    instance._state.code = _STATES[name]


@dataclass
class _Instance:
    machine: Machine
    record: Any  # moto's Instance
    online: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    worker: threading.Thread | None = None


class Fleet:
    """The machines of one sandbox, and the root trees behind its AMIs."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.temporary = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="tfbake-sandbox-"))
        (self.state_dir / "instances").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "snapshots").mkdir(parents=True, exist_ok=True)
        self.owner = f"sandbox{os.getpid()}"
        self.roots: list[BuiltRoot] = []  # the base roots, one per variant
        self.base_roots: dict[str, BuiltRoot] = {}  # seeded AMI id -> the root it boots
        self._instances: dict[str, _Instance] = {}
        self._lock = threading.RLock()
        self._reaper = Reaper(self.owner, self.state_dir, remove_state_dir=self.temporary)
        self.log: Callable[[str], None] = lambda _message: None

    # ---- base roots --------------------------------------------------------------------

    def prepare_base_roots(self) -> list[BuiltRoot]:
        return [ensure_root(variant, log=self.log) for variant in VARIANTS.values()]

    # ---- where an AMI's root lives -----------------------------------------------------

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return self.state_dir / "snapshots" / snapshot_id

    def source_root(self, image: Any) -> Path | None:
        if image.id in self.base_roots:
            return self.base_roots[image.id].root
        snapshot = getattr(image, "ebs_snapshot", None)
        if snapshot is not None and self.snapshot_dir(snapshot.id).is_dir():
            return self.snapshot_dir(snapshot.id)
        return None

    # ---- instance lifecycle (called from the moto hooks) ----------------------------------

    def launched(self, backend: Any, instance: Any) -> None:
        image = backend.amis.get(instance.image_id)
        source = self.source_root(image) if image is not None else None
        directory = self.state_dir / "instances" / instance.id
        machine = Machine(instance.id, directory, self.owner)
        entry = _Instance(machine, instance)
        with self._lock:
            self._instances[instance.id] = entry
        _set_state(instance, "pending")
        user_data = _user_data(instance)
        self._start_worker(entry, lambda: self._first_boot(entry, source, user_data))

    def _first_boot(self, entry: _Instance, source: Path | None, user_data: bytes) -> None:
        if source is None:
            self._fail_launch(entry, "the AMI has no root file system in this sandbox")
            return
        entry.machine.directory.mkdir(parents=True, exist_ok=True)
        _copy_tree(source, entry.machine.root)
        self._boot(entry, user_data)

    def _boot(self, entry: _Instance, user_data: bytes) -> None:
        machine = entry.machine
        self._reaper.machine_starting(machine.instance_id, str(machine.root), machine.cgroup)
        try:
            machine.boot(user_data, hostname=_hostname(entry.record))
        except MachineError as err:
            self._fail_launch(entry, str(err))
            return
        assert machine.process is not None and machine.leader is not None
        self._reaper.machine_started(
            Started(
                machine.instance_id,
                machine.process.pid,
                machine.leader,
                str(machine.root),
                machine.cgroup,
            )
        )
        _set_state(entry.record, "running")
        self.log(f"{machine.instance_id} running, from {entry.record.image_id}")
        threading.Thread(
            target=self._watch_agent,
            args=(entry,),
            name=f"agent-{machine.instance_id}",
            daemon=True,
        ).start()

    def _watch_agent(self, entry: _Instance) -> None:
        # What the SSM service sees: the agent registers once its unit runs, and only then.
        machine = entry.machine
        while machine.is_running() and not entry.online.is_set():
            if machine.unit_active(AGENT_UNIT):
                entry.online.set()
                self.log(f"{machine.instance_id}: SSM agent online")
                return
            time.sleep(_AGENT_POLL_SECONDS)

    def _fail_launch(self, entry: _Instance, reason: str) -> None:
        # EC2 ends an instance that cannot start: it goes to terminated with a reason.
        self.log(f"{entry.machine.instance_id} failed to launch: {reason}")
        entry.record._reason = f"Server.InternalError: {reason}"
        entry.machine.remove()
        _set_state(entry.record, "terminated")

    def stopped(self, instance: Any) -> None:
        entry = self._entry(instance.id)
        if entry is None:
            return
        _set_state(instance, "stopping")
        entry.online.clear()
        self._start_worker(entry, lambda: self._power_off(entry, "stopped"))

    def started(self, instance: Any) -> None:
        entry = self._entry(instance.id)
        if entry is None:
            return
        _set_state(instance, "pending")
        self._start_worker(entry, lambda: self._boot(entry, _user_data(instance)))

    def terminated(self, instance: Any) -> None:
        entry = self._entry(instance.id)
        if entry is None:
            return
        _set_state(instance, "shutting-down")
        entry.online.clear()

        def terminate() -> None:
            # The root goes before the state says terminated: whoever waited for that state
            # finds nothing of the machine left.
            self._power_off(entry, "terminated", remove=True)
            with self._lock:
                self._instances.pop(instance.id, None)

        self._start_worker(entry, terminate)

    def _power_off(self, entry: _Instance, final_state: str, remove: bool = False) -> None:
        entry.machine.power_off()
        self._reaper.machine_gone(entry.machine.instance_id)
        if remove:
            entry.machine.remove()
        _set_state(entry.record, final_state)
        self.log(f"{entry.machine.instance_id} {final_state}")

    def _start_worker(self, entry: _Instance, work: Callable[[], None]) -> None:
        # One change at a time per instance, in order: a stop waits for the boot before it.
        previous = entry.worker

        def run() -> None:
            if previous is not None:
                previous.join()
            with entry.lock:
                work()

        entry.worker = threading.Thread(target=run, name=f"ec2-{entry.machine.instance_id}")
        entry.worker.daemon = True
        entry.worker.start()

    def _entry(self, instance_id: str) -> _Instance | None:
        with self._lock:
            return self._instances.get(instance_id)

    def machine(self, instance_id: str) -> Machine | None:
        entry = self._entry(instance_id)
        return entry.machine if entry else None

    def agent_online(self, instance_id: str) -> bool:
        entry = self._entry(instance_id)
        return entry is not None and entry.online.is_set() and entry.machine.is_running()

    # ---- images and snapshots ------------------------------------------------------------

    def image_created(self, image: Any, instance_id: str) -> None:
        entry = self._entry(instance_id)
        snapshot = getattr(image, "ebs_snapshot", None)
        if entry is None or snapshot is None:
            return
        image.state = "pending"
        target = self.snapshot_dir(snapshot.id)

        def capture() -> None:
            # A stopped instance's disk is what becomes the image; a running one is copied as
            # it is (CreateImage with NoReboot).
            _copy_tree(entry.machine.root, target)
            image.state = "available"
            self.log(f"{image.id}: snapshot {snapshot.id} captured from {instance_id}")

        self._start_worker(entry, capture)

    def image_copied(self, source: Any, copy: Any) -> None:
        origin = self.source_root(source)
        snapshot = getattr(copy, "ebs_snapshot", None)
        if origin is None or snapshot is None:
            return
        # Hard links: snapshot trees are only ever read (every launch copies one).
        subprocess.run(["cp", "-al", str(origin), str(self.snapshot_dir(snapshot.id))], check=True)

    def snapshot_deleted(self, snapshot_id: str) -> None:
        shutil.rmtree(self.snapshot_dir(snapshot_id), ignore_errors=True)

    # ---- ending ------------------------------------------------------------------------

    def reset(self) -> None:
        """End every machine and forget every snapshot: a fresh account."""

        def end(machine: Machine) -> None:
            machine.kill()
            machine.remove()

        self._end_machines(end)
        for directory in (self.state_dir / "snapshots").iterdir():
            shutil.rmtree(directory, ignore_errors=True)

    def shutdown(self) -> None:
        self._end_machines(lambda machine: machine.power_off(timeout=15))
        self._reaper.close()
        if self.temporary:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _end_machines(self, end: Callable[[Machine], object]) -> None:
        with self._lock:
            entries = list(self._instances.values())
            self._instances.clear()
        for entry in entries:
            if entry.worker is not None:
                entry.worker.join()
            end(entry.machine)
            self._reaper.machine_gone(entry.machine.instance_id)


# Where Docker's overlay2 driver keeps image layers: each layer's directory is named by the
# cache-id its layerdb entry records; containers' layers are listed elsewhere (layerdb/mounts).
_LAYERDB = "var/lib/docker/image/overlay2/layerdb/sha256"
_OVERLAY2 = "var/lib/docker/overlay2"
_TAR_OPTIONS = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"]


def _copy_tree(source: Path, target: Path) -> None:
    """A root's copy as a volume restored from a snapshot: every file the same.

    An image layer's files never change once Docker has written them (a container writes to
    its own upper layer), so they are hard-linked rather than copied. That keeps the copy's
    cost near a base root's, as EBS's restore does not grow with the bytes on the volume
    (their first read does, which benchmarks/spinup_model.py models).
    """
    shutil.rmtree(target, ignore_errors=True)
    layers = _image_layers(source)
    if not layers:
        # cp keeps every attribute a root needs (owners, modes, xattrs, device nodes, links).
        subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True)
        return
    target.mkdir(parents=True)
    with tempfile.NamedTemporaryFile("w", suffix=".exclude") as excluded:
        excluded.write("".join(f"./{layer}\n" for layer in layers))
        excluded.flush()
        pack = subprocess.Popen(
            ["tar", "-C", str(source), *_TAR_OPTIONS, f"--exclude-from={excluded.name}",
             "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        unpack = subprocess.run(
            ["tar", "-C", str(target), *_TAR_OPTIONS, "-xpf", "-"], stdin=pack.stdout, check=False
        )
        if pack.stdout is not None:
            pack.stdout.close()
        if pack.wait() != 0 or unpack.returncode != 0:
            raise subprocess.CalledProcessError(pack.returncode or unpack.returncode, "tar")
    for layer in layers:
        subprocess.run(["cp", "-al", str(source / layer), str(target / layer)], check=True)


def _image_layers(root: Path) -> list[str]:
    """The image layers' content directories under `root`, relative to it."""
    layers = []
    for entry in sorted((root / _LAYERDB).glob("*/cache-id")):
        cache_id = entry.read_text(encoding="utf-8").strip()
        relative = f"{_OVERLAY2}/{cache_id}/diff"
        if cache_id.isalnum() and (root / relative).is_dir():
            layers.append(relative)
    return layers


def _user_data(instance: Any) -> bytes:
    raw = getattr(instance, "user_data", None)
    if not raw:
        return b""
    value = raw[0] if isinstance(raw, list) else raw
    try:
        return base64.b64decode(str(value))
    except ValueError:
        return str(value).encode()


def _hostname(instance: Any) -> str:
    name = getattr(instance, "private_dns", "") or instance.id
    return str(name).split(".")[0]
