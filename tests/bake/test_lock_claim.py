"""The bake lock under attack: lost answers, clients with wrong clocks, values tfbake did not
write, a lock naming another image set's bake. Each ends in one bake and no lock left behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.bake.test_bake import executions, lock_exists
from tests.support.bakes import BASE, hold_lock, no_progress, plan_for
from tests.support.cli import run_tfbake
from tests.support.proxy import LoopbackProxy
from tests.support.specs import write_spec
from tfbake.aws.calls import AwsContext
from tfbake.aws.manifests import load_manifest
from tfbake.bake.lock import GUARD_SUFFIX, LOCK_PREFIX
from tfbake.ensure import ensure
from tfbake.model.plan import Plan
from tfbake.sandbox import Sandbox


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[LoopbackProxy]:
    relay = LoopbackProxy(upstream=f"{sandbox.host}:{sandbox.port}").start()
    yield relay
    relay.stop()


def through(proxy: LoopbackProxy) -> dict[str, str | None]:
    return {"AWS_ENDPOINT_URL": f"http://{proxy.host}"}


def put_lock_value(aws: AwsContext, plan: Plan, value: str) -> None:
    aws.client("ssm").put_parameter(
        Name=LOCK_PREFIX + plan.fingerprint.value, Value=value, Type="String"
    )


# ---- answers lost on the way back --------------------------------------------------------


def test_a_start_whose_answer_was_lost_is_resumed_by_the_next_client_not_baked_twice(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox, proxy: LoopbackProxy
) -> None:
    plan = plan_for(aws)
    spec = write_spec(tmp_path, base_ami=BASE)
    proxy.lose_answer = lambda _method, target, _body: target.endswith("StartAutomationExecution")
    sandbox.delay_step("RunRecipe", 15)  # the next client comes while the bake runs

    first = run_tfbake("ensure", str(spec), env=through(proxy))

    assert first.code == 7, first.stderr
    assert proxy.lost >= 1
    assert len(executions(aws)) == 1  # AWS started it; only the answer was lost
    assert lock_exists(aws, plan.fingerprint.value)  # kept with its token, for the next client
    ssm = aws.client("ssm")
    assert load_manifest(ssm, plan.fingerprint.value, "us-east-1") is not None

    second = ensure(plan, aws, on_progress=no_progress)

    assert second.status == "found"  # it attached to the one bake the token started
    assert len(executions(aws)) == 1
    assert not lock_exists(aws, plan.fingerprint.value)


def _records_the_execution(method: str, target: str, body: bytes) -> bool:
    """The write of the execution id into the lock (not the lock's creation, not its guard)."""
    if not target.endswith("PutParameter"):
        return False
    request = json.loads(body)
    name = request.get("Name", "")
    if not name.startswith(LOCK_PREFIX) or name.endswith(GUARD_SUFFIX):
        return False
    try:
        return bool(json.loads(request.get("Value", "")).get("execution_id"))
    except (ValueError, AttributeError):
        return False


def test_a_lost_answer_to_recording_the_execution_neither_fails_nor_doubles_the_bake(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox, proxy: LoopbackProxy
) -> None:
    plan = plan_for(aws)
    spec = write_spec(tmp_path, base_ami=BASE)
    proxy.lose_answer = _records_the_execution

    first = run_tfbake("ensure", str(spec), env=through(proxy))

    assert proxy.lost >= 1
    assert first.code == 0, first.stderr
    second = ensure(plan, aws, on_progress=no_progress)
    assert second.status == "found"
    assert len(executions(aws)) == 1
    assert not lock_exists(aws, plan.fingerprint.value)


# ---- clocks: ages are AWS's ----------------------------------------------------------------


def _faketime() -> str:
    # A missing prerequisite fails the test, naming what to install: never a silent skip.
    found = shutil.which("faketime")
    if found is None:
        pytest.fail("faketime is missing: apt-get install faketime", pytrace=False)
    return found


def _spawn_under_clock(offset: str, spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [_faketime(), "-f", offset, sys.executable, "-m", "tfbake", "ensure", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _guard(aws: AwsContext, plan: Plan) -> str:
    return LOCK_PREFIX + plan.fingerprint.value + GUARD_SUFFIX


def test_a_client_two_minutes_fast_waits_for_a_live_guard(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    ssm = aws.client("ssm")
    # A stale lock, which the client must take over under the guard another client holds.
    hold_lock(aws, plan.fingerprint.value, "00000000-1111-2222-3333-444444444444")
    ssm.put_parameter(Name=_guard(aws, plan), Value="another-client/1", Type="String")

    client = _spawn_under_clock("+2m", write_spec(tmp_path, base_ami=BASE))
    try:
        time.sleep(4)
        held = ssm.get_parameter(Name=_guard(aws, plan))["Parameter"]["Value"]
        assert held == "another-client/1"  # not taken for abandoned: it is 4 s old on AWS
        assert client.poll() is None
        ssm.delete_parameter(Name=_guard(aws, plan))
        _, stderr = client.communicate(timeout=120)
    finally:
        client.kill()
    assert client.returncode == 0, stderr
    assert len(executions(aws)) == 1


def test_a_client_three_hours_slow_takes_over_an_abandoned_guard(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    ssm = aws.client("ssm")
    hold_lock(aws, plan.fingerprint.value, "00000000-1111-2222-3333-444444444444")
    ssm.put_parameter(Name=_guard(aws, plan), Value="a-dead-client/1", Type="String")
    _age_parameter(_guard(aws, plan), timedelta(minutes=5))

    client = _spawn_under_clock("-3h", write_spec(tmp_path, base_ami=BASE))
    _, stderr = client.communicate(timeout=120)

    assert client.returncode == 0, stderr
    assert "took over the stale bake lock" in stderr
    assert len(executions(aws)) == 1
    assert not lock_exists(aws, plan.fingerprint.value)


def _age_parameter(name: str, age: timedelta) -> None:
    """Make a parameter look written `age` ago, as SSM would record a client that died then."""
    from moto.ssm.models import ssm_backends

    parameter = ssm_backends["123456789012"]["us-east-1"].get_parameter(name)
    assert parameter is not None
    parameter.last_modified_date -= age


# ---- values tfbake did not write -----------------------------------------------------------

MALFORMED = {
    "execution-id-not-an-id": '{"token":"%s","execution_id":"exec-1"}',
    "token-null": '{"token":null}',
    "token-int": '{"token":5}',
    "token-not-a-uuid": '{"token":"abc"}',
    "not-json": "locked by hand",
}
TOKEN = "6f1c6c1e-9b0a-4c8e-8f53-1c2d3e4f5a6b"


@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
def test_ensure_takes_over_a_lock_tfbake_did_not_write_saying_so_once(
    aws: AwsContext, sandbox: Sandbox, value: str
) -> None:
    plan = plan_for(aws)
    put_lock_value(aws, plan, value.replace("%s", TOKEN))
    notes: list[str] = []

    result = ensure(plan, aws, on_progress=lambda p: notes.append(p.note) if p.note else None)

    assert result.status == "baked"
    assert len(notes) == 1 and "not a lock tfbake wrote" in notes[0]
    assert not lock_exists(aws, plan.fingerprint.value)


@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
def test_cancel_of_a_spec_clears_a_lock_tfbake_did_not_write(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox, value: str
) -> None:
    plan = plan_for(aws)
    put_lock_value(aws, plan, value.replace("%s", TOKEN))

    result = run_tfbake("cancel", str(write_spec(tmp_path, base_ami=BASE)))

    assert result.code == 0, result.stderr
    assert "released the lock" in result.stdout and "not a lock tfbake wrote" in result.stdout
    assert not lock_exists(aws, plan.fingerprint.value)


def test_cleanup_releases_every_lock_tfbake_did_not_write_and_the_stale_ones_after_them(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    ssm = aws.client("ssm")
    names = []
    for index, value in enumerate(MALFORMED.values()):
        name = f"{LOCK_PREFIX}{index:064x}"
        ssm.put_parameter(Name=name, Value=value.replace("%s", TOKEN), Type="String")
        names.append(name)
    hold_lock(aws, "f" * 64, "00000000-1111-2222-3333-444444444444")  # sorted last

    listed = run_tfbake("cleanup")
    applied = run_tfbake("cleanup", "--apply")

    assert listed.code == 0, listed.stderr
    assert listed.stdout.count("not a lock tfbake wrote") == len(MALFORMED)
    assert applied.code == 0, applied.stderr
    assert f"released: {len(MALFORMED) + 1} stale lock(s)" in applied.stdout
    for name in [*names, LOCK_PREFIX + "f" * 64]:
        assert not ssm.get_parameters(Names=[name])["Parameters"]


# ---- a lock naming another image set's bake ------------------------------------------------


def test_a_lock_naming_another_image_sets_bake_is_taken_over_with_the_cause(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    other = plan_for(aws, name="other")
    sandbox.delay_step("RunRecipe", 3)
    baking = threading.Thread(target=ensure, args=(other, AwsContext()),
                              kwargs={"on_progress": no_progress})  # fmt: skip
    baking.start()
    while not executions(aws):
        time.sleep(0.1)
    (theirs,) = executions(aws)
    plan = plan_for(aws)
    hold_lock(aws, plan.fingerprint.value, theirs["AutomationExecutionId"])
    notes: list[str] = []

    result = ensure(plan, aws, on_progress=lambda p: notes.append(p.note) if p.note else None)
    baking.join(timeout=60)

    assert result.status == "baked"
    assert notes == [
        f"took over the stale bake lock {LOCK_PREFIX}{plan.fingerprint.value}: execution "
        f"{theirs['AutomationExecutionId']} bakes another image set "
        f"(fingerprint {other.fingerprint.value[:12]})"
    ]
    assert not lock_exists(aws, plan.fingerprint.value)
