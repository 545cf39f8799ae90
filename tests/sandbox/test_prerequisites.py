"""Real instances name each host setting they need in one line, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfbake.sandbox.machines.prerequisites import (
    INOTIFY_NEEDED,
    PrerequisiteMissing,
    check_prerequisites,
)


@pytest.fixture
def cgroups(tmp_path: Path) -> Path:
    for hierarchy in ("systemd", "unified"):
        (tmp_path / "cgroup" / hierarchy).mkdir(parents=True)
    return tmp_path / "cgroup"


def _limit(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "max_user_instances"
    path.write_text(value)
    return path


def test_a_host_with_what_machines_need_passes(cgroups: Path, tmp_path: Path) -> None:
    check_prerequisites(cgroups, _limit(tmp_path, "128\n"))


def test_a_missing_cgroup_hierarchy_is_named(cgroups: Path, tmp_path: Path) -> None:
    (cgroups / "unified").rmdir()
    with pytest.raises(PrerequisiteMissing, match=r"cgroup/unified hierarchy"):
        check_prerequisites(cgroups, _limit(tmp_path, "128"))


def test_too_few_inotify_instances_are_named_with_the_setting(
    cgroups: Path, tmp_path: Path
) -> None:
    with pytest.raises(PrerequisiteMissing) as raised:
        check_prerequisites(cgroups, _limit(tmp_path, "16"))
    message = str(raised.value)
    assert "fs.inotify.max_user_instances" in message and "the host has 16" in message
    assert "\n" not in message
    assert f"at least {INOTIFY_NEEDED}" in message
