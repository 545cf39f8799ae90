"""A real bake, broken down: AWS's steps, the recipe's pulls, and tfbake's own overhead.

Bakes run on the sandbox's real machines (`tfbake sandbox --instances real`, here in-process so
that its request log counts the client's calls) from a Debian base without Docker, pulling
images of random layers from a real registry on loopback. Each bake prints its time by step
(from the execution's step start and end times, as `tfbake ensure --json` reports them) and
tfbake's overhead: the time outside AWS's steps (before the execution starts: plan, lookup, lock,
documents, start; after it ends: noticing the end, the final lookup), how late the end is noticed,
and the calls made per minute of waiting.

With --variants, candidate recipes (and one runbook change) bake the same images in the same
run, each against the shipped recipe as the baseline; the variants exist only in this process.

Run (root, like the real sandbox): python benchmarks/bench_bake.py [--runs 1] [--variants]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.images import push_busybox_image, random_layer  # noqa: E402
from tests.support.registry import start_registry  # noqa: E402
from tfbake.aws.calls import AwsContext  # noqa: E402
from tfbake.bake import documents  # noqa: E402
from tfbake.ensure import ensure  # noqa: E402
from tfbake.model.bake_timing import BakeTiming, timing_lines  # noqa: E402
from tfbake.model.progress import Progress  # noqa: E402
from tfbake.pipeline import plan_image_set  # noqa: E402
from tfbake.sandbox import Sandbox, start_sandbox  # noqa: E402
from tfbake.sandbox.moto_patches.base_images import debian_base_ami  # noqa: E402
from tfbake.spec.mapping import image_set_from_mapping  # noqa: E402

PROFILE = "tfbake-builder"
TARGET_OVERHEAD_SECONDS = 5.0
TARGET_NOTICED_SECONDS = 10.0
TARGET_CALLS_PER_MINUTE = 12.0


# ---- variants: the shipped recipe and runbook, changed in this process only -----------------


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    base: str = "debian-12"
    recipe: Callable[[str], str] = lambda text: text
    runbook: Callable[[str], str] = lambda text: text


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise SystemExit(f"bench_bake: the variant no longer applies: {old!r} not found once")
    return text.replace(old, new)


def _sequential_pulls(text: str) -> str:
    return _replace_once(
        text, '        timed_pull "$i" &\n', '        timed_pull "$i" &\n        wait $!\n'
    )


def _downloads(count: int) -> Callable[[str], str]:
    # The daemon's setting for the pulls only: set before them, removed after, so the image
    # keeps Docker's default.
    def change(text: str) -> str:
        before = (
            "mkdir -p /etc/docker\n"
            f"    printf '{{\"max-concurrent-downloads\": {count}}}\\n' >/etc/docker/daemon.json\n"
            "    systemctl restart docker.service\n"
            '    say "pulling ${#images[@]} images"\n'
        )
        text = _replace_once(text, '    say "pulling ${#images[@]} images"\n', "    " + before)
        return _replace_once(
            text,
            "tag_images() {\n",
            "tag_images() {\n"
            "    rm -f /etc/docker/daemon.json\n"
            "    systemctl restart docker.service\n",
        )

    return change


_USER_DATA = """#!/bin/sh
# Docker's install starts while the SSM agent registers; the recipe waits for cloud-init.
export DEBIAN_FRONTEND=noninteractive
command -v docker ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io; }
"""


def _install_in_user_data(text: str) -> str:
    encoded = base64.b64encode(_USER_DATA.encode()).decode()
    line = "      InstanceInitiatedShutdownBehavior: terminate\n"
    return text.replace(line, f"{line}      UserData: '{encoded}'\n")


VARIANTS = (
    Variant("current", "the shipped recipe (baseline)"),
    Variant(
        "preinstalled", "a base with Docker: the package install is skipped", "debian-12-docker"
    ),
    Variant("sequential", "one pull at a time", recipe=_sequential_pulls),
    Variant("downloads-1", "max-concurrent-downloads 1 during the pulls", recipe=_downloads(1)),
    Variant("downloads-10", "max-concurrent-downloads 10 during the pulls", recipe=_downloads(10)),
    Variant(
        "userdata-install",
        "Docker installed by the builder's user data, while the agent registers",
        runbook=_install_in_user_data,
    ),
)


_SHIPPED_TEMPLATE = documents._template


def use_variant(variant: Variant) -> None:
    """Make the documents this process renders those of `variant` (and so its fingerprint)."""

    def template(name: str) -> str:
        text = _SHIPPED_TEMPLATE(name)
        if name == documents.RECIPE_SCRIPT:
            return variant.recipe(text)
        if name == documents.RUNBOOK_TEMPLATE:
            return variant.runbook(text)
        return text

    documents._template = template
    documents.recipe_command_content.cache_clear()
    documents.runbook_content.cache_clear()


# ---- one bake --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    variant: str
    timing: BakeTiming
    wall: float  # from planning to the AMI returned
    before: float  # planning to the execution's start
    after: float  # the execution's end to the AMI returned
    noticed: float  # the execution's end to the poll that saw it
    calls_per_minute: float  # client calls between the start and the noticing poll
    polls_per_minute: float  # of them, GetAutomationExecution
    waiting_calls: tuple[str, ...]

    @property
    def overhead(self) -> float:
        """tfbake's own work outside AWS's steps; the wait for the end is `noticed`."""
        return self.before + self.after - self.noticed

    @property
    def gaps(self) -> float:
        """Time inside the execution between its steps: the automation service's own."""
        return self.timing.seconds - sum(step.seconds for step in self.timing.steps)


def bake(sandbox: Sandbox, references: list[str], variant: Variant, run: int) -> Measured:
    use_variant(variant)
    aws = AwsContext()
    spec = {
        "name": f"bench-bake-{variant.name}-{run}",
        "images": references,
        "base_ami": debian_base_ami(variant.base),
        "architecture": "x86_64",
        "volume": {"size": 8},
        "builder": {"instance_profile": PROFILE, "timeout_minutes": 20},
    }
    polls: list[tuple[float, float]] = []  # (monotonic, epoch) of each progress report

    def on_progress(_progress: Progress) -> None:
        polls.append((time.monotonic(), time.time()))

    sandbox.log.clear()
    started_epoch = time.time()
    plan = plan_image_set(image_set_from_mapping(spec), aws)
    result = ensure(plan, aws, on_progress=on_progress, force=True)
    ended_epoch = time.time()
    timing = result.timing
    if timing is None or timing.started is None or timing.ended is None:
        raise SystemExit(f"bench_bake: bake of {variant.name} reported no timing")
    noticed_at, noticed_epoch = polls[-1]
    calls = list(sandbox.log.calls)
    start_at = next(c.at for c in calls if c.action == "StartAutomationExecution")
    waiting = [c for c in calls if start_at < c.at <= noticed_at]
    minutes = (noticed_at - start_at) / 60
    return Measured(
        variant=variant.name,
        timing=timing,
        wall=ended_epoch - started_epoch,
        before=timing.started - started_epoch,
        after=ended_epoch - timing.ended,
        noticed=noticed_epoch - timing.ended,
        calls_per_minute=len(waiting) / minutes,
        polls_per_minute=sum(c.action == "GetAutomationExecution" for c in waiting) / minutes,
        waiting_calls=tuple(c.action for c in waiting),
    )


# ---- the run ---------------------------------------------------------------------------------


def push_images(registry: Any, count: int, layers: int, layer_mb: int) -> tuple[list[str], int]:
    references, compressed = [], 0
    for index in range(count):
        extra = [random_layer(layer_mb * 10**6, seed=index * 100 + n) for n in range(layers)]
        built = push_busybox_image(registry, f"bake/app{index}", "1", extra_layers=extra)
        references.append(built.reference(registry.host))
        compressed += built.compressed_bytes
    return references, compressed


def print_bake(measured: Measured) -> None:
    timing = measured.timing
    print(f"\n[{measured.variant}] " + "\n".join(timing_lines(timing)))
    for phase, seconds in timing.phases().items():
        print(f"  share of the bake: {phase} {seconds / timing.seconds:.2f}")
    print(
        f"  tfbake overhead {measured.overhead:.2f} s (before the execution "
        f"{measured.before:.2f} s, after it {measured.after - measured.noticed:.2f} s; target <= "
        f"{TARGET_OVERHEAD_SECONDS:g} s), {measured.overhead / timing.seconds:.3f} of the bake"
    )
    print(
        f"  end noticed {measured.noticed:.2f} s after the execution ended (target <= "
        f"{TARGET_NOTICED_SECONDS:g} s) at {measured.calls_per_minute:.1f} calls per minute of "
        f"waiting (target <= {TARGET_CALLS_PER_MINUTE:g}), {measured.polls_per_minute:.1f} of "
        f"them polls; between steps {measured.gaps:.2f} s"
    )
    counts = {a: measured.waiting_calls.count(a) for a in sorted(set(measured.waiting_calls))}
    print(f"  calls while waiting: {counts}")


def print_comparison(results: dict[str, list[Measured]]) -> None:
    """Medians per variant, each as a ratio to the shipped recipe's in this run."""

    def median_of(runs: list[Measured], value: Callable[[Measured], float]) -> float:
        return statistics.median(value(m) for m in runs)

    def bake_seconds(m: Measured) -> float:
        return m.timing.seconds

    def online_and_recipe(m: Measured) -> float:
        phases = m.timing.phases()
        return phases.get("online", 0.0) + phases.get("recipe", 0.0)

    def pulls(m: Measured) -> float:
        return next((p.seconds for p in m.timing.recipe if p.kind == "pulls"), 0.0)

    base = results["current"]
    print("\n| variant | bake | ratio | online + recipe | ratio | all pulls | ratio | what |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        runs = results.get(variant.name)
        if not runs:
            continue
        cells = []
        for value in (bake_seconds, online_and_recipe, pulls):
            seconds, baseline = median_of(runs, value), median_of(base, value)
            ratio = seconds / baseline if baseline else float("nan")
            cells += [f"{seconds:.1f} s", f"{ratio:.2f}"]
        print(f"| {variant.name} | {' | '.join(cells)} | {variant.what} |")
    every = [m for runs in results.values() for m in runs]
    print(
        f"\nover {len(every)} bakes: tfbake overhead median "
        f"{median_of(every, lambda m: m.overhead):.2f} s, max "
        f"{max(m.overhead for m in every):.2f} s;"
        f" end noticed median {median_of(every, lambda m: m.noticed):.2f} s, max "
        f"{max(m.noticed for m in every):.2f} s; calls per minute of waiting median "
        f"{median_of(every, lambda m: m.calls_per_minute):.1f}, max "
        f"{max(m.calls_per_minute for m in every):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="bakes per variant")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--layers", type=int, default=4, help="random layers per image")
    parser.add_argument("--layer-mb", type=int, default=10)
    parser.add_argument("--variants", action="store_true", help="also bake the candidates")
    parser.add_argument("--only", nargs="*", help="variants to bake (with --variants)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_bake: real machines need root")
    with tempfile.TemporaryDirectory(prefix="tfbake-bench-bake-") as scratch:
        registry = start_registry(Path(scratch) / "registry")
        sandbox = start_sandbox(instances="real", log=lambda m: print(f"# {m}", flush=True))
        try:
            os.environ.update(sandbox.environment())
            AwsContext().client("iam").create_instance_profile(InstanceProfileName=PROFILE)
            references, compressed = push_images(registry, args.images, args.layers, args.layer_mb)
            print(f"{len(references)} images, {compressed / 1e6:.0f} MB compressed")
            chosen = [v for v in VARIANTS if args.variants or v.name == "current"]
            if args.only:
                chosen = [v for v in chosen if v.name in {"current", *args.only}]
            results: dict[str, list[Measured]] = {}
            for run in range(args.runs):
                for variant in chosen:
                    measured = bake(sandbox, references, variant, run)
                    results.setdefault(variant.name, []).append(measured)
                    print_bake(measured)
            print_comparison(results)
        finally:
            sandbox.stop()
            registry.stop()


if __name__ == "__main__":
    main()
