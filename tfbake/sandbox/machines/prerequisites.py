"""What the real-instances mode needs of the host, checked before anything is started."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# program -> the Debian package that provides it
PROGRAMS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "nsenter": "util-linux",
    "chroot": "coreutils",
}


class PrerequisiteMissing(Exception):
    """The host cannot run real instances; the message says what to install or change."""


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteMissing(
            "real instances need root (systemd-nspawn); use --instances recorded without it"
        )
    missing = sorted(
        {package for program, package in PROGRAMS.items() if not shutil.which(program)}
    )
    if missing:
        raise PrerequisiteMissing(
            f"real instances need {', '.join(missing)}: apt-get install {' '.join(missing)}"
        )
    for hierarchy in ("systemd", "unified"):
        if not (Path("/sys/fs/cgroup") / hierarchy).is_dir():
            raise PrerequisiteMissing(
                f"real instances need the host's /sys/fs/cgroup/{hierarchy} hierarchy (a cgroup "
                "v1 host with the unified hierarchy beside it)"
            )
