"""The version ranges a module states, read without a library on tfbake's no-op path."""

from __future__ import annotations

import pytest

from tfbake.terraform.compatibility import satisfies


@pytest.mark.parametrize(
    ("version", "versions", "expected"),
    [
        ("0.2.0", ">= 0.2.0, < 0.3.0", True),
        ("0.2.9", ">=0.2.0,<0.3.0", True),
        ("0.3.0", ">= 0.2.0, < 0.3.0", False),
        ("0.1.9", ">= 0.2.0, < 0.3.0", False),
        ("0.2.0.dev3+local", ">= 0.2.0", True),
        ("1.0.0", "== 1.0.0", True),
        ("1.0.1", "<= 1.0.0", False),
        ("0.10.0", "> 0.9.0", True),  # numbers, not strings
    ],
)
def test_ranges(version: str, versions: str, expected: bool) -> None:
    assert satisfies(version, versions) is expected


@pytest.mark.parametrize("versions", ["", "~= 0.2", ">= 0.2", "0.2.0", ">= 0.2.0; < 1.0.0"])
def test_a_range_outside_the_grammar_is_refused(versions: str) -> None:
    with pytest.raises(ValueError):
        satisfies("0.2.0", versions)
