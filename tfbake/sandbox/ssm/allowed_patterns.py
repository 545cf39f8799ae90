"""allowedPattern as SSM's two regex engines take it, checked in the sandbox with Python's.

SSM checks a value against its parameter's allowedPattern at the API with Java's engine, and
the agent checks a Command document's values again with Go's RE2. Python's `re` agrees with
both on what a flat pattern matches, but not on which patterns work: Java recurses once per
repetition of a quantified group, so such a pattern overflows its stack on a long value (at
about 15 KB with JDK 17's default stack), and RE2 refuses a repetition count above 1000 and
every construct that needs backtracking. The sandbox refuses those patterns, so that a
document that would fail on AWS fails here first.
"""

from __future__ import annotations

import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    from re import _parser as sre_parse
else:  # pragma: no cover - Python 3.10
    import sre_parse

RE2_MAX_REPEAT = 1000
_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
_SINGLE_CHARACTER = {sre_parse.LITERAL, sre_parse.NOT_LITERAL, sre_parse.IN, sre_parse.ANY}
_NOT_IN_RE2 = {
    sre_parse.ASSERT: "lookaround",
    sre_parse.ASSERT_NOT: "lookaround",
    sre_parse.GROUPREF: "a backreference",
    sre_parse.GROUPREF_EXISTS: "a conditional group",
    sre_parse.ATOMIC_GROUP: "an atomic group",
    sre_parse.POSSESSIVE_REPEAT: "a possessive quantifier",
}


def pattern_problem(pattern: str, *, agent: bool) -> str | None:
    """Why SSM's engines would not take `pattern` (with `agent`: RE2's rules too), or None."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as err:
        return f"allowedPattern {pattern!r} is not a regular expression: {err}"
    return _problem(list(parsed), pattern, agent)


def _problem(items: list[tuple[Any, Any]], pattern: str, agent: bool) -> str | None:
    for op, av in items:
        if agent and op in _NOT_IN_RE2:
            return f"allowedPattern {pattern!r} uses {_NOT_IN_RE2[op]}, which Go's RE2 lacks"
        children: list[list[tuple[Any, Any]]] = []
        if op in _REPEATS or op == sre_parse.POSSESSIVE_REPEAT:
            low, high, body = av
            bounded = high != sre_parse.MAXREPEAT
            if agent and max(low, high if bounded else 0) > RE2_MAX_REPEAT:
                return (
                    f"allowedPattern {pattern!r} repeats more than {RE2_MAX_REPEAT} times, "
                    "which Go's RE2 refuses"
                )
            body_items = list(body)
            single = len(body_items) == 1 and body_items[0][0] in _SINGLE_CHARACTER
            if not single and (high > 1 or not bounded):
                return (
                    f"allowedPattern {pattern!r} repeats a group, which Java's regex engine "
                    "matches by recursion and overflows on long values: use character classes "
                    "and bounded repetition"
                )
            children.append(body_items)
        elif op == sre_parse.SUBPATTERN:
            children.append(list(av[-1]))
        elif op == sre_parse.BRANCH:
            children.extend(list(branch) for branch in av[1])
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            children.append(list(av[1]))
        elif op == sre_parse.ATOMIC_GROUP:
            children.append(list(av))
        for child in children:
            problem = _problem(child, pattern, agent)
            if problem:
                return problem
    return None


def value_problem(name: str, pattern: str, value: str, *, agent: bool) -> str | None:
    """Why `value` of parameter `name` fails `pattern` as SSM checks it, or None."""
    problem = pattern_problem(pattern, agent=agent)
    if problem:
        return f"Parameter {name}: {problem}"
    if not re.search(pattern, value):
        return f"Parameter {name}={_shown(value)} fails allowedPattern {pattern}"
    return None


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:197]}..."
