"""What the real-instances mode needs of the host, checked before anything is started.

Each check fails with one line naming the setting and what to do. The sandbox never changes a
host setting itself. What the machines do not depend on, and why:

- IP forwarding and every other network sysctl: the machines share the host's network
  namespace and see /proc/sys read-only, so their dockerd runs with forwarding, bridges,
  iptables and masquerading off (machine.DOCKERD_SANDBOX_OPTIONS) and writes none of them.
- Kernel modules: nothing is loaded; without the overlay file system a machine's Docker falls
  back to its vfs driver (slower and larger copies, the same images).
- /run as a tmpfs or not: nspawn's lock and propagation directories there are removed when a
  machine is released, whichever it is. A machine's own /run is nspawn's tmpfs.
- Loop devices and block devices: roots and snapshots are plain directory trees.
"""

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
CGROUP_ROOT = Path("/sys/fs/cgroup")
# A booted machine's systemd, journald, logind and dbus hold about six inotify instances, all
# counted against root's limit on the host: room for a handful of machines at once.
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_NEEDED = 48


class PrerequisiteMissing(Exception):
    """The host cannot run real instances; the message says what to install or change."""


def check_prerequisites(
    cgroup_root: Path = CGROUP_ROOT, inotify_limit: Path = INOTIFY_LIMIT
) -> None:
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
        if not (cgroup_root / hierarchy).is_dir():
            raise PrerequisiteMissing(
                f"real instances need the host's {cgroup_root / hierarchy} hierarchy (a cgroup "
                "v1 host with the unified hierarchy beside it)"
            )
    _check_inotify(inotify_limit)


def _check_inotify(limit_file: Path) -> None:
    try:
        limit = int(limit_file.read_text())
    except (OSError, ValueError):
        return  # a kernel without the setting has no such limit
    if limit < INOTIFY_NEEDED:
        raise PrerequisiteMissing(
            f"real instances need fs.inotify.max_user_instances of at least {INOTIFY_NEEDED} "
            f"(each machine's systemd holds several; the host has {limit}): "
            f"sysctl -w fs.inotify.max_user_instances={INOTIFY_NEEDED * 4}"
        )
