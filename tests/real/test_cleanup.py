"""Nothing is left behind: a sandbox that is killed outright still ends every machine and
removes its cgroups, nspawn's locks and its temporary state directory."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.real_sandbox import start_real_sandbox, wait_until

CGROUPS = Path("/sys/fs/cgroup")


def processes_of(owner_pid: int) -> list[int]:
    """Pids in the cgroups of the machines of the sandbox with pid `owner_pid`."""
    mark = f"/tfbake-sandbox/sandbox{owner_pid}-"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "cgroup").read_text():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def cgroups_of(owner_pid: int) -> list[Path]:
    return sorted(CGROUPS.glob(f"*/tfbake-sandbox/sandbox{owner_pid}-*"))


def test_a_killed_sandbox_leaves_no_machine_cgroup_or_state(tmp_path: Path) -> None:
    sandbox = start_real_sandbox(None, tmp_path / "sandbox.log")
    try:
        state = sandbox.state_dir
        assert state.is_dir()
        ec2 = sandbox.client("ec2")
        instance_id = ec2.run_instances(ImageId=sandbox.base_ami_id(), MinCount=1, MaxCount=1)[
            "Instances"
        ][0]["InstanceId"]
        wait_until(lambda: processes_of(sandbox.process.pid), 120, "the machine to boot")
        assert cgroups_of(sandbox.process.pid)
    finally:
        os.kill(sandbox.process.pid, signal.SIGKILL)
        sandbox.process.wait()
    wait_until(lambda: not processes_of(sandbox.process.pid), 60, "the machine to end")
    wait_until(lambda: not state.exists(), 60, "the state directory to go")
    wait_until(lambda: not cgroups_of(sandbox.process.pid), 30, "the cgroups to go")
    assert not (Path("/run/systemd/nspawn/propagate") / instance_id).exists()
