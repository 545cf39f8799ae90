"""One booted systemd machine: an EC2 instance of the real-mode sandbox.

A machine is `systemd-nspawn -b` on a root directory of its own. It shares the host's network
namespace (a registry on 127.0.0.1 is reachable, as a VPC endpoint would be), and gets, by bind
mounts that never reach its disk, what EC2's hypervisor and metadata service would give it:

- its user data and instance id, as a cloud-init NoCloud seed;
- a runtime unit directory (/run/systemd/system) with the platform's shims: the v1 cgroup
  controllers remounted writable for runc, dockerd kept off the host's network configuration
  and inside this machine's own cgroups, and sshd kept from listening on the host's port 22.

Each machine runs in cgroups of its own below `tfbake-sandbox/` in the host's hierarchies, so
machines never share nspawn's supervisor/payload groups or Docker's container groups, and
`release()` removes every group the machine or its Docker daemon made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_TOP = "tfbake-sandbox"
# The hierarchies nspawn itself places the machine in; Docker's groups appear in every one.
_NSPAWN_HIERARCHIES = ("systemd", "unified")
_NSPAWN_LOCKS = Path("/run/systemd/nspawn/locks")
_NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
AGENT_UNIT = "amazon-ssm-agent.service"
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Whatever the host's network settings are, dockerd inside a machine changes none of them.
DOCKERD_SANDBOX_OPTIONS = (
    "--bridge=none",
    "--iptables=false",
    "--ip-masq=false",
    "--ip-forward=false",
)

_CGROUP_SHIM = """\
[Unit]
Description=tfbake sandbox: let runc write the v1 cgroup controllers nspawn mounts read-only
DefaultDependencies=no
Before=containerd.service docker.service
After=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for c in /sys/fs/cgroup/*/; do \
case "$c" in */unified/|*/systemd/) continue;; esac; \
mount -o remount,bind,rw "$c"; done'
"""
_SSH_SHIM = """\
[Unit]
# tfbake sandbox: machines share the host's network, where sshd would listen on port 22.
# Host keys are still made at first boot (cloud-init), which is what identity checks read.
ConditionPathExists=/run/tfbake-sandbox/sshd-may-listen
"""


def _docker_shim(cgroup_parent: str) -> str:
    return (
        "[Service]\n"
        "# tfbake sandbox: the machine shares the host's network namespace and sees /proc/sys\n"
        "# read-only, so dockerd must leave its configuration alone: no bridge, no iptables\n"
        "# rules, and no IP forwarding to turn on (dockerd dies where the host has it off).\n"
        "# Containers run in this machine's own cgroups.\n"
        f'Environment="DOCKER_OPTS={" ".join(DOCKERD_SANDBOX_OPTIONS)} '
        f'--cgroup-parent={cgroup_parent}"\n'
    )


class MachineError(Exception):
    """The machine could not be booted or entered; the message says why."""


@dataclass
class Machine:
    instance_id: str
    directory: Path  # holds root/, seed/, platform/ and console.log
    owner: str  # the sandbox's own tag in cgroup names: only its groups are ever removed
    # None: the host's network namespace (what the sandbox's instances use, so that a registry
    # on the host's loopback is reachable); a path (/run/netns/NAME): that namespace instead.
    network_namespace: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    leader: int | None = None  # the machine's PID 1, as the host sees it

    @property
    def root(self) -> Path:
        return self.directory / "root"

    @property
    def console(self) -> Path:
        return self.directory / "console.log"

    @property
    def cgroup(self) -> str:
        return f"{CGROUP_TOP}/{self.owner}-{self.instance_id}"

    def boot(self, user_data: bytes, hostname: str) -> None:
        """Start the machine; returns once its PID 1 exists (boot goes on in the background)."""
        self._write_seed(user_data, hostname)
        self._write_platform()
        self._ensure_cgroups()
        command = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--boot",
            f"--directory={self.root}",
            f"--machine={self.instance_id}",
            "--capability=all",
            "--system-call-filter=@keyring bpf",
            "--console=pipe",
            "--resolv-conf=copy-host",
            f"--bind-ro={self.directory / 'seed'}:/var/lib/cloud/seed/nocloud",
            f"--bind-ro={self.directory / 'platform'}:/run/systemd/system",
        ]
        if self.network_namespace is not None:
            command.append(f"--network-namespace-path={self.network_namespace}")
        # Joined to its own cgroups before exec: nspawn makes its groups below its own.
        procs = " ".join(
            f"{CGROUP_ROOT / h / self.cgroup / 'cgroup.procs'}" for h in _NSPAWN_HIERARCHIES
        )
        join = f'for f in {procs}; do echo $$ > "$f"; done; exec "$@"'
        console = self.console.open("ab")
        try:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", join, "sh", *command],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for the sandbox must not reach the machine,
                # which the sandbox powers off itself.
                start_new_session=True,
            )
        except FileNotFoundError:
            raise MachineError(
                "systemd-nspawn is missing: apt-get install systemd-container"
            ) from None
        finally:
            console.close()
        self.leader = self._wait_for_leader()

    def _wait_for_leader(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.console.read_text(errors="replace").strip().splitlines()[-3:]
                raise MachineError(f"systemd-nspawn exited at boot: {' | '.join(tail)}")
            try:
                pids = [int(pid) for pid in children.read_text().split()]
            except OSError:
                pids = []
            # nspawn's first child only prepares the machine and exits; the machine's PID 1 is
            # the child that is PID 1 in a namespace of its own.
            leader = next((pid for pid in pids if _is_namespace_init(pid)), None)
            if leader is not None:
                return leader
            time.sleep(0.02)
        raise MachineError(f"the machine of {self.instance_id} did not start in {timeout:g} s")

    def _write_seed(self, user_data: bytes, hostname: str) -> None:
        seed = self.directory / "seed"
        seed.mkdir(parents=True, exist_ok=True)
        (seed / "meta-data").write_text(
            f"instance-id: {self.instance_id}\nlocal-hostname: {hostname}\n"
        )
        # NoCloud needs the file even when the instance has no user data.
        (seed / "user-data").write_bytes(user_data or b"#cloud-config\n{}\n")

    def _write_platform(self) -> None:
        platform = self.directory / "platform"
        shutil.rmtree(platform, ignore_errors=True)
        (platform / "docker.service.d").mkdir(parents=True)
        (platform / "ssh.service.d").mkdir()
        shim = platform / "tfbake-sandbox-cgroups.service"
        shim.write_text(_CGROUP_SHIM)
        for unit in ("containerd.service", "docker.service"):
            wants = platform / f"{unit}.wants"
            wants.mkdir()
            (wants / shim.name).symlink_to(f"/run/systemd/system/{shim.name}")
        (platform / "docker.service.d/50-tfbake-sandbox.conf").write_text(
            _docker_shim(f"/{self.cgroup}/docker")
        )
        (platform / "ssh.service.d/50-tfbake-sandbox.conf").write_text(_SSH_SHIM)

    def _ensure_cgroups(self) -> None:
        for hierarchy in _NSPAWN_HIERARCHIES:
            (CGROUP_ROOT / hierarchy / self.cgroup).mkdir(parents=True, exist_ok=True)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def enter(
        self, argv: list[str], env: dict[str, str], unit: str | None = None, **popen: object
    ) -> subprocess.Popen:
        """Start `argv` inside the machine with exactly `env`.

        With `unit`, the process joins that service's cgroups first, as the service's own child
        would be: a process outside the machine's groups is one its systemd cannot stop, so a
        shutdown would wait for it. The join happens inside the machine's namespaces but from
        the host's cgroup namespace, where the machine's groups are below the process's own.
        """
        if self.leader is None or not self.is_running():
            raise MachineError(f"{self.instance_id} is not running")
        namespaces = ["--mount", "--uts", "--ipc", "--net", "--pid"]
        command = ["nsenter", f"--target={self.leader}", *namespaces, "--", "env", "-i"]
        command += [f"{key}={value}" for key, value in env.items()]
        if unit is not None:
            procs = " ".join(
                f"/sys/fs/cgroup/{h}/system.slice/{unit}/cgroup.procs" for h in _NSPAWN_HIERARCHIES
            )
            join = f'for f in {procs}; do echo $$ > "$f" || exit 125; done; exec "$@"'
            command += ["/bin/sh", "-c", join, "sh"]
        return subprocess.Popen([*command, *argv], start_new_session=True, **popen)  # type: ignore[call-overload]

    def unit_active(self, unit: str) -> bool:
        if not self.is_running():
            return False
        try:
            process = self.enter(
                ["systemctl", "is-active", "--quiet", unit],
                {"PATH": AGENT_PATH},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return process.wait(timeout=10) == 0
        except (MachineError, subprocess.TimeoutExpired):
            return False

    def power_off(self, timeout: float = 30.0) -> None:
        """A clean shutdown (nspawn asks the machine's systemd to halt); forced after `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.wait()
        self.release()

    def kill(self) -> None:
        # Killing the machine's PID 1 ends its whole PID namespace; nspawn then exits too.
        for pid in (self.leader, self.process.pid if self.process else None):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self.release()

    def release(self) -> None:
        """Remove what the machine left on the host: its cgroups and nspawn's lock files."""
        release_host_state(self.owner, self.instance_id, self.root)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _is_namespace_init(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1"
    return False


def release_host_state(owner: str, instance_id: str, root: Path) -> None:
    """Remove a stopped machine's cgroups (in every hierarchy) and any lock nspawn left."""
    name = f"{owner}-{instance_id}"
    for hierarchy in CGROUP_ROOT.iterdir():
        group = hierarchy / CGROUP_TOP / name
        if group.is_dir():
            _remove_cgroup_tree(group)
            # Fails while another machine's groups are still there, which is as it should be.
            with contextlib.suppress(OSError):
                (hierarchy / CGROUP_TOP).rmdir()
    # nspawn removes these when it exits normally; a killed nspawn leaves them behind.
    shutil.rmtree(_NSPAWN_PROPAGATE / instance_id, ignore_errors=True)
    try:
        info = root.stat()
        (_NSPAWN_LOCKS / f"inode-{info.st_dev}:{info.st_ino}").unlink(missing_ok=True)
    except OSError:
        pass


def _remove_cgroup_tree(group: Path) -> None:
    # Deepest first: a cgroup directory can be removed only once it has no children.
    children = [p for p in group.rglob("*") if p.is_dir()]
    for directory in sorted(children, key=lambda p: len(p.parts), reverse=True):
        _rmdir_retrying(directory)
    _rmdir_retrying(group)


def _rmdir_retrying(directory: Path) -> None:
    # A group's last process may still be exiting for a moment after the machine ended.
    for _ in range(50):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
