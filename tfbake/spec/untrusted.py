"""Reading text nobody vouched for: spec files and the Terraform query.

Everything here turns a hostile input into a ValueError with a message a user can act on, before
anything else sees the input: the size is bounded before reading, only regular files are opened
(a FIFO or a device would block or never end), JSON objects may not repeat a key, nesting is
bounded (the parsers and everything after them recurse), and no string may hold a lone
surrogate (UTF-8 cannot encode one, so it would fail wherever it is written, AWS calls included).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# A spec or a query is a few kilobytes; every value travels in SSM parameters of at most 512
# characters, so this leaves room for comments and layout and still refuses a mistake early.
MAX_INPUT_BYTES = 1024 * 1024
# Deeper than any spec needs (Ansible extra vars are the deepest part), shallow enough that no
# recursive step after parsing reaches Python's recursion limit.
MAX_NESTING = 32


def read_text_file(path: Path, limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; raises OSError or ValueError."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. The type is then
    # checked on the descriptor itself, so a file swapped after a stat cannot slip through.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as file:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file ({_kind_of(mode)})")
        os.set_blocking(descriptor, True)
        data = file.read(limit + 1)
    return decode_bounded(data, limit)


def decode_bounded(data: bytes, limit: int = MAX_INPUT_BYTES) -> str:
    if len(data) > limit:
        raise ValueError(f"larger than {limit // 1024 // 1024} MB ({limit:,} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text (byte {err.start})") from None


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} is given twice")
        self.key = key


def loads_json(text: str) -> Any:
    """json.loads, refusing repeated keys and deep nesting; raises json.JSONDecodeError or
    ValueError."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_NESTING} levels deep") from None
    check_plain(value)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def check_plain(value: Any) -> None:
    """Refuse nesting deeper than MAX_NESTING and strings holding lone surrogates.

    Iterative, so that it cannot itself run out of stack on what it is meant to refuse.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _refuse_surrogates(item)
        elif isinstance(item, Mapping | list | tuple):
            if depth >= MAX_NESTING:
                raise ValueError(f"nested more than {MAX_NESTING} levels deep")
            if isinstance(item, Mapping):
                for key, child in item.items():
                    pending.append((key, depth + 1))
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)


def _refuse_surrogates(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"a string holds a lone surrogate (U+{ord(text[err.start]):04X}), which is no character"
        ) from None


def _kind_of(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a file")
