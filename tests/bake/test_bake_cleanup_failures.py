"""When cleanup itself fails: the client's timeout, its lock release, the runbook's failure path."""

from __future__ import annotations

import time

import pytest

from tests.bake.test_bake import live_builders, lock_exists
from tests.support.bakes import no_progress, plan_for
from tfbake.aws.calls import AwsContext
from tfbake.bake.runner import run_bake
from tfbake.ensure import ensure
from tfbake.model.errors import BakeFailed, BakeTimedOut
from tfbake.sandbox import Sandbox


def test_the_timeout_holds_while_polling_is_throttled(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    sandbox.delay_step("RunRecipe", 60)
    sandbox.throttle("GetAutomationExecution", 100_000)
    started = time.monotonic()
    with pytest.raises(BakeTimedOut, match="throttled"):
        run_bake(plan, aws, on_progress=no_progress, timeout_seconds=3)
    assert time.monotonic() - started < 15
    sandbox.clear_faults()


def test_a_failed_lock_release_after_a_good_bake_is_still_success(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    sandbox.deny("DeleteParameter", times=1)
    result = ensure(plan, aws, on_progress=no_progress)
    assert result.status == "baked"
    # Left behind, stale: the next bake takes it over and `tfbake cleanup` releases it.
    assert lock_exists(aws, plan.fingerprint.value)


def test_a_builder_the_failure_path_left_running_is_terminated_by_the_client(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    sandbox.inject_failure("RunRecipe", "pull failed")
    sandbox.inject_failure("FindBuilderOnFailure", "UnauthorizedOperation: DescribeInstances")
    with pytest.raises(BakeFailed, match=r"left builder i-\w+ running; tfbake terminated it"):
        ensure(plan, aws, on_progress=no_progress)
    assert live_builders(aws) == []


def test_a_builder_the_client_cannot_terminate_is_named(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    sandbox.inject_failure("RunRecipe", "pull failed")
    sandbox.inject_failure("FindBuilderOnFailure", "UnauthorizedOperation: DescribeInstances")
    sandbox.deny("TerminateInstances", times=1)
    with pytest.raises(BakeFailed) as caught:
        ensure(plan, aws, on_progress=no_progress)
    (builder,) = live_builders(aws)
    assert f"its builder {builder} is still running" in caught.value.message


def test_a_builder_the_failure_path_cannot_list_yet_is_found_on_a_later_attempt(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    sandbox.inject_failure("RunRecipe", "pull failed")
    # EC2's eventual consistency: the first read of the failure path does not list the builder.
    sandbox.not_found_reads("FindBuilderOnFailure", 1)
    with pytest.raises(BakeFailed) as caught:
        ensure(plan, aws, on_progress=no_progress)
    assert "left builder" not in caught.value.message  # the runbook terminated it itself
    assert live_builders(aws) == []
