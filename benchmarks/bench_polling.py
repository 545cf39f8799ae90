"""API calls a waiting client makes during a bake, per minute of bake.

Two bakes run side by side in the sandbox, each with steps delayed to take about two minutes:
one waited on by tfbake's runner, one by a naive waiter polling GetAutomationExecution every
2 seconds (the baseline, measured in the same run). The sandbox's request log counts every call
each client made, as AWS would see them. Target: tfbake <= 12 calls per minute of bake.

Run: python benchmarks/bench_polling.py [--minutes 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.bakes import create_builder_profile  # noqa: E402
from tests.support.specs import spec_data  # noqa: E402
from tfbake.aws.calls import AwsContext  # noqa: E402
from tfbake.bake.documents import ensure_documents  # noqa: E402
from tfbake.bake.request import image_name, start_parameters  # noqa: E402
from tfbake.ensure import ensure  # noqa: E402
from tfbake.pipeline import plan_image_set  # noqa: E402
from tfbake.sandbox import start_sandbox  # noqa: E402
from tfbake.spec.mapping import image_set_from_mapping  # noqa: E402

BASE = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
NAIVE_INTERVAL = 2.0
ACTIVE = ("Pending", "InProgress")


def naive_wait(aws: AwsContext, salt: str, counter: list[int], polls: list[int]) -> None:
    plan = plan_image_set(image_set_from_mapping(spec_data(base_ami=BASE, salt=salt)), aws)
    ssm = AwsContext().client("ssm")
    names = ensure_documents(ssm)
    region = aws.effective_region
    execution = ssm.start_automation_execution(
        DocumentName=names.runbook, Parameters=start_parameters(plan, region, image_name(plan))
    )["AutomationExecutionId"]
    counter[0] += 1
    while True:
        status = ssm.get_automation_execution(AutomationExecutionId=execution)
        counter[0] += 1
        polls[0] += 1
        if status["AutomationExecution"]["AutomationExecutionStatus"] not in (
            "Pending",
            "InProgress",
        ):
            return
        time.sleep(NAIVE_INTERVAL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    args = parser.parse_args()
    sandbox = start_sandbox()
    os.environ.update(sandbox.environment())
    aws = AwsContext()
    create_builder_profile(aws)
    # Spread the bake's duration over its slow steps, as on EC2 (boot, pulls, imaging).
    seconds = args.minutes * 60
    for step, share in (("WaitForBuilderOnline", 0.2), ("RunRecipe", 0.5), ("WaitForImage", 0.3)):
        sandbox.delay_step(step, seconds * share)

    naive_calls, naive_polls = [0], [0]
    naive = threading.Thread(target=naive_wait, args=(aws, "naive", naive_calls, naive_polls))
    plan = plan_image_set(image_set_from_mapping(spec_data(base_ami=BASE, salt="tfbake")), aws)
    sandbox.log.clear()
    started = time.monotonic()
    naive.start()
    ensure(plan, aws, on_progress=lambda _progress: None)
    elapsed_minutes = (time.monotonic() - started) / 60
    naive.join()
    tfbake_calls = len(sandbox.log.actions()) - naive_calls[0]
    tfbake_polls = sandbox.log.count("GetAutomationExecution") - naive_polls[0]
    naive_rate = naive_polls[0] / elapsed_minutes
    polling_rate = tfbake_polls / elapsed_minutes
    print(f"bake duration: {elapsed_minutes:.2f} min (steps delayed in the sandbox)")
    print(f"naive 2 s poller (baseline): {naive_polls[0]} polls, {naive_rate:.1f} per minute")
    print(
        f"tfbake ensure while waiting: {tfbake_polls} polls, {polling_rate:.1f} per minute, "
        f"ratio to baseline {polling_rate / naive_rate:.2f} (target <= 12 per minute)"
    )
    print(
        f"tfbake ensure, every call from lookup to ready: {tfbake_calls}, "
        f"{tfbake_calls / elapsed_minutes:.1f} per minute"
    )
    sandbox.stop()


if __name__ == "__main__":
    main()
