"""Why a bake is (or is not) needed: the inputs that differ between two manifests (pure)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Inputs compared as whole values, in the order a person reads them.
SCALAR_INPUTS = ("base_ami", "architecture", "volume", "provision", "recipe", "salt", "name")
# Inputs that may hold secrets (a token in a provision command): shown by count, position and
# digest, never as text; the spec is where a person reads them.
UNSHOWN_INPUTS = frozenset({"provision"})


@dataclass(frozen=True)
class Change:
    input: str  # "images", "base_ami", ...
    subject: str  # the image for image changes, else ""
    old: Any
    new: Any

    @property
    def shown_old(self) -> Any:
        return _digests(self.old) if self.input in UNSHOWN_INPUTS else self.old

    @property
    def shown_new(self) -> Any:
        return _digests(self.new) if self.input in UNSHOWN_INPUTS else self.new

    def describe(self) -> str:
        if self.input in UNSHOWN_INPUTS:
            return f"{self.input}: {_commands(self.old)} -> {_commands(self.new)} ({_which(self)})"
        if self.input == "images":
            if self.old is None:
                return f"image {self.subject}: added ({self.new})"
            if self.new is None:
                return f"image {self.subject}: removed (was {self.old})"
            return f"image {self.subject}: {self.old} -> {self.new}"
        # Both sides bare or both quoted: `salt: "" -> 2` would read as two kinds of value.
        bare = _bare(self.old) and _bare(self.new)
        return f"{self.input}: {_show(self.old, bare)} -> {_show(self.new, bare)}"


@dataclass(frozen=True)
class Comparison:
    """A plan against the newest ready AMI of its image set, whatever that AMI's fingerprint."""

    fingerprint: str  # the plan's
    previous_ami_id: str | None  # None: no ready AMI of this image set
    previous_fingerprint: str
    recorded: bool  # whether the previous AMI's inputs were recorded (tfbake diff needs them)
    changes: tuple[Change, ...]

    @property
    def bake_needed(self) -> bool:
        return self.previous_fingerprint != self.fingerprint


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes = _image_changes(old.get("images", []), new.get("images", []))
    for key in SCALAR_INPUTS:
        if old.get(key) != new.get(key):
            changes.append(Change(key, "", old.get(key), new.get(key)))
    # Inputs a later scheme extension may add (present in one manifest only, or both).
    for key in sorted((set(old) | set(new)) - {"images", "scheme", *SCALAR_INPUTS}):
        if old.get(key) != new.get(key):
            changes.append(Change(key, "", old.get(key), new.get(key)))
    return changes


def _image_changes(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[Change]:
    before = {entry["image"]: entry["digest"] for entry in old}
    after = {entry["image"]: entry["digest"] for entry in new}
    return [
        Change("images", image, before.get(image), after.get(image))
        for image in sorted(before.keys() | after.keys())
        if before.get(image) != after.get(image)
    ]


def _bare(value: Any) -> bool:
    # Plain strings read best bare; an empty one would read as nothing at all.
    return isinstance(value, str) and value != ""


def _show(value: Any, bare: bool) -> str:
    return value if bare else json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _commands(value: Any) -> str:
    count = len(_as_list(value))
    return f"{count} command" + ("" if count == 1 else "s")


def _which(change: Change) -> str:
    old, new = _as_list(change.old), _as_list(change.new)
    changed = [
        str(i + 1)
        for i in range(max(len(old), len(new)))
        if (old[i] if i < len(old) else None) != (new[i] if i < len(new) else None)
    ]
    noun = "command" if len(changed) == 1 else "commands"
    return f"{noun} {', '.join(changed)} changed"


def _digests(value: Any) -> list[str]:
    """Each command as the sha256 of its text: comparable, not readable."""
    return ["sha256:" + hashlib.sha256(str(item).encode()).hexdigest() for item in _as_list(value)]
