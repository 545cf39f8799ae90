"""Static evaluation of Terraform values as python-hcl2 8.x renders them.

python-hcl2, loaded with `strip_string_quotes=True` and `preserve_heredocs=True`, hands back
literals as Python values and everything else as text: a whole expression becomes "${...}", a
quoted string keeps its interpolations and its `$${` / `%%{` escapes as source text, and a
heredoc keeps its `<<EOT` markers. This module turns that back into plain values the way
Terraform would, as far as it can without a plan: literals and input variables only. Anything
else raises Unresolvable with a reason a user can act on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class Unresolvable(Exception):
    """A value that needs more than literals and input variables.

    Internal to discovery: it is caught and recorded as an Unresolved entry, never shown as
    an error, which is why it sits outside the tfbake error family.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NoValue:
    """Marks a declared variable that has no value from any source."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = NoValue()

# Identifiers, indices and numbers are ASCII: without re.ASCII, \d also matches Arabic-Indic
# digits and superscripts.
_NAME = r"[A-Za-z_][\w-]*"
_VAR_TRAVERSAL = re.compile(rf"var\.({_NAME})((?:\.{_NAME}|\[\d+\]|\[\"[^\"\\$%]*\"\])*)", re.ASCII)
_STEP = re.compile(rf"\.({_NAME})|\[(\d+)\]|\[\"([^\"]*)\"\]", re.ASCII)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
_HEREDOC = re.compile(rf"<<(-?)({_NAME})\n(?:(.*)\n)?[ \t]*\2", re.DOTALL | re.ASCII)
_FUNCTION_CALL = re.compile(rf"({_NAME}(?:::{_NAME})*)\s*\(", re.ASCII)
_REFERENCE = re.compile(rf"(?<![\w.])({_NAME})((?:\.{_NAME})*)", re.ASCII)
_LITERAL_KEYWORDS = {"true": True, "false": False, "null": None}


def evaluate(value: Any, variables: Mapping[str, Any]) -> Any:
    """The plain Python value of a python-hcl2 value; raises Unresolvable.

    `variables` maps every declared variable name to its value, or to NO_VALUE.
    """
    if isinstance(value, str):
        heredoc = _HEREDOC.fullmatch(value)
        if heredoc:
            return _template(_heredoc_body(heredoc), variables)
        return _template(value, variables)
    if isinstance(value, float):
        return normalise_number(value)
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(evaluate(item, variables))
            except Unresolvable as exc:
                raise Unresolvable(f"element {index}: {exc.reason}") from None
        return items
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if "${" in key:
                raise Unresolvable(f"computed map key {key}")
            try:
                result[key] = evaluate(item, variables)
            except Unresolvable as exc:
                raise Unresolvable(f"key {key}: {exc.reason}") from None
        return result
    return value  # None, bool, int


def normalise_number(number: float) -> int | float:
    # Terraform has one number type: 30.0 and 3e1 are the same value as 30.
    return int(number) if number.is_integer() else number


def _heredoc_body(match: re.Match[str]) -> str:
    lines = match.group(3).split("\n") if match.group(3) is not None else []
    if match.group(1) == "-":
        # `<<-` strips the smallest indentation of the non-blank lines, as HCL does.
        indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
        strip = min(indents, default=0)
        lines = [line[strip:] for line in lines]
    # A heredoc's value ends with the newline before its closing marker.
    return "".join(line + "\n" for line in lines)


def _template(text: str, variables: Mapping[str, Any]) -> Any:
    parts = _split_template(text)
    if len(parts) == 1 and parts[0][0] == "${":
        # A template that is one interpolation yields the value itself, list or map included.
        return _expression(parts[0][1], variables)
    pieces = []
    for kind, content in parts:
        if kind == "text":
            pieces.append(content)
        elif kind == "%{":
            raise Unresolvable("template directive")
        else:
            pieces.append(_as_string(_expression(content, variables), content))
    return "".join(pieces)


def _split_template(text: str) -> list[tuple[str, str]]:
    """Literal text, "${" interpolations and "%{" directives, with `$${` / `%%{` unescaped."""
    parts: list[tuple[str, str]] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith(("$${", "%%{"), index):
            literal.append(text[index + 1 : index + 3])
            index += 3
        elif text.startswith(("${", "%{"), index):
            end = _closing_brace(text, index + 2)
            if literal:
                parts.append(("text", "".join(literal)))
                literal = []
            parts.append((text[index : index + 2], text[index + 2 : end].strip()))
            index = end + 1
        else:
            literal.append(text[index])
            index += 1
    if literal or not parts:
        parts.append(("text", "".join(literal)))
    return parts


def _closing_brace(text: str, index: int) -> int:
    """Index of the `}` closing an interpolation opened before `index`, skipping strings."""
    depth = 0
    in_string = False
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
            elif text.startswith(("${", "%{"), index):
                index = _closing_brace(text, index + 2)
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    raise Unresolvable("unterminated interpolation")


def _expression(expression: str, variables: Mapping[str, Any]) -> Any:
    if expression in _LITERAL_KEYWORDS:
        return _LITERAL_KEYWORDS[expression]
    if _NUMBER.fullmatch(expression):
        if expression.lstrip("-").isdigit():
            return int(expression)
        return normalise_number(float(expression))
    traversal = _VAR_TRAVERSAL.fullmatch(expression)
    if traversal:
        return _variable(traversal.group(1), traversal.group(2), variables)
    raise Unresolvable(describe(expression))


def _variable(name: str, steps: str, variables: Mapping[str, Any]) -> Any:
    if name not in variables:
        raise Unresolvable(f"references undeclared variable var.{name}")
    value = variables[name]
    if value is NO_VALUE:
        raise Unresolvable(f"variable {name} has no value")
    for step in _STEP.finditer(steps):
        attribute, position, key = step.groups()
        try:
            value = value[int(position)] if position is not None else value[attribute or key]
        except (LookupError, TypeError):
            raise Unresolvable(f"var.{name}{steps} does not exist") from None
    return value


def _as_string(value: Any, expression: str) -> str:
    # Terraform converts only primitive values when it interpolates them into a string.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise Unresolvable(f"{expression} is not a string and cannot be interpolated")


def describe(expression: str) -> str:
    """Why an expression cannot be evaluated statically, in the user's terms."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # so quoted text is not read as code
    if re.match(r"[\[{]\s*for\s", code):
        return "for expression"
    call = _FUNCTION_CALL.match(code)
    if call:
        return f"function call {call.group(1)}()"
    if "?" in code:
        return "conditional expression"
    for reference in _REFERENCE.finditer(code):
        root, path = reference.group(1), reference.group(2).split(".")[1:]
        if not path:
            continue
        if root == "local":
            return f"references local.{path[0]}"
        if root == "module":
            return f"references module.{path[0]} output"
        if root == "data" and len(path) >= 2:
            return f"references data source data.{path[0]}.{path[1]}"
        if root == "var":
            return f"uses var.{path[0]} in an expression"
        if root in ("count", "each", "path", "terraform", "self"):
            return f"references {root}.{path[0]}"
        return f"references resource {root}.{path[0]}"
    call = _FUNCTION_CALL.search(code)
    if call:
        return f"function call {call.group(1)}()"
    return "expression"
