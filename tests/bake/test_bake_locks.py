"""Every state of a bake lock converges: taken over once, released by its holder, cleared."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.bake.test_bake import executions, lock_exists
from tests.support.bakes import BASE, hold_lock, no_progress, plan_for
from tests.support.cli import run_tfbake
from tests.support.specs import write_spec
from tfbake.aws.calls import AwsContext
from tfbake.bake.request import image_name, lock_image_name, start_parameters
from tfbake.ensure import ensure
from tfbake.model.plan import Plan
from tfbake.sandbox import Sandbox

UNKNOWN_EXECUTION = "00000000-1111-2222-3333-444444444444"


def baked_then_revoked(aws: AwsContext) -> Plan:
    plan = plan_for(aws)
    ensure(plan, aws, on_progress=no_progress)
    assert run_tfbake("invalidate", plan.fingerprint.value).code == 0
    return plan


def test_a_rebake_attaches_to_the_start_of_a_client_that_died_before_recording_it(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = baked_then_revoked(aws)
    held = hold_lock(aws, plan.fingerprint.value)
    # The dead client started its bake (the revoked AMI still holds the plain name) and was
    # killed before recording the execution in the lock.
    name = lock_image_name(image_name(plan), held.token, unique=True)
    # Long enough that the next client meets the bake still running, and attaches to it.
    sandbox.delay_step("RunRecipe", 5)
    started = aws.client("ssm").start_automation_execution(
        DocumentName=_runbook(aws),
        Parameters=start_parameters(plan, "us-east-1", name),
        ClientToken=held.token,
    )["AutomationExecutionId"]
    time.sleep(1.1)  # the next client's clock reads a later second: the request must not change

    result = ensure(plan, aws, on_progress=no_progress)

    assert result.status == "found"  # attached to the dead client's bake: it baked, not us
    assert result.ami is not None and result.ami.ami_name == name
    assert len(executions(aws)) == 2
    assert started in {e["AutomationExecutionId"] for e in executions(aws)}
    assert not lock_exists(aws, plan.fingerprint.value)


def _runbook(aws: AwsContext) -> str:
    from tfbake.bake.documents import ensure_documents

    return ensure_documents(aws.client("ssm")).runbook


def test_a_lock_naming_an_execution_ssm_does_not_know_is_taken_over(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    hold_lock(aws, plan.fingerprint.value, UNKNOWN_EXECUTION)

    result = ensure(plan, aws, on_progress=no_progress)

    assert result.status == "baked"
    assert not lock_exists(aws, plan.fingerprint.value)


@pytest.mark.parametrize("execution_id", ["", UNKNOWN_EXECUTION], ids=["no-execution", "unknown"])
def test_cancel_of_a_spec_clears_a_lock_that_names_no_known_bake(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox, execution_id: str
) -> None:
    plan = plan_for(aws)
    hold_lock(aws, plan.fingerprint.value, execution_id)

    result = run_tfbake("cancel", str(write_spec(tmp_path, base_ami=BASE)))

    assert result.code == 0, result.stderr
    assert "released the lock" in result.stdout
    assert not lock_exists(aws, plan.fingerprint.value)


def test_racing_takeovers_of_a_stale_lock_start_one_bake(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = baked_then_revoked(aws)
    (finished,) = executions(aws)
    sandbox.delay_step("RunRecipe", 1)
    for _ in range(3):
        # A client that died after its bake ended, before releasing the lock.
        hold_lock(aws, plan.fingerprint.value, finished["AutomationExecutionId"])
        before = len(executions(aws))
        amis: list[str | None] = []
        errors: list[BaseException] = []

        threads = [threading.Thread(target=_forced_ensure, args=(plan, amis, errors))
                   for _ in range(8)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert len(executions(aws)) == before + 1
        assert len(set(amis)) == 1
        assert not lock_exists(aws, plan.fingerprint.value)


def _forced_ensure(plan: Plan, amis: list[str | None], errors: list[BaseException]) -> None:
    try:
        amis.append(ensure(plan, AwsContext(), on_progress=no_progress, force=True).ami_id)
    except BaseException as err:  # reported by the test, which asserts there were none
        errors.append(err)


def baked_by_a_client_killed_before_releasing(aws: AwsContext) -> Plan:
    """A finished bake whose lock is still held, as a client SIGKILLed at its end leaves it."""
    plan = plan_for(aws)
    ensure(plan, aws, on_progress=no_progress)
    (execution,) = executions(aws)
    hold_lock(aws, plan.fingerprint.value, execution["AutomationExecutionId"])
    return plan


def test_cleanup_releases_the_lock_a_killed_client_left_after_its_bake(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = baked_by_a_client_killed_before_releasing(aws)

    listed = json.loads(run_tfbake("--json", "cleanup").stdout)
    assert [entry["fingerprint"] for entry in listed["locks"]] == [plan.fingerprint.value]
    assert "is Success" in listed["locks"][0]["reason"]
    assert lock_exists(aws, plan.fingerprint.value)
    applied = run_tfbake("cleanup", "--apply")
    assert applied.code == 0, applied.stderr
    assert "released: 1 stale lock(s)" in applied.stdout
    assert not lock_exists(aws, plan.fingerprint.value)


def test_the_next_lookup_releases_the_lock_a_killed_client_left_after_its_bake(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = baked_by_a_client_killed_before_releasing(aws)

    result = ensure(plan, aws, on_progress=no_progress)

    assert result.status == "found"
    assert not lock_exists(aws, plan.fingerprint.value)


def test_a_token_started_with_other_builder_settings_is_attached_to(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    held = hold_lock(aws, plan.fingerprint.value)
    # Another spec of the same fingerprint (a bigger builder) started the bake of this lock.
    parameters = start_parameters(plan, "us-east-1", image_name(plan))
    parameters["InstanceType"] = ["t3.xlarge"]
    sandbox.delay_step("RunRecipe", 1)
    started = aws.client("ssm").start_automation_execution(
        DocumentName=_runbook(aws), Parameters=parameters, ClientToken=held.token,
        Tags=[{"Key": "tfbake:fingerprint", "Value": plan.fingerprint.value}],
    )["AutomationExecutionId"]  # fmt: skip

    result = ensure(plan, aws, on_progress=no_progress)

    assert result.status == "found"
    assert [e["AutomationExecutionId"] for e in executions(aws)] == [started]
    assert not lock_exists(aws, plan.fingerprint.value)
