"""A machine's Docker starts whatever the host's network settings are, and changes none of them.

The sandbox's machines share the host's network namespace and see /proc/sys read-only. A fresh
host has IPv4 forwarding off; a dockerd that tries to turn it on dies. The machine here runs in a
network namespace of this test's own with forwarding off, so the test does not depend on how
the host happens to be set, and never changes the host.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfbake.sandbox.machines.machine import AGENT_PATH, Machine
from tfbake.sandbox.machines.roots import VARIANTS, ensure_root

FORWARDING = "/proc/sys/net/ipv4/ip_forward"


@pytest.fixture
def namespace_without_forwarding() -> Iterator[Path]:
    name = f"tfbake-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # A new namespace may inherit the host's value: set it in this namespace alone.
        subprocess.run(
            ["ip", "netns", "exec", name, "sh", "-c", f"echo 0 >{FORWARDING}"], check=True
        )
        yield Path("/run/netns") / name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def _forwarding_in(namespace: Path) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", namespace.name, "cat", FORWARDING],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _run_inside(machine: Machine, *argv: str, timeout: float = 120) -> tuple[int, str]:
    process = machine.enter(
        list(argv),
        {"PATH": AGENT_PATH},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output.decode(errors="replace")


def _wait_until_booted(machine: Machine, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        _, state = _run_inside(machine, "systemctl", "is-system-running")
        if state.strip() in ("running", "degraded"):
            return
        time.sleep(0.5)
    pytest.fail(f"the machine did not finish booting in {timeout:g} s: {state.strip()}")


def test_docker_starts_in_a_machine_whose_network_has_forwarding_off(
    namespace_without_forwarding: Path, tmp_path: Path
) -> None:
    source = ensure_root(VARIANTS["debian-12-docker"]).root
    machine = Machine(
        "i-0f0000000000000a1",
        tmp_path / "machine",
        owner=f"test{os.getpid()}",
        network_namespace=namespace_without_forwarding,
    )
    machine.directory.mkdir()
    subprocess.run(["cp", "-a", str(source), str(machine.root)], check=True)
    try:
        machine.boot(b"", hostname="forwarding-off")
        _wait_until_booted(machine)
        code, output = _run_inside(machine, "systemctl", "start", "docker.service")
        if code != 0:
            _, journal = _run_inside(
                machine, "journalctl", "-u", "docker.service", "--no-pager", "-n", "20"
            )
            pytest.fail(f"docker.service did not start:\n{output}\n{journal}")
        code, output = _run_inside(machine, "docker", "info", "--format", "{{.ServerVersion}}")
        assert code == 0, output
        assert _forwarding_in(namespace_without_forwarding) == "0"
    finally:
        machine.power_off()
        machine.remove()
