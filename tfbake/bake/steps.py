"""The runbook's success path, read from the shipped YAML, for "step n of N" progress.

A light reader rather than a YAML parser: the runbook is ours, written one step per
`  - name:` block with `nextStep`/`isEnd` on their own lines, and a test compares this reader
with a real YAML parse so a reformatted runbook cannot silently break it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_STEP_RE = re.compile(r"^  - name: *(\S+)\s*$", re.MULTILINE)
_NEXT_RE = re.compile(r"^    nextStep: *(\S+)\s*$", re.MULTILINE)
_END_RE = re.compile(r"^    isEnd: *true\s*$", re.MULTILINE)


def success_path(runbook_text: str) -> list[str]:
    """Step names from the first step to the first that ends the run, following nextStep."""
    starts = list(_STEP_RE.finditer(runbook_text))
    order = [match[1] for match in starts]
    bodies = {
        match[1]: runbook_text[match.end() : starts[i + 1].start() if i + 1 < len(starts) else None]
        for i, match in enumerate(starts)
    }
    path: list[str] = []
    step = order[0] if order else None
    while step is not None and step not in path:
        path.append(step)
        body = bodies[step]
        if _END_RE.search(body):
            break
        explicit = _NEXT_RE.search(body)
        # A branch's default, like a step without nextStep, is the step written after it.
        position = order.index(step)
        step = (
            explicit[1]
            if explicit
            else (order[position + 1] if position + 1 < len(order) else None)
        )
    return path


@cache
def runbook_step_count() -> int:
    text = resources.files("tfbake.bake").joinpath("runbook.yaml").read_text(encoding="utf-8")
    return len(success_path(text))
