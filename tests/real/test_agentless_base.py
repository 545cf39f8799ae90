"""A base AMI without the SSM agent (as Debian's own): the bake fails fast and says why."""

from __future__ import annotations

import time
from pathlib import Path

from tests.real.conftest import bake_spec, ensure
from tests.support.images import push_busybox_image
from tests.support.real_sandbox import RealSandbox
from tests.support.registry import RegistryServer
from tfbake.bake.lock import LOCK_PREFIX
from tfbake.sandbox.moto_patches.base_images import debian_base_ami

# WaitForBuilderOnline's own timeout is 900 s; the console tells the cause long before.
FAST_ENOUGH_SECONDS = 180


def test_a_base_without_the_agent_fails_naming_the_missing_agent(
    real_sandbox: RealSandbox, real_registry: RegistryServer, tmp_path: Path
) -> None:
    image = push_busybox_image(real_registry, "no-agent", "1")
    spec = bake_spec(
        tmp_path,
        "real-no-agent",
        [image.reference(real_registry.host)],
        base_ami=debian_base_ami("debian-12-no-agent"),
    )

    started = time.monotonic()
    result = ensure(real_sandbox, spec)
    took = time.monotonic() - started

    assert result.code == 4, result.stderr[-3000:] + real_sandbox.log()[-3000:]
    assert "stopped at step WaitForBuilderOnline" in result.stderr
    assert "the SSM agent never started on builder i-" in result.stderr
    assert "install failed" in result.stderr
    assert took < FAST_ENOUGH_SECONDS
    locks = real_sandbox.client("ssm").describe_parameters()["Parameters"]
    assert [p["Name"] for p in locks if p["Name"].startswith(LOCK_PREFIX)] == []
    # The bake was stopped: its cancel workflow, or the client, terminated the builder.
    assert _builder_states(real_sandbox, "real-no-agent", until={"terminated"}) == {"terminated"}


def _builder_states(sandbox: RealSandbox, name: str, until: set[str]) -> set[str]:
    ec2 = sandbox.client("ec2")
    deadline = time.monotonic() + 60  # a real machine takes a few seconds to power off
    while True:
        reservations = ec2.describe_instances(
            Filters=[{"Name": "tag:tfbake:name", "Values": [name]}]
        )["Reservations"]
        states = {i["State"]["Name"] for r in reservations for i in r["Instances"]}
        if states == until or time.monotonic() > deadline:
            return states
        time.sleep(1)
