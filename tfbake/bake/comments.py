"""The shipped documents without their comments: comments are for the people who read the
source, and a change to one must not change the documents SSM runs.

The documents' bytes decide their names and the fingerprint's `recipe` input
(docs/fingerprint.md), so a comment fixed in recipe.sh or runbook.yaml would otherwise rebake
every AMI. Only whole-line comments go; text inside a shell here-document is content (a unit
file's comment is written to the disk) and stays, and so does a script's `#!` line.
"""

from __future__ import annotations

import re

_SHELL_COMMENT = re.compile(r"^[ \t]*#(?!!)")
# `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`; never `<<<` (a here-string is one line).
_HEREDOC = re.compile(r"(?<!<)<<(-?)[ \t]*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2(?!<)")
_YAML_COMMENT = re.compile(r"^[ \t]*#")


def without_shell_comments(script: str) -> str:
    kept: list[str] = []
    ends: list[tuple[str, bool]] = []  # here-documents open on the line just read
    for line in script.splitlines():
        if ends:
            word, dashed = ends[0]
            kept.append(line)
            if (line.lstrip("\t") if dashed else line) == word:
                ends.pop(0)
            continue
        if _SHELL_COMMENT.match(line):
            continue
        kept.append(line)
        ends.extend((match[3], match[1] == "-") for match in _HEREDOC.finditer(line))
    return "\n".join(kept) + "\n"


def without_yaml_comments(document: str) -> str:
    """Whole-line comments of a YAML document whose block scalars hold no line starting with
    '#' (the shipped documents; tests/bake/test_document_comments.py checks the parse)."""
    return "".join(
        line for line in document.splitlines(keepends=True) if not _YAML_COMMENT.match(line)
    )
