"""Real root file systems for the sandbox's base AMIs: Debian bookworm, built with debootstrap.

Three variants, built once and cached on disk, keyed by everything that went into them (the
package lists, the suite, the mirror and the files this module writes), so a change to any of
them builds a new root instead of reusing a stale one:

- `debian-12`: what Debian's own cloud image holds for a bake (systemd, dbus, openssh-server,
  cloud-init), without Docker, so the recipe's install path runs;
- `debian-12-docker`: the same with Debian's docker.io, the fast path;
- `debian-12-no-agent`: `debian-12` without the stand-in agent below, as Debian's own AMIs
  come: a bake from it exercises the builder's user data and the diagnosis of a builder that
  never comes online.

All are cleaned as a published image is: no machine-id, no SSH host keys, no package caches,
no journal. Debian ships no SSM agent package, so the other roots carry a stand-in unit named
`amazon-ssm-agent.service`: it does nothing but stay active, which is what the recipe and the
sandbox's DescribeInstanceInformation look for (the sandbox runs commands itself, as the agent
would). `python3 -m tfbake.sandbox.machines.roots` builds them all ahead of time.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("TFBAKE_SANDBOX_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE_ENV = "TFBAKE_SANDBOX_ROOTS"
DEFAULT_CACHE = Path("/var/cache/tfbake/sandbox-roots")
# python3-cffi-backend provides a virtual package cloud-init needs, which --include cannot pick.
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "cloud-init",
    "python3-cffi-backend", "ca-certificates",
)  # fmt: skip
DOCKER_PACKAGES = ("docker.io",)

STAND_IN_AGENT_UNIT = """\
[Unit]
Description=Stand-in for the Amazon SSM Agent (tfbake sandbox; Debian has no agent package)
Documentation=https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent.html
After=network.target

[Service]
# The sandbox runs each command inside this machine itself, as the agent would; this unit
# only stands where the agent's unit stands, so that whatever looks for the agent finds it.
ExecStart=/bin/sh -c 'echo "stand-in SSM agent: commands are run by the tfbake sandbox"; \
exec sleep infinity'
Restart=always

[Install]
WantedBy=multi-user.target
"""
# NoCloud is how the sandbox hands over user data; the machines share the host's network, so
# cloud-init must never configure it.
CLOUD_INIT_CONFIG = """\
datasource_list: [NoCloud, None]
network: {config: disabled}
# C.UTF-8 is built into libc: the default en_US.UTF-8 would need the locales package.
locale: C.UTF-8
"""
CLOUD_INIT_CONFIG_PATH = "etc/cloud/cloud.cfg.d/90-tfbake-sandbox.cfg"
AGENT_UNIT_PATH = "etc/systemd/system/amazon-ssm-agent.service"


@dataclass(frozen=True)
class Variant:
    name: str
    extra_packages: tuple[str, ...]
    ami_name_prefix: str  # what DescribeImages' name filter matches
    # False: no stand-in agent, as on Debian's own AMIs (the builder's user data must install
    # one, which it cannot here: the sandbox has no route to AWS's package buckets).
    stand_in_agent: bool = True

    @property
    def has_docker(self) -> bool:
        return bool(self.extra_packages)


VARIANTS = {
    "debian-12": Variant("debian-12", (), "debian-12-amd64"),
    "debian-12-docker": Variant(
        "debian-12-docker", DOCKER_PACKAGES, "tfbake-sandbox-debian-12-amd64-docker"
    ),
    "debian-12-no-agent": Variant(
        "debian-12-no-agent", (), "tfbake-sandbox-debian-12-amd64-no-agent", stand_in_agent=False
    ),
}


@dataclass(frozen=True)
class BuiltRoot:
    variant: Variant
    key: str
    root: Path
    built_at: str  # YYYYMMDD, as Debian dates its images

    @property
    def ami_name(self) -> str:
        # Debian's own form is debian-12-amd64-<date>-<build>; the build number here is derived
        # from the key, so a rebuilt root gets a new name.
        return f"{self.variant.ami_name_prefix}-{self.built_at}-{int(self.key[:4], 16)}"


class RootBuildError(Exception):
    """A root could not be built; the message says which command failed and how to fix it."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def build_key(variant: Variant) -> str:
    recipe = {
        "suite": SUITE,
        "mirror": MIRROR,
        "packages": [*BASE_PACKAGES, *variant.extra_packages],
        "agent_unit": STAND_IN_AGENT_UNIT if variant.stand_in_agent else None,
        "cloud_init": CLOUD_INIT_CONFIG,
        "builder": _builder_source_digest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _builder_source_digest() -> str:
    # The build steps below are part of what made a root: a change to them is a new key.
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def cached_root(variant: Variant, cache: Path | None = None) -> BuiltRoot | None:
    directory = (cache or cache_dir()) / f"{variant.name}-{build_key(variant)[:16]}"
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    return BuiltRoot(variant, data["key"], directory / "root", data["built_at"])


def ensure_root(variant: Variant, cache: Path | None = None, log=None) -> BuiltRoot:
    """The cached root of `variant`, built first when missing (one builder at a time)."""
    cache = cache or cache_dir()
    found = cached_root(variant, cache)
    if found:
        return found
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache / ".lock"):
        found = cached_root(variant, cache)
        if found:
            return found
        return _build(variant, cache, log or _stderr)


@contextlib.contextmanager
def _exclusive(path: Path):
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stderr(message: str) -> None:
    sys.stderr.write(f"tfbake sandbox: {message}\n")


def _build(variant: Variant, cache: Path, log) -> BuiltRoot:
    key = build_key(variant)
    final = cache / f"{variant.name}-{key[:16]}"
    work = cache / f".building-{variant.name}-{os.getpid()}"
    _remove_abandoned_builds(cache)
    root = work / "root"
    started = time.monotonic()
    log(f"building the {variant.name} root with debootstrap from {MIRROR} (once; cached)")
    try:
        _debootstrap(root)
        if variant.extra_packages:
            _install(root, variant.extra_packages)
        _add_sandbox_files(root, variant)
        _clean_like_a_published_image(root)
        built_at = time.strftime("%Y%m%d", time.gmtime())
        manifest = {"key": key, "variant": variant.name, "built_at": built_at, "suite": SUITE}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    except BaseException:
        _remove_build(work)
        raise
    log(f"built the {variant.name} root in {time.monotonic() - started:.0f} s: {final}")
    return BuiltRoot(variant, key, final / "root", built_at)


def _remove_abandoned_builds(cache: Path) -> None:
    """Work trees of builds whose process is gone (killed mid-build), with their mounts.

    Called under the cache's lock, so no live build of this machine is among them.
    """
    for work in cache.glob(".building-*"):
        pid = work.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists() or int(pid) == os.getpid():
            _remove_build(work)


def _remove_build(work: Path) -> None:
    # debootstrap mounts /proc (and sometimes /sys) in the new root while it runs; a build
    # killed in between leaves them mounted, and removing the tree must not reach into them.
    for mount in _mounts_under(work):
        subprocess.run(["umount", "--lazy", mount], check=False)
    shutil.rmtree(work, ignore_errors=True)


def _mounts_under(directory: Path) -> list[str]:
    prefix = f"{directory.resolve()}/"
    lines = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    points = [line.split()[1] for line in lines]
    # Octal escapes (\040 for a space) are how the kernel writes such characters here.
    decoded = [point.encode().decode("unicode_escape") for point in points]
    return sorted((p for p in decoded if p.startswith(prefix)), key=len, reverse=True)


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise RootBuildError(
            f"{what}: {err.filename} is missing (apt-get install debootstrap systemd-container)"
        ) from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RootBuildError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def _debootstrap(root: Path) -> None:
    packages = ",".join(BASE_PACKAGES)
    command = ["debootstrap", "--variant=minbase", f"--include={packages}", SUITE, str(root)]
    _run([*command, MIRROR], f"debootstrap {SUITE}")


def _install(root: Path, packages: tuple[str, ...]) -> None:
    # No service may start inside a chroot during the install (Debian's policy-rc.d), and
    # nothing is mounted into it, so nothing is left to unmount or stop afterwards.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        env = "DEBIAN_FRONTEND=noninteractive"
        apt = ["chroot", str(root), "env", env, "apt-get", "-q", "-y"]
        _run([*apt, "update"], "apt-get update in the new root")
        _run(
            [*apt, "install", "--no-install-recommends", *packages],
            f"apt-get install {' '.join(packages)} in the new root",
        )
    finally:
        policy.unlink(missing_ok=True)


def _add_sandbox_files(root: Path, variant: Variant) -> None:
    if variant.stand_in_agent:
        unit = root / AGENT_UNIT_PATH
        unit.write_text(STAND_IN_AGENT_UNIT)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / unit.name).unlink(missing_ok=True)
        (wants / unit.name).symlink_to(f"/{AGENT_UNIT_PATH}")
    config = root / CLOUD_INIT_CONFIG_PATH
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CLOUD_INIT_CONFIG)


def _clean_like_a_published_image(root: Path) -> None:
    # What Debian's cloud images hold before their first boot: identity is made at boot.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _run(["chroot", str(root), "apt-get", "clean"], "apt-get clean in the new root")
    for directory in ("var/lib/apt/lists", "var/log/journal"):
        path = root / directory
        for child in path.glob("*"):
            if child.name in ("partial", "lock"):
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for leftover in ("usr/sbin/policy-rc.d", "root/.bash_history"):
        (root / leftover).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tfbake.sandbox.machines.roots",
        description="Build (or find cached) the real-mode sandbox's Debian base roots.",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default ${CACHE_ENV} "
                        f"or {DEFAULT_CACHE}")  # fmt: skip
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=", ".join(sorted(VARIANTS)))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    try:
        for name in args.variants or sorted(VARIANTS):
            built = ensure_root(VARIANTS[name], args.cache_dir)
            sys.stdout.write(f"{built.ami_name}\t{built.root}\n")
    except RootBuildError as err:
        _stderr(f"error: {err}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
