"""The bake's time, broken down: from the execution's step times and the recipe's timed lines.

Bakes run in the recorded sandbox, whose executor keeps each step's start and end as AWS does;
the recipe's lines come from running the real recipe under a scratch root.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.bakes import BASE, no_progress, plan_for
from tests.support.cli import external, run_tfbake
from tests.support.scratch_root import make_scratch_builder
from tests.support.specs import query, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.bake.steps import success_path
from tfbake.bake.timing import recipe_parts
from tfbake.ensure import ensure
from tfbake.model.errors import BakeFailed
from tfbake.sandbox import Sandbox

RECIPE_DELAY = 0.4
PHASES = ["launch", "online", "recipe", "stop", "image"]


def runbook_path() -> list[str]:
    from importlib import resources

    text = resources.files("tfbake.bake").joinpath("runbook.yaml").read_text(encoding="utf-8")
    return success_path(text)


def test_json_reports_each_step_grouped_into_phases_within_the_execution(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    sandbox.delay_step("RunRecipe", RECIPE_DELAY)
    result = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE)), "--json")
    assert result.code == 0, result.stderr
    timing = json.loads(result.stdout)["timing"]
    assert [s["name"] for s in timing["steps"]] == [
        step for step in runbook_path() if step != "LaunchBuilderWithKmsKey"
    ]
    phases = {phase["name"]: phase["seconds"] for phase in timing["phases"]}
    assert [phase["name"] for phase in timing["phases"]] == PHASES
    assert phases["recipe"] >= RECIPE_DELAY
    # The steps run one after another inside the execution's span.
    assert sum(s["seconds"] for s in timing["steps"]) <= timing["seconds"] + 0.01
    assert sum(phases.values()) == pytest.approx(
        sum(s["seconds"] for s in timing["steps"]), abs=0.01
    )


def test_verbose_prints_the_breakdown_on_stderr(tmp_path: Path, sandbox: Sandbox) -> None:
    result = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE)), "-v")
    assert result.code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("tfbake:   ")]
    assert [line.split()[1] for line in lines] == PHASES
    assert " took " in result.stderr
    # stdout stays the AMI id alone.
    assert result.stdout.strip().startswith("ami-")


def test_a_found_ami_has_no_breakdown(tmp_path: Path, sandbox: Sandbox) -> None:
    spec = str(write_spec(tmp_path, base_ami=BASE))
    assert run_tfbake("ensure", spec).code == 0
    again = run_tfbake("ensure", spec, "--json")
    assert json.loads(again.stdout)["timing"] is None


def test_the_failure_report_holds_the_steps_that_ran(aws: AwsContext, sandbox: Sandbox) -> None:
    sandbox.inject_failure("StopBuilder", "instance refused to stop")
    with pytest.raises(BakeFailed) as raised:
        ensure(plan_for(aws), aws, on_progress=no_progress)
    details = "\n".join(raised.value.breakdown)
    phases = [line.split()[0] for line in details.splitlines() if line.startswith("  ")]
    # Up to the failed step, then the failure path's steps.
    assert phases == ["launch", "online", "recipe", "stop", "cleanup"]


def test_the_external_log_gets_the_breakdown(tmp_path: Path, sandbox: Sandbox) -> None:
    log = tmp_path / "external.log"
    result = external(query(base_ami=BASE), env={"TFBAKE_LOG_FILE": str(log)})
    assert result.code == 0, result.stderr
    text = log.read_text()
    assert " took " in text
    for phase in PHASES:
        assert f"web:   {phase} " in text


def test_region_copies_are_timed_as_their_own_phase(aws: AwsContext, sandbox: Sandbox) -> None:
    result = ensure(plan_for(aws, regions=["eu-west-1"]), aws, on_progress=no_progress)
    assert result.timing is not None
    assert list(result.timing.phases()) == [*PHASES, "copies"]
    assert result.timing.phases()["copies"] > 0


def test_the_recipe_times_each_pull_in_lines_the_client_reads(tmp_path: Path) -> None:
    images = [
        "registry.example.com/web:1.0@sha256:" + "a" * 64,
        "registry.example.com/ops/agent@sha256:" + "b" * 64,
    ]
    run = make_scratch_builder(tmp_path).run(SSM_Images=" ".join(images))
    assert run.returncode == 0, run.output
    pulls = [part for part in recipe_parts(run.output) if part.kind == "pull"]
    assert sorted(part.subject for part in pulls) == sorted(images)
    assert all(0 <= part.seconds < 60 for part in pulls)
    (together,) = [part for part in recipe_parts(run.output) if part.kind == "pulls"]
    assert max(part.seconds for part in pulls) <= together.seconds


def test_the_recipe_times_a_docker_install(tmp_path: Path) -> None:
    builder = make_scratch_builder(tmp_path)
    builder.without("docker")
    run = builder.run(SSM_Images="registry.example.com/web:1.0@sha256:" + "a" * 64)
    assert run.returncode == 0, run.output
    assert [p.subject for p in recipe_parts(run.output) if p.kind == "install"] == ["docker"]


def test_the_waiting_client_polls_often_enough_to_notice_the_end_within_10_s(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    from tfbake.bake.runner import run_bake

    # The client's waits are shortened, not skipped: the bake still runs at its own pace.
    sandbox.delay_step("RunRecipe", 2.0)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.05)

    plan = plan_for(aws)
    run = run_bake(plan, aws, on_progress=no_progress, timeout_seconds=120, sleep=sleep)
    assert run.timing is not None
    assert len(waits) >= 5, waits
    # At most 10 s late, and at least 5 s apart once settled: <= 12 polls a minute.
    assert 5 <= max(waits) <= 10


def test_a_failed_bake_times_its_docker_install_once(tmp_path: Path) -> None:
    # The failure summary repeats the output's last lines, the install's timing among them.
    builder = make_scratch_builder(tmp_path)
    builder.without("docker")
    run = builder.run(
        SSM_Images="registry.example.com/web:1.0@sha256:" + "a" * 64,
        TFBAKE_TEST_FAILED_UNITS="docker.service",
    )
    assert run.returncode != 0
    assert run.output.count("tfbake: timed install docker") == 2, run.output
    assert [p.subject for p in recipe_parts(run.output) if p.kind == "install"] == ["docker"]
