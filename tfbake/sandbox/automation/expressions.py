"""The runbook expression language the sandbox understands: `{{ ... }}` and output selectors.

Only the subset tfbake's runbook needs, with AWS's semantics where they matter: a value that
is exactly one placeholder keeps its type (a StringList stays a list, an Integer an int), a
placeholder inside longer text is replaced by its text form, and an unknown name is an error
rather than an empty string, as AWS rejects it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tfbake.sandbox.ssm.values import text_of

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


def placeholders(value: Any) -> list[str]:
    """Every name referenced anywhere inside `value` (for document checks)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, list):
        return [name for item in value for name in placeholders(item)]
    if isinstance(value, dict):
        return [name for item in value.values() for name in placeholders(item)]
    return []


def select(document: Any, selector: str) -> list[Any]:
    """Every value the JSONPath `selector` matches in `document`, in document order (AWS's
    output selectors are JSONPath: `$.Images[0].State`, `$..InstanceId`, `[*]`)."""
    from jsonpath_ng import parse
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError

    if not selector.startswith("$"):
        raise ExpressionError(f"selector {selector!r} does not start with $")
    try:
        expression = parse(selector)
    except (JsonPathLexerError, JsonPathParserError) as err:
        raise ExpressionError(f"unsupported selector {selector!r}: {err}") from None
    return [match.value for match in expression.find(document)]


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
