"""The no-op path: `tfbake external` when the AMI exists and every reference is pinned.

Whole-process wall time (median of N fresh processes) against two baselines measured in the same
run, on the same local endpoint:
  - a bare Python process that imports boto3 and makes the same DescribeImages call
    (target: tfbake / baseline <= 1.15);
  - the AWS CLI making the same lookup (target: tfbake / aws-cli < 1.0).

Run: python benchmarks/bench_noop.py [--runs 15]   (needs `pip install -e '.[bench]'`)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.amis import seed_ami  # noqa: E402
from tests.support.specs import planned_query, spec_data  # noqa: E402
from tfbake.aws.calls import AwsContext  # noqa: E402
from tfbake.pipeline import plan_image_set  # noqa: E402
from tfbake.sandbox import start_sandbox  # noqa: E402
from tfbake.spec.mapping import image_set_from_mapping  # noqa: E402

BARE_BOTO3 = """
import boto3
ec2 = boto3.client("ec2")
ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:tfbake:fingerprint", "Values": [%r]}])
"""


def medians(commands: list[tuple[list[str], str]], runs: int) -> list[float]:
    """The median wall time of each (command, stdin), their runs interleaved: the machine's
    drift during the measurement then weighs on every command alike."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for (command, stdin), taken in zip(commands, times, strict=True):
            started = time.perf_counter()
            subprocess.run(command, input=stdin, text=True, capture_output=True, check=True)
            taken.append(time.perf_counter() - started)
    return [statistics.median(taken) for taken in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    sandbox = start_sandbox()
    os.environ.update(sandbox.environment())
    fingerprint = plan_image_set(image_set_from_mapping(spec_data()), AwsContext()).fingerprint
    ami = seed_ami(AwsContext().client("ec2"), fingerprint.value)

    tfbake = [sys.executable, "-m", "tfbake", "external"]
    # The query modules/baked-ami sends at plan.
    query = json.dumps(planned_query())
    reply = subprocess.run(tfbake, input=query, text=True, capture_output=True)
    assert json.loads(reply.stdout)["ami_id"] == ami, reply.stderr
    sandbox.log.clear()
    subprocess.run(tfbake, input=query, text=True, capture_output=True, check=True)
    calls = sandbox.log.actions()

    aws_cli = shutil.which("aws")
    describe = [aws_cli or "aws", "ec2", "describe-images", "--owners", "self", "--filters",
                f"Name=tag:tfbake:fingerprint,Values={fingerprint.value}"]  # fmt: skip
    commands = [([sys.executable, "-c", BARE_BOTO3 % fingerprint.value], ""), (tfbake, query)]
    baseline, measured, *cli = medians(commands + ([(describe, "")] if aws_cli else []), args.runs)
    print(f"runs per command: {args.runs} (median wall time of fresh processes)")
    print(f"API calls of one no-op tfbake external: {calls}")
    print(f"bare python + boto3 DescribeImages (baseline): {baseline * 1000:.0f} ms")
    print(f"tfbake external: {measured * 1000:.0f} ms  ratio {measured / baseline:.3f} "
          "(target <= 1.15)")  # fmt: skip
    if cli:
        print(f"aws ec2 describe-images: {cli[0] * 1000:.0f} ms  tfbake/aws-cli ratio "
              f"{measured / cli[0]:.3f} (target < 1.0)")  # fmt: skip
    else:
        print("aws CLI not installed (pip install awscli); its comparison was not measured")
    sandbox.stop()


if __name__ == "__main__":
    main()
