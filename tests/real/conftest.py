"""Real instances: a sandbox whose instances are booted systemd machines, and a registry.

One sandbox process and one registry serve the whole package: booting the sandbox costs a few
seconds (minutes once, while the Debian roots are built), and every test here works in its own
image set, so they never see each other's AMIs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.real_sandbox import RealSandbox, start_real_sandbox
from tests.support.registry import RegistryServer, start_registry


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="package")
def real_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSandbox]:
    base = tmp_path_factory.mktemp("real-sandbox")
    sandbox = start_real_sandbox(base / "state", base / "sandbox.log")
    profiles = sandbox.client("iam")
    profiles.create_instance_profile(InstanceProfileName="tfbake-builder")
    yield sandbox
    code = sandbox.stop()
    assert code == 0, sandbox.log()[-3000:]


@pytest.fixture(scope="package")
def real_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("real-registry") / "registry")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def state_dir(real_sandbox: RealSandbox) -> Path:
    return real_sandbox.state_dir
