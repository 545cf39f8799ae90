"""What a bake reports at each poll; the adapters decide how to show it (tfbake/cli/progress.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One poll of a bake, as the client reports it."""

    execution_id: str
    step: str
    step_number: int
    step_count: int
    elapsed: float
    attached: bool  # True when another client started this bake
    last_line: str = ""  # the recipe's last output line, when AWS has it
    # A line for the user about a decision on the way (a stale lock taken over); set alone.
    note: str = ""


ProgressSink = Callable[[Progress], None]


def note(text: str) -> Progress:
    """A progress report that is only a note: shown once, as it is, by every adapter."""
    return Progress("", "", 0, 0, 0.0, False, note=text)
