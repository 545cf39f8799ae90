"""The guard process that ends the sandbox's machines when the sandbox itself ends.

A machine outlives a killed systemd-nspawn (its PID 1 is re-parented, not killed), so the
sandbox cannot rely on its own exit path: a SIGKILL or a crash skips it. The sandbox starts this
process once, in a session of its own, and tells it over a pipe which machines it started
(`Reaper.machine_started`) and which are gone. When the pipe closes, however the sandbox ended,
the guard powers off every machine still running, kills what does not stop, removes the
machines' cgroups and nspawn's locks, and, for a temporary state directory, the directory.

It acts only on what it was told about, by pid, and checks each pid is still that machine (its
own cgroup, which no other process is in) before signalling it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class Started:
    instance_id: str
    nspawn_pid: int
    leader_pid: int
    root: str
    cgroup: str  # the machine's own cgroup, below which every one of its processes runs


class Reaper:
    """The sandbox's side of the pipe."""

    def __init__(self, owner: str, state_dir: Path, remove_state_dir: bool) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tfbake.sandbox.machines.reaper"],
            stdin=subprocess.PIPE,
            start_new_session=True,
            text=True,
        )
        self._send({"owner": owner, "state_dir": str(state_dir), "remove": remove_state_dir})

    def machine_starting(self, instance_id: str, root: str, cgroup: str) -> None:
        """Before the machine's nspawn runs: until `machine_started` names its pids, the guard
        ends it by its cgroup, so a sandbox killed while a machine boots leaves none behind."""
        self._send({"started": Started(instance_id, 0, 0, root, cgroup).__dict__})

    def machine_started(self, started: Started) -> None:
        self._send({"started": started.__dict__})

    def machine_gone(self, instance_id: str) -> None:
        self._send({"gone": instance_id})

    def close(self) -> None:
        """The sandbox stopped its machines itself; the guard tidies up and exits."""
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        self._process.wait()

    def _send(self, message: dict[str, object]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()


def _is_machine(pid: int, cgroup: str) -> bool:
    # Not by /proc/PID/root: from the host it reads "/" for a process of a machine.
    try:
        return f"/{cgroup}/" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def _is_nspawn_of(pid: int, root: str) -> bool:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"--directory={root}".encode() in arguments


def _pids_in(cgroup: str) -> list[int]:
    """Every process in the machine's own cgroup or below it (no other process is there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            paths = [line.split(":", 2)[2] for line in (entry / "cgroup").read_text().splitlines()]
        except (OSError, IndexError):
            continue
        if any(path == f"/{cgroup}" or path.startswith(f"/{cgroup}/") for path in paths):
            found.append(int(entry.name))
    return found


def _end_booting(owner: str, booting: list[Started]) -> None:
    # Machines whose pids the sandbox had not reported yet: found by their cgroup alone.
    for started in booting:
        for pid in _pids_in(started.cgroup):
            if _is_nspawn_of(pid, started.root):
                _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_SECONDS
    while time.monotonic() < deadline and any(_pids_in(s.cgroup) for s in booting):
        time.sleep(0.1)
    for started in booting:
        while pids := _pids_in(started.cgroup):
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            time.sleep(0.05)
        release_host_state_of(owner, started)


def release_host_state_of(owner: str, started: Started) -> None:
    from tfbake.sandbox.machines.machine import release_host_state

    release_host_state(owner, started.instance_id, Path(started.root))


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def end_machines(owner: str, every: dict[str, Started]) -> None:
    _end_booting(owner, [s for s in every.values() if not s.leader_pid])
    machines = {key: s for key, s in every.items() if s.leader_pid}
    for started in machines.values():
        if _is_nspawn_of(started.nspawn_pid, started.root):
            _signal(started.nspawn_pid, signal.SIGTERM)  # nspawn halts the machine cleanly
    deadline = time.monotonic() + _GRACE_SECONDS
    while time.monotonic() < deadline and any(
        _is_machine(s.leader_pid, s.cgroup) for s in machines.values()
    ):
        time.sleep(0.1)
    for started in machines.values():
        if _is_machine(started.leader_pid, started.cgroup):
            _signal(started.leader_pid, signal.SIGKILL)
        if _is_nspawn_of(started.nspawn_pid, started.root):
            _signal(started.nspawn_pid, signal.SIGKILL)
    for started in machines.values():
        while _is_machine(started.leader_pid, started.cgroup):
            time.sleep(0.05)
        release_host_state_of(owner, started)


def serve(stream: IO[str]) -> None:
    owner, state_dir, remove = "", None, False
    machines: dict[str, Started] = {}
    for line in stream:
        message = json.loads(line)
        if "owner" in message:
            owner, state_dir, remove = message["owner"], message["state_dir"], message["remove"]
        elif "started" in message:
            started = Started(**message["started"])
            machines[started.instance_id] = started
        elif "gone" in message:
            machines.pop(message["gone"], None)
    end_machines(owner, machines)
    if remove and state_dir:
        shutil.rmtree(state_dir, ignore_errors=True)


def main() -> None:
    # Signals meant for the sandbox (Ctrl-C, a TERM to its process group) must not stop the
    # guard before it has done its work; the closing pipe is its only signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.stdin)


if __name__ == "__main__":
    main()
