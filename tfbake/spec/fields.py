"""Typed fields read out of a spec's mapping, with errors that name the source, field and line."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

from tfbake.model.errors import SpecError

# ASCII digits, and few enough that int() never meets its 4,300-digit limit.
WHOLE_NUMBER_RE = re.compile(r"[0-9]{1,18}")


# A field's name -> the line it was written on, when the source has lines.
Locator = Callable[[str], int | None]


def nowhere(_name: str) -> int | None:
    return None


class Fields:
    """Reads typed fields out of a mapping, raising SpecErrors that name the source and field."""

    def __init__(
        self, data: Mapping[str, Any], source: str, locate: Locator, prefix: str = ""
    ) -> None:
        self.data = data
        self.source = source
        self.locate = locate
        self.prefix = prefix

    def error(self, name: str, message: str) -> SpecError:
        return SpecError(
            message, source=self.source, field=self.prefix + name, line=self.locate(name)
        )

    def reject_unknown(self, known: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(str(key), f"unknown field{hint}")

    @overload
    def string(self, name: str, default: str, *, required: bool = False) -> str: ...
    @overload
    def string(self, name: str, default: None = None, *, required: Literal[True]) -> str: ...
    @overload
    def string(self, name: str, default: None = None, *, required: bool = False) -> str | None: ...
    def string(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(name, "is required")
            return default
        if not isinstance(value, str):
            raise self.error(name, f"must be a string, got {kind_of(value)}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a list of strings")
        return tuple(value)

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name)
        # python-hcl2 turns a block into a one-element list of mappings.
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], Mapping):
            value = value[0]
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(name, f"must be a map, got {kind_of(value)}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.data.get(name, default)
        # Only ASCII digits: int() also reads Arabic-Indic digits, and a superscript passes
        # isdigit() yet fails int().
        if isinstance(value, str) and WHOLE_NUMBER_RE.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(
                name, f"must be a whole number from {low} to {high}, got {shown(value)}"
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {shown(value)}")
        return value

    def nested(self, name: str) -> Fields:
        outer = self.locate

        def locate(field: str) -> int | None:
            # A field of a block written on one line has no line of its own: the block's.
            return outer(field) or outer(name)

        return Fields(self.mapping(name), self.source, locate, f"{self.prefix}{name}.")


def shown(value: Any) -> str:
    """A value quoted in an error line, cut short: the line must stay readable."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def kind_of(value: Any) -> str:
    names = {dict: "a map", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    return names.get(type(value), type(value).__name__)
