"""How long a bake took, part by part: the values, and the breakdown as lines of text.

bake/timing.py reads them from the execution and the recipe's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

LAUNCH, ONLINE, RECIPE, STOP, IMAGE, CLEANUP, COPIES = (
    "launch", "online", "recipe", "stop", "image", "cleanup", "copies",
)  # fmt: skip
PHASE_ORDER = (LAUNCH, ONLINE, RECIPE, STOP, IMAGE, CLEANUP, COPIES)
# The runbook's steps by phase; any other step (the failure path's) is cleanup.
STEP_PHASES: Mapping[str, str] = {
    "DescribeBaseImage": LAUNCH,
    "ChooseVolumeKey": LAUNCH,
    "LaunchBuilder": LAUNCH,
    "LaunchBuilderWithKmsKey": LAUNCH,
    "IdentifyBuilder": LAUNCH,
    "WaitForBuilderOnline": ONLINE,
    "RunRecipe": RECIPE,
    "StopBuilder": STOP,
    "CreateImage": IMAGE,
    "WaitForImage": IMAGE,
    "AssertImageAvailable": IMAGE,
    "TagImageExtra": IMAGE,
    "FindImageSnapshots": IMAGE,
    "TagSnapshots": IMAGE,
    "TagSnapshotsExtra": IMAGE,
    "TerminateBuilder": IMAGE,
    "MarkImageReady": IMAGE,
}


@dataclass(frozen=True)
class StepTime:
    name: str
    status: str
    started: float  # seconds since the epoch
    ended: float | None  # None while the step runs

    @property
    def phase(self) -> str:
        return STEP_PHASES.get(self.name, CLEANUP)

    @property
    def seconds(self) -> float:
        return (self.ended - self.started) if self.ended is not None else 0.0


@dataclass(frozen=True)
class RecipePart:
    """A part of the recipe it timed itself: the pull of one image, the Docker install."""

    kind: str  # "pull", "pulls" (all pulls, side by side) or "install"
    subject: str  # the pinned reference pulled, "all", or what was installed
    seconds: float


@dataclass(frozen=True)
class BakeTiming:
    execution_id: str
    started: float | None
    ended: float | None
    steps: tuple[StepTime, ...]
    recipe: tuple[RecipePart, ...] = ()
    copies_seconds: float | None = None  # the region copies, when this client made any

    @property
    def seconds(self) -> float:
        """The execution's span in AWS."""
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started

    @property
    def pulls(self) -> tuple[RecipePart, ...]:
        return tuple(part for part in self.recipe if part.kind == "pull")

    def phases(self) -> dict[str, float]:
        """Seconds per phase that ran, in the bake's order."""
        totals: dict[str, float] = {}
        for step in self.steps:
            totals[step.phase] = totals.get(step.phase, 0.0) + step.seconds
        if self.copies_seconds is not None:
            totals[COPIES] = self.copies_seconds
        return {phase: totals[phase] for phase in PHASE_ORDER if phase in totals}

    def with_copies(self, seconds: float) -> BakeTiming:
        return replace(self, copies_seconds=seconds)


def timing_lines(timing: BakeTiming) -> list[str]:
    """The breakdown as text: one line per phase, each pull under the recipe."""
    lines = [f"bake {timing.execution_id} took {_seconds(timing.seconds)} in AWS:"]
    for phase, seconds in timing.phases().items():
        lines.append(f"  {phase:<8} {_seconds(seconds):>8}")
        if phase == RECIPE:
            lines += [
                f"    {part.kind} {part.subject} {_seconds(part.seconds)}" for part in timing.recipe
            ]
    return lines


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s"
