"""The sandbox example on real instances: a page served from a baked container.

Started by `python3 examples/sandbox/demo.py --instances real` (as root). It starts a loopback
registry and pushes a busybox httpd image built on the spot, starts the sandbox with real
instances, and applies examples/sandbox with Terraform:

1. apply: the bake runs the recipe on a booted builder, the autoscaling group's instance boots
   the baked AMI, and its container serves a page on a loopback port;
2. apply again: nothing to bake, the same instance serves;
3. a changed salt: one bake, a new launch template version, and the group rolls onto a new
   instance that serves the page again.

It prints what happens as it goes and stops everything it started, also on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from demo import EXAMPLE, Step, apply, provider_setup, run

from tests.support import terraform
from tests.support.images import push_busybox_image
from tests.support.registry import free_port, start_registry
from tfbake.sandbox.moto_patches.base_images import debian_base_ami

PAGE = b"hello from a container baked into the AMI by tfbake\n"
SERVE_TIMEOUT = 180


def say(message: str) -> None:
    print(message, flush=True)


def run_real_demo(binary: str) -> None:
    from tfbake.sandbox import start_sandbox
    from tfbake.sandbox.machines.prerequisites import PrerequisiteMissing
    from tfbake.sandbox.machines.roots import RootBuildError

    with tempfile.TemporaryDirectory(prefix="tfbake-real-demo-") as scratch_dir:
        scratch = Path(scratch_dir)
        environment, providers = provider_setup(scratch)
        registry = start_registry(scratch / "registry")
        try:
            port = free_port()
            image = push_busybox_image(
                registry,
                "demo/web",
                "1.0",
                files={"www/index.html": PAGE},
                command=["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
            )
            reference = image.reference(registry.host)
            say(f"registry on {registry.host}: pushed {reference} (busybox httpd, built here)")
            try:
                sandbox = start_sandbox(instances="real", log=lambda line: say(f"  ec2: {line}"))
            except (PrerequisiteMissing, RootBuildError) as err:
                sys.exit(f"cannot start real instances: {err}")
            try:
                os.environ.update({**sandbox.environment(), **environment})
                say(f"sandbox AWS endpoint: {sandbox.url}, machines in {sandbox.state_dir}")
                say(providers)
                steps = _apply_three_times(binary, scratch, sandbox, reference, port)
            finally:
                say("stopping the sandbox and its machines")
                sandbox.stop()
        finally:
            registry.stop()
    _report(steps)


def _apply_three_times(
    binary: str, scratch: Path, sandbox: Any, reference: str, port: int
) -> list[tuple[Step, str]]:
    root = terraform.stage(scratch / "tree", EXAMPLE)
    say(f"terraform init: {run(binary, root, 'init', '-input=false'):.1f} s")
    containers = {"web": {"image": reference, "network": "host"}}
    extra = (
        f"-var=images={json.dumps([reference])}",
        f"-var=base_ami={json.dumps(debian_base_ami('debian-12-docker'))}",
        f"-var=containers={json.dumps(containers)}",
    )
    steps = []
    for name, salt in (("first apply", "1"), ("apply again", "1"), ("changed salt", "2")):
        say(f"terraform apply ({name})")
        step = apply(binary, root, sandbox, name, salt, *extra)
        instance = _serving_instance(sandbox, port)
        say(f"  {instance} serves: {PAGE.decode().strip()!r} on 127.0.0.1:{port}")
        steps.append((step, instance))
    return steps


def _serving_instance(sandbox: Any, port: int) -> str:
    """Wait until the group's one running instance answers with the baked page."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=sandbox.region
    )
    groups = session.client("autoscaling", endpoint_url=sandbox.url)
    ec2 = session.client("ec2", endpoint_url=sandbox.url)
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        (group,) = groups.describe_auto_scaling_groups(AutoScalingGroupNames=["sandbox-web"])[
            "AutoScalingGroups"
        ]
        members = [i["InstanceId"] for i in group["Instances"]]
        running = (
            [
                instance["InstanceId"]
                for reservation in ec2.describe_instances(
                    InstanceIds=members,
                    Filters=[{"Name": "instance-state-name", "Values": ["running"]}],
                )["Reservations"]
                for instance in reservation["Instances"]
            ]
            if members
            else []
        )
        if len(running) == 1 and _page(port) == PAGE:
            return running[0]
        time.sleep(1)
    sys.exit(f"no instance of the group served the page on 127.0.0.1:{port} in time")


def _page(port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return bytes(response.read())
    except OSError:
        return None


def _report(steps: list[tuple[Step, str]]) -> None:
    say(f"\n{'step':<14} {'seconds':>8} {'bakes':>6}  {'AMI':<22} {'instance':<20}")
    for step, instance in steps:
        say(f"{step.name:<14} {step.seconds:>8.1f} {step.bakes:>6}  {step.ami_id:<22} {instance}")
    (first, first_instance), (again, again_instance), (changed, changed_instance) = steps
    assert first.bakes == 1 and again.bakes == 0 and changed.bakes == 1, "bake once, reuse, rebake"
    assert again_instance == first_instance, "a second apply keeps the instance"
    assert changed_instance != first_instance, "a new AMI rolls the group onto a new instance"
    say("\nok: baked on a real builder, served from the baked container, rolled on change")
