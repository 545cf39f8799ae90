"""The Ansible part of an image set: validate the playbook's files and pack them reproducibly.

The files travel to the builder inside the bake's parameters (the builder accepts no inbound
connection), as base64 of a gzip-compressed tar. The tar is normalised (entries sorted, mtime,
owner and group zeroed, modes reduced to 0644/0755) so that the same files give the same bytes
on any machine, and its SHA-256 is the fingerprint input. The digest is taken over the tar, not
over the gzip stream, because compressed output may differ between zlib builds.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tfbake.model.chunks import ANSIBLE_BUNDLE, SLICE_CHARACTERS
from tfbake.model.image_set import Ansible
from tfbake.model.patterns import PLAYBOOK_RE

FIELDS = ("directory", "playbook", "files", "extra_vars")

# The bundle's base64 travels in the runbook's AnsibleBundle slots (tfbake/model/chunks.py):
# StartAutomationExecution takes at most 512 characters per parameter value.
CHUNK_CHARS = SLICE_CHARACTERS
CHUNK_COUNT = ANSIBLE_BUNDLE.slots
MAX_ENCODED_CHARS = ANSIBLE_BUNDLE.capacity
MAX_ARCHIVE_BYTES = MAX_ENCODED_CHARS // 4 * 3
# Extra vars travel as one automation parameter value.
MAX_EXTRA_VARS_CHARS = CHUNK_CHARS
# Read no more than this before compressing: a directory listed by mistake (a checkout with its
# .git) should fail fast rather than be read whole.
MAX_INPUT_BYTES = 16 * 1024 * 1024

VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class AnsibleFieldError(ValueError):
    """A problem with one field of the `ansible` map; the spec turns it into a SpecError."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def ansible_from_mapping(data: Mapping[str, Any], base_dir: Path) -> Ansible:
    """Validate the `ansible` map and pack its files; raises AnsibleFieldError."""
    for key in data:
        if key not in FIELDS:
            raise AnsibleFieldError(
                str(key), f"unknown field (expected one of {', '.join(FIELDS)})"
            )
    root = _directory(data.get("directory"), base_dir)
    playbook = _playbook(data.get("playbook"))
    members = _collect(_file_entries(data.get("files")), root)
    if playbook not in members:
        raise AnsibleFieldError(
            "playbook", f"{playbook!r} is not one of the files (nor inside a listed directory)"
        )
    tar = pack(members)
    archive = _gzip(tar)
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise AnsibleFieldError(
            "files",
            f"the Ansible bundle is {_kib(len(archive))} KB; at most {_kib(MAX_ARCHIVE_BYTES)} KB "
            f"travel as a parameter ({CHUNK_COUNT} automation parameter values of {CHUNK_CHARS} "
            "characters of base64); leave large files out or bake them into the base AMI",
        )
    return Ansible(
        playbook=playbook,
        digest="sha256:" + hashlib.sha256(tar).hexdigest(),
        extra_vars_json=_extra_vars(data.get("extra_vars")),
        archive=archive,
        files=tuple(sorted(members)),
    )


@dataclass(frozen=True)
class Member:
    """One file of the bundle as it was read: its bytes and whether it is executable."""

    data: bytes
    executable: bool


def pack(members: Mapping[str, Member]) -> bytes:
    """A tar of the files under their member names, identical for identical content."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            member = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(member.data)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            # Only executability survives: umask and checkout differences must not matter.
            info.mode = 0o755 if member.executable else 0o644
            tar.addfile(info, io.BytesIO(member.data))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # No name and mtime 0 in the gzip header, so the stream depends on the content only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as out:
        out.write(data)
    return buffer.getvalue()


def _directory(value: Any, base_dir: Path) -> Path:
    if value is None:
        return base_dir
    if not isinstance(value, str) or not value:
        raise AnsibleFieldError("directory", "must be a non-empty string")
    if "\0" in value:
        raise AnsibleFieldError("directory", f"{value!r} contains a NUL byte")
    root = base_dir / value  # an absolute value replaces base_dir
    # A relative directory stays inside the spec's own tree, symbolic links resolved: one that
    # climbs out (../../home/me) would pack files nobody reviewing the spec expects. Anywhere
    # else must be asked for on purpose, as an absolute path.
    if not Path(value).is_absolute() and not root.resolve().is_relative_to(base_dir.resolve()):
        raise AnsibleFieldError(
            "directory",
            f"{value!r} leads outside {str(base_dir)!r}; give an absolute path to use a "
            "directory elsewhere",
        )
    if not root.is_dir():
        raise AnsibleFieldError("directory", f"{str(root)!r} is not a directory")
    return root


def _playbook(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise AnsibleFieldError("playbook", "is required: the playbook's path among the files")
    name = _member_name("playbook", value)
    if not PLAYBOOK_RE.fullmatch(name):
        raise AnsibleFieldError(
            "playbook",
            f"{value!r} must be a relative path of letters, digits and _.@+- "
            "(no component starting with '.' or '-')",
        )
    return name


def _file_entries(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise AnsibleFieldError("files", "must be a list of paths (files or directories)")
    if not value:
        raise AnsibleFieldError("files", "is empty: list at least the playbook")
    return list(value)


def _member_name(field_name: str, text: str) -> str:
    """`text` as a path inside the bundle: relative, normalised, never above its root."""
    if "\0" in text or "\\" in text:
        raise AnsibleFieldError(field_name, f"{text!r} contains a NUL byte or a backslash")
    path = PurePosixPath(text)
    if path.is_absolute() or re.match(r"[A-Za-z]:", text):
        raise AnsibleFieldError(field_name, f"{text!r} is absolute; paths are relative")
    if ".." in path.parts:
        raise AnsibleFieldError(field_name, f"{text!r} contains '..'; paths stay inside")
    return path.as_posix()  # drops "./" and a trailing "/"


def _collect(entries: list[str], root: Path) -> dict[str, Member]:
    """Every regular file the entries name, by member name, read; directories are walked."""
    real_root = root.resolve()
    members: dict[str, Member] = {}
    total = 0
    for entry in entries:
        name = _member_name("files", entry)
        path = root / name
        if not path.exists() and not path.is_symlink():
            raise AnsibleFieldError("files", f"{entry!r} does not exist in {str(root)!r}")
        found = _walk(path, name) if path.is_dir() and not path.is_symlink() else [(name, path)]
        for member, source in found:
            if member in members:
                continue
            read = _read_inside(member, source, real_root, MAX_INPUT_BYTES - total)
            total += len(read.data)
            members[member] = read
    return members


def _walk(directory: Path, name: str) -> list[tuple[str, Path]]:
    found = []
    for current, dirnames, filenames in os.walk(directory, followlinks=False):
        here = Path(current)
        for dirname in dirnames:
            if (here / dirname).is_symlink():
                relative = (here / dirname).relative_to(directory).as_posix()
                _refuse_directory_link(PurePosixPath(name, relative).as_posix())
        for filename in filenames:
            relative = (here / filename).relative_to(directory).as_posix()
            member = relative if name == "." else f"{name}/{relative}"
            found.append((member, here / filename))
    return found


def _read_inside(member: str, source: Path, real_root: Path, budget: int) -> Member:
    """The file `source` names, opened once and checked as opened: the path may change
    between any look at it and the read (a file swapped for a link to a secret), so what is
    read is what was checked. Links inside the directory are followed by resolving them
    first; the resolved path is then opened without following any link (O_NOFOLLOW), and the
    file actually opened must be a regular file inside the directory.
    """
    try:
        return _read_checked(member, source, real_root, budget)
    except OSError as err:
        # Only a path that changed under the reader fails this way after the checks above.
        raise AnsibleFieldError(
            "files", f"{member!r} changed while it was read ({err.strerror})"
        ) from None


def _read_checked(member: str, source: Path, real_root: Path, budget: int) -> Member:
    real = source.resolve()
    if not real.is_relative_to(real_root):
        raise AnsibleFieldError("files", f"{member!r} leads outside the directory (to {real})")
    if real.is_dir():
        _refuse_directory_link(member)
    descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as opened:
        status = os.fstat(opened.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise AnsibleFieldError("files", f"{member!r} is not a regular file")
        where = _opened_path(opened.fileno(), real)
        if not where.is_relative_to(real_root):
            raise AnsibleFieldError("files", f"{member!r} leads outside the directory (to {where})")
        data = opened.read(budget + 1)
    if len(data) > budget:
        raise AnsibleFieldError("files", f"the files exceed {MAX_INPUT_BYTES // 1024 // 1024} MB")
    return Member(data, executable=bool(status.st_mode & 0o111))


def _opened_path(descriptor: int, fallback: Path) -> Path:
    """Where the open file really is (Linux names it in /proc/self/fd, through every
    directory swapped for a link on the way); elsewhere, the path that was opened."""
    try:
        return Path(f"/proc/self/fd/{descriptor}").readlink()
    except OSError:
        return fallback


def _refuse_directory_link(member: str) -> None:
    raise AnsibleFieldError(
        "files", f"{member!r} is a symbolic link to a directory; list its target instead"
    )


def _extra_vars(value: Any) -> str:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise AnsibleFieldError("extra_vars", "must be a map of variable names to values")
    for key in value:
        if not isinstance(key, str) or not VARIABLE_RE.fullmatch(key):
            raise AnsibleFieldError("extra_vars", f"{key!r} is not a valid Ansible variable name")
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise AnsibleFieldError("extra_vars", f"values must be plain JSON: {err}") from None
    if len(text) > MAX_EXTRA_VARS_CHARS:
        raise AnsibleFieldError(
            "extra_vars",
            f"are {len(text)} characters as JSON; at most {MAX_EXTRA_VARS_CHARS} travel as a "
            "parameter (put larger values in a vars file among the files)",
        )
    return text


def _kib(size: int) -> str:
    return f"{size / 1024:.1f}".removesuffix(".0")
