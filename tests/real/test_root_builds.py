"""A root build killed midway leaves its work tree, with debootstrap's mounts in it: the next
build removes both, and only those of builds whose process is gone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tfbake.sandbox.machines.roots import _mounts_under, _remove_abandoned_builds


def test_an_abandoned_build_is_unmounted_and_removed(tmp_path: Path) -> None:
    gone_pid = _exited_pid()
    abandoned = tmp_path / f".building-debian-12-{gone_pid}" / "root" / "proc"
    abandoned.mkdir(parents=True)
    live = tmp_path / f".building-debian-12-{os.getppid()}"
    live.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tfbake-test", str(abandoned)], check=True)
    try:
        _remove_abandoned_builds(tmp_path)
        assert _mounts_under(tmp_path) == []
        assert not abandoned.parent.parent.exists()
        assert live.exists()  # its process still runs
    finally:
        if _mounts_under(tmp_path):
            subprocess.run(["umount", "--lazy", str(abandoned)], check=False)


def _exited_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
