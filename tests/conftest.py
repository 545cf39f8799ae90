"""Shared fixtures: one local AWS endpoint (the tfbake sandbox) per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.bakes import create_builder_profile
from tfbake.aws.calls import AwsContext
from tfbake.sandbox import Sandbox, start_sandbox

pytest_plugins = ["tests.support.registry"]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    server = start_sandbox()
    saved = {key: os.environ.get(key) for key in server.environment()}
    os.environ.update(server.environment())
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session's endpoint, emptied: each test starts from a fresh account, holding the
    instance profile the test specs' builders use."""
    sandbox_server.reset()
    create_builder_profile(AwsContext())
    return sandbox_server


@pytest.fixture
def aws(sandbox: Sandbox) -> AwsContext:
    """Clients for the fresh sandbox account, in its region."""
    return AwsContext()
