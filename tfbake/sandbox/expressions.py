"""The runbook expression language the sandbox understands: `{{ ... }}` and output selectors.

Only the subset tfbake's runbook needs, with AWS's semantics where they matter: a value that
is exactly one placeholder keeps its type (a StringList stays a list, an Integer an int), a
placeholder inside longer text is replaced by its text form, and an unknown name is an error
rather than an empty string, as AWS rejects it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_:.\-]+)\s*\}\}")


class ExpressionError(Exception):
    """A placeholder or selector that cannot be resolved."""


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """`value` with every placeholder replaced, recursively through lists and maps."""
    if isinstance(value, str):
        return _substitute_text(value, variables)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value


def _substitute_text(text: str, variables: Mapping[str, Any]) -> Any:
    whole = _PLACEHOLDER.fullmatch(text.strip())
    if whole:
        return _lookup(whole.group(1), variables)

    def replace(match: re.Match[str]) -> str:
        found = _lookup(match.group(1), variables)
        if isinstance(found, list | dict):
            raise ExpressionError(f"{{{{ {match.group(1)} }}}} is not text and cannot be embedded")
        return text_of(found)

    return _PLACEHOLDER.sub(replace, text)


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name not in variables:
        raise ExpressionError(f"unable to resolve {{{{ {name} }}}}")
    return variables[name]


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def placeholders(value: Any) -> list[str]:
    """Every name referenced anywhere inside `value` (for document checks)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, list):
        return [name for item in value for name in placeholders(item)]
    if isinstance(value, dict):
        return [name for item in value.values() for name in placeholders(item)]
    return []


# A JSONPath subset: `$`, `.name`, `..name` (recursive descent), `[n]` and `[*]`.
_TOKEN = re.compile(r"\.\.([A-Za-z0-9_]+)|\.([A-Za-z0-9_]+)|\[(\d+|\*)\]")


def select(document: Any, selector: str) -> list[Any]:
    """Every value `selector` matches in `document`, in document order."""
    if not selector.startswith("$"):
        raise ExpressionError(f"selector {selector!r} does not start with $")
    rest = selector[1:]
    nodes = [document]
    position = 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if not match:
            raise ExpressionError(f"unsupported selector {selector!r} at {rest[position:]!r}")
        position = match.end()
        descend, child, index = match.groups()
        if descend:
            nodes = [found for node in nodes for found in _descendants(node, descend)]
        elif child:
            nodes = [node[child] for node in nodes if isinstance(node, dict) and child in node]
        elif index == "*":
            nodes = [item for node in nodes if isinstance(node, list) for item in node]
        else:
            i = int(index)
            nodes = [node[i] for node in nodes if isinstance(node, list) and i < len(node)]
    return nodes


def _descendants(node: Any, name: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        if name in node:
            found.append(node[name])
        for value in node.values():
            found.extend(_descendants(value, name))
    elif isinstance(node, list):
        for item in node:
            found.extend(_descendants(item, name))
    return found


def typed_output(values: list[Any], output_type: str, selector: str) -> Any:
    """Selected values as the declared output type (String, StringList, Integer, ...)."""
    if output_type == "StringList":
        return [text_of(v) for v in values]
    if output_type == "MapList":
        return list(values)
    if not values:
        raise ExpressionError(f"selector {selector} matched nothing")
    first = values[0]
    if output_type == "Integer":
        return int(first)
    if output_type == "Boolean":
        return first if isinstance(first, bool) else str(first).lower() == "true"
    if output_type == "StringMap":
        return first
    return text_of(first)
