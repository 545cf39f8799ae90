"""The quickstart demo: bake once, reuse after, rebake on change, against the local sandbox.

Run from the repository root:  python3 examples/quickstart/demo.py
It starts the embedded sandbox (a local AWS endpoint), then drives the real `tfbake` CLI in
separate processes, the way a CI job or Terraform would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from tfbake.sandbox import start_sandbox

HERE = Path(__file__).resolve().parent
BUILDER_PROFILE = "tfbake-builder"


def tfbake(*args: str) -> tuple[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "tfbake", *args], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"tfbake {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout.strip(), elapsed


def main() -> None:
    sandbox = start_sandbox()
    os.environ.update(sandbox.environment())
    print(f"sandbox AWS endpoint: {sandbox.url} (region {sandbox.region})")
    # The builder's instance profile (web.hcl names it), as modules/bake-infra makes one.
    boto3.client("iam").create_instance_profile(InstanceProfileName=BUILDER_PROFILE)
    spec = HERE / "web.hcl"
    rows = []

    sandbox.log.clear()
    ami, seconds = tfbake("ensure", str(spec))
    rows.append(("first ensure", ami, seconds, sandbox.log.count("StartAutomationExecution")))

    sandbox.log.clear()
    again, seconds = tfbake("ensure", str(spec))
    rows.append(("second ensure", again, seconds, sandbox.log.count("StartAutomationExecution")))

    with tempfile.TemporaryDirectory() as scratch:
        changed = Path(scratch) / "web.hcl"
        changed.write_text(spec.read_text() + '\nsalt = "2"\n')
        sandbox.log.clear()
        rebaked, seconds = tfbake("ensure", str(changed))
        rows.append(
            ("changed salt", rebaked, seconds, sandbox.log.count("StartAutomationExecution"))
        )

    print(f"\n{'step':<15} {'AMI':<22} {'seconds':>8} {'bakes started':>14}")
    for step, ami_id, elapsed, bakes in rows:
        print(f"{step:<15} {ami_id:<22} {elapsed:>8.2f} {bakes:>14}")
    commands = sandbox.recorded_commands()
    print(f"\nrecipe runs recorded by the sandbox (not executed): {len(commands)}")
    assert rows[0][1] == rows[1][1] and rows[1][3] == 0, "the second ensure should reuse the AMI"
    assert rows[2][1] != rows[0][1], "a changed input should bake a new AMI"
    print("ok: baked once, reused, rebaked on change")
    sandbox.stop()


if __name__ == "__main__":
    main()
