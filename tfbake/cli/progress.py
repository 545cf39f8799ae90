"""Showing a bake's progress: a live line on a terminal, plain lines elsewhere, or a log file.

`tfbake external` runs under Terraform, which hides a successful program's stderr, so its
progress goes to a log file users can `tail -f` (see docs/external.md for where it is).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from tfbake.model.bake_timing import BakeTiming, timing_lines
from tfbake.model.progress import Progress

LOG_FILE_ENV = "TFBAKE_LOG_FILE"
# Off a terminal (CI, the external log) a line is written at the first poll this long after the
# last one, so a long recipe step still shows the bake is alive and no-output timeouts do not trip.
HEARTBEAT_ENV = "TFBAKE_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 30.0


def heartbeat_seconds() -> float:
    configured = os.environ.get(HEARTBEAT_ENV, "")
    try:
        seconds = float(configured)
    except ValueError:
        return DEFAULT_HEARTBEAT_SECONDS
    return seconds if seconds > 0 else DEFAULT_HEARTBEAT_SECONDS


class Heartbeat:
    """Says when a line is due: at every change of step, and every `interval` seconds between."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = heartbeat_seconds() if interval is None else interval
        self.last_step: str | None = None
        self.last_at: float | None = None

    def due(self, progress: Progress) -> bool:
        now = time.monotonic()
        if (
            progress.step != self.last_step
            or self.last_at is None
            or now - self.last_at >= self.interval
        ):
            self.last_step, self.last_at = progress.step, now
            return True
        return False


def describe(progress: Progress) -> str:
    if progress.note:
        return progress.note
    minutes, seconds = divmod(int(progress.elapsed), 60)
    who = "attached to" if progress.attached else "baking"
    step = progress.step or "starting"
    text = (
        f"{who} {progress.execution_id}: step {progress.step_number}/{progress.step_count} "
        f"{step} ({minutes}m{seconds:02d}s)"
    )
    if progress.last_line:
        text += f": {progress.last_line[:120]}"
    return text


class StreamProgress:
    """Rewrites one live line on a terminal at every poll; off one, prints a line per change of
    step and a heartbeat line while a step runs."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.heartbeat = Heartbeat()
        self.last: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        text = describe(progress)
        if progress.note:
            self.stream.write(("\r\033[K" if self.live else "") + text + "\n")
            self.stream.flush()
            return
        self.last = progress
        if self.live:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()
        elif self.heartbeat.due(progress):
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.live and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()


def external_log_path() -> Path:
    configured = os.environ.get(LOG_FILE_ENV)
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tfbake" / "external.log"


class LogFileProgress:
    """Appends a timestamped line per change of step, and a heartbeat line while a step runs,
    to the external log file."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.heartbeat = Heartbeat()

    def __call__(self, progress: Progress) -> None:
        if progress.note or self.heartbeat.due(progress):
            self.write(describe(progress))

    def write_timing(self, timing: BakeTiming) -> None:
        """The bake's time breakdown, one log line per part."""
        for line in timing_lines(timing):
            self.write(line)

    def write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Owner-only: a failed bake's recipe output lands here.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as log:
                log.write(f"{stamp} [{os.getpid()}] {self.name}: {text}\n")
        except OSError:
            pass  # progress is a courtesy; an unwritable log must not fail the bake
