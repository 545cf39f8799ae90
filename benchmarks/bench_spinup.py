"""Spin-up of a real instance: its containers from the baked AMI, or pulled at boot.

Run as root: python3 benchmarks/bench_spinup.py [--runs 3] [--sizes 60,120,450]

The sandbox's real machines (`tfbake sandbox --instances real`) and a real registry, which sits
in a network namespace of its own behind a shaped link (benchmarks/shaped_link.py). For each
image set (random-data layers of about SIZE MB compressed, pushed offline) tfbake bakes an AMI,
and Terraform applies the asg module once per set, so both runs start the module's own
container units:

- baked: RunInstances with the launch template as it is (the baked AMI, its user data);
- pull: the same template with the base AMI, and user data that runs the module's user data
  unchanged with the containers held until the images are pulled (all at once), which starts
  as soon as Docker runs.

Each run is timed from RunInstances to the last container's start, in parts read from inside
the machine (machines share the host's clocks): launch (the sandbox copies the AMI's root, its
stand-in for restoring an EBS volume), boot to user data (PID 1 to the start of the cloud-init
stage that runs it), the pull, and Docker plus container start. Three more columns, also from
PID 1: Docker's own start (docker.service active), sshd's start (ssh.service's start job; the
sandbox keeps sshd itself from listening) and the last container running. A second table joins
EC2's fixed costs on paper, RunInstances to SSH, to what the machine did after its sshd start
(benchmarks/spinup_model.py), and gives the break-even transfer time.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import spinup_model
from benchmarks.shaped_link import DelayProxy, Link, Namespace
from tests.support.cli import run_tfbake
from tests.support.images import push_busybox_image, random_layer
from tests.support.real_sandbox import RealSandbox, start_real_sandbox
from tests.support.registry import start_registry
from tests.support.terraform import (
    Root,
    build_mirror,
    find_aws_mirror,
    find_terraform,
    offline_environment,
    stage,
    write_cli_config,
)
from tfbake.sandbox.moto_patches.base_images import debian_base_ami

LINKS = (Link("unshaped", None, 0.0), Link("shaped", 200.0, 20.0))
BASE = "debian-12-docker"  # what both runs start from: Docker installed, no images
REGISTRY_PORT = 5000
MAX_LAYER = 32 * 10**6
LAUNCH_TIMEOUT = 120
BAKE_TIMEOUT = 900
PROFILE = "tfbake-builder"
PULL_MARKS = "/run/tfbake-bench"
PULL_SCRIPT = "/usr/local/sbin/tfbake-bench-pull"


@dataclass(frozen=True)
class ImageSet:
    size_mb: int
    references: tuple[str, ...]
    compressed_bytes: int

    @property
    def name(self) -> str:
        return f"s{self.size_mb}"


@dataclass(frozen=True)
class Run:
    launch: float  # RunInstances to the machine's PID 1: the root copy
    to_user_data: float  # PID 1 to the cloud-init stage that runs the user data
    pull: float
    containers: float  # the rest: Docker and container start
    total: float
    to_runtime: float  # PID 1 to docker.service active
    to_ssh: float  # PID 1 to ssh.service's start
    to_running: float  # PID 1 to the last container running

    @property
    def ssh_to_running(self) -> float:
        return self.to_running - self.to_ssh


def say(message: str) -> None:
    print(message, flush=True)


# ---- the registry's image sets ---------------------------------------------------------------


def push_image_sets(registry: Any, host: str, sizes: list[int]) -> list[ImageSet]:
    sets = []
    for size in sizes:
        count = min(5, max(2, math.ceil(size / 40)))
        per_image = size * 10**6 // count
        layers = math.ceil(per_image / MAX_LAYER)
        references, compressed = [], 0
        for index in range(count):
            extra = [
                random_layer(per_image // layers, seed=size * 1000 + index * 10 + n)
                for n in range(layers)
            ]
            built = push_busybox_image(registry, f"spinup/s{size}-{index}", "1", extra_layers=extra)
            references.append(built.reference(host))
            compressed += built.compressed_bytes
        sets.append(ImageSet(size, tuple(references), compressed))
        say(f"  pushed s{size}: {count} images, {compressed / 1e6:.0f} MB compressed")
    return sets


# ---- bakes and launch templates --------------------------------------------------------------


def bake(sandbox: RealSandbox, image_set: ImageSet, directory: Path) -> dict[str, Any]:
    spec = directory / f"{image_set.name}.json"
    spec.write_text(
        json.dumps(
            {
                "name": f"spinup-{image_set.name}",
                "images": list(image_set.references),
                "base_ami": debian_base_ami(BASE),
                "architecture": "x86_64",
                "volume": {"size": 8},
                "builder": {"instance_profile": PROFILE, "timeout_minutes": 20},
            }
        )
    )
    started = time.monotonic()
    result = run_tfbake(
        "ensure", str(spec), "--json", env=sandbox.environment(), timeout=BAKE_TIMEOUT
    )
    if result.code != 0:
        raise RuntimeError(f"bake of {image_set.name} failed: {result.stderr[-2000:]}")
    say(f"  baked {image_set.name} in {time.monotonic() - started:.0f} s")
    return dict(json.loads(result.stdout))


def launch_templates(
    sandbox: RealSandbox, sets: dict[str, tuple[ImageSet, dict[str, Any]]], work: Path
) -> dict[str, Any]:
    """Apply benchmarks/spinup: the asg module's launch template and user data per set."""
    mirror = build_mirror(work / "mirror", find_aws_mirror(), stand_in_external=False)
    environment = {
        **offline_environment(write_cli_config(work / "cli.tfrc", mirror)),
        **sandbox.environment(),
    }
    root = Root(stage(work / "tree", "benchmarks/spinup"), find_terraform())
    variables = {
        "sets": {
            name: {
                "ami_id": baked["ami_id"],
                "baked_images": baked["images"],
                "images": list(image_set.references),
            }
            for name, (image_set, baked) in sets.items()
        }
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        root.init().check()
        root.apply(variables).check()
        return root.outputs()


def pulling_user_data(image_set: ImageSet, module_user_data: str) -> str:
    """The module's user data, its containers held until every image of the set is pulled.

    A boothook, as the module's: it adds a unit that pulls the images (all at once) as soon as
    Docker runs, and a drop-in that every `tfbake-container-*` unit reads (systemd's prefix
    drop-ins) ordering the containers after it; then it runs the module's boothook unchanged,
    which starts the containers as it does on the baked AMI.
    """
    images = " ".join(shlex.quote(reference) for reference in image_set.references)
    pull = "\n".join(
        [
            "#!/bin/bash",
            "set -euo pipefail",
            f"mkdir -p {PULL_MARKS}",
            f"date +%s.%N >{PULL_MARKS}/docker",
            "pids=()",
            f"for image in {images}; do",
            '  docker pull --quiet "$image" >/dev/null & pids+=("$!")',
            "done",
            'for pid in "${pids[@]}"; do wait "$pid"; done',
            f"date +%s.%N >{PULL_MARKS}/pulled",
            "",
        ]
    )
    unit = "\n".join(
        [
            "[Unit]",
            "After=docker.service",
            "Requires=docker.service",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=yes",
            f"ExecStart=/bin/bash {PULL_SCRIPT}",
            "",
        ]
    )
    held = "[Unit]\nAfter=tfbake-bench-pull.service\nRequires=tfbake-bench-pull.service\n"
    files = {
        PULL_SCRIPT: pull,
        "/etc/systemd/system/tfbake-bench-pull.service": unit,
        "/etc/systemd/system/tfbake-container-.service.d/50-pull-first.conf": held,
        f"{PULL_MARKS}/module-user-data": module_user_data,
    }
    return "\n".join(
        [
            "#cloud-boothook",
            "#!/bin/bash",
            "# The baked AMI's units on the base AMI: the images are pulled first.",
            "set -euo pipefail",
            f"mkdir -p {PULL_MARKS} /etc/systemd/system/tfbake-container-.service.d",
            *(
                f"echo '{base64.b64encode(text.encode()).decode()}' | base64 -d >{path}"
                for path, text in files.items()
            ),
            f"bash {PULL_MARKS}/module-user-data",
            "",
        ]
    )


# ---- one launch --------------------------------------------------------------------------------

# Printed by Run Command once every container runs: realtime seconds, monotonic microseconds.
_TIMINGS = """\
[ "$(docker ps -q --filter status=running | wc -l)" -ge {count} ] || {{ echo waiting; exit 0; }}
echo "boot $(systemctl show -p UserspaceTimestampMonotonic --value)"
echo "user $(systemctl show {stage} -p ExecMainStartTimestampMonotonic --value)"
echo "runtime $(systemctl show docker.service -p ActiveEnterTimestampMonotonic --value)"
echo "ssh $(systemctl show ssh.service -p ConditionTimestampMonotonic --value)"
echo "docker $(cat {marks}/docker 2>/dev/null || echo -)"
echo "pulled $(cat {marks}/pulled 2>/dev/null || echo -)"
for t in $(docker inspect -f '{{{{.State.StartedAt}}}}' $(docker ps -q)); do
  echo "started $(date -d "$t" +%s.%N)"
done
"""


def user_data_stage(user_data: str) -> str:
    """The cloud-init stage (its systemd unit) that runs this user data: a script runs late,
    in the final stage; a boothook as soon as the network stage has read the user data."""
    return (
        "cloud-init.service" if user_data.startswith("#cloud-boothook") else "cloud-final.service"
    )


def launch(
    sandbox: RealSandbox, template_id: str, image_set: ImageSet, user_data: str, pull: bool
) -> Run:
    """One instance of the template: as it is, or with the base AMI and this user data."""
    ec2, ssm = sandbox.client("ec2"), sandbox.client("ssm")
    overrides: dict[str, Any] = {}
    if pull:
        overrides = {
            "ImageId": sandbox.base_ami_id(BASE),
            "UserData": user_data,  # boto3 encodes it
        }
    clock_offset = time.time() - time.monotonic()  # machines share CLOCK_MONOTONIC
    started = time.time()
    instance_id = ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template_id}, MinCount=1, MaxCount=1, **overrides
    )["Instances"][0]["InstanceId"]
    try:
        lines = wait_for_containers(
            ssm, instance_id, len(image_set.references), user_data_stage(user_data)
        )
    finally:
        terminate(ec2, instance_id)
    marks: dict[str, list[float]] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if value not in ("", "-"):
            marks.setdefault(key, []).append(float(value))
    boot = marks["boot"][0] / 1e6 + clock_offset
    user = marks["user"][0] / 1e6 + clock_offset
    runtime = marks["runtime"][0] / 1e6 + clock_offset
    ssh = marks["ssh"][0] / 1e6 + clock_offset
    end = max(marks["started"])
    pull = marks["pulled"][0] - marks["docker"][0] if "pulled" in marks else 0.0
    return Run(
        boot - started,
        user - boot,
        pull,
        end - user - pull,
        end - started,
        runtime - boot,
        ssh - boot,
        end - boot,
    )


_DIAGNOSIS = (
    "grep -v -e ci-info -e 'cloud-init:' -e '^ssh-' -e '^ecdsa' -e KEYS "
    "/var/log/cloud-init-output.log | tail -n 20; docker ps -a; docker images"
)


def wait_for_containers(ssm: Any, instance_id: str, count: int, stage: str) -> list[str]:
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    script = _TIMINGS.format(count=count, marks=PULL_MARKS, stage=stage)
    while time.monotonic() < deadline:
        online = {
            i["InstanceId"] for i in ssm.describe_instance_information()["InstanceInformationList"]
        }
        if instance_id not in online:
            time.sleep(0.5)
            continue
        output = run_shell(ssm, instance_id, script)
        if output is not None and not output.startswith("waiting"):
            return output.splitlines()
        time.sleep(1)
    why = run_shell(ssm, instance_id, _DIAGNOSIS)
    raise RuntimeError(f"{instance_id}: containers not running after {LAUNCH_TIMEOUT} s:\n{why}")


def run_shell(ssm: Any, instance_id: str, script: str) -> str | None:
    command_id = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[instance_id],
        Parameters={"commands": [script]},
    )["Command"]["CommandId"]
    for _ in range(120):
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        if invocation["Status"] == "Success":
            return str(invocation["StandardOutputContent"])
        if invocation["Status"] not in ("Pending", "InProgress", "Delayed"):
            return None
        time.sleep(0.25)
    return None


def terminate(ec2: Any, instance_id: str) -> None:
    """End the machine and wait until it is gone: runs never overlap."""
    ec2.terminate_instances(InstanceIds=[instance_id])
    for _ in range(240):
        (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        if reservation["Instances"][0]["State"]["Name"] == "terminated":
            return
        time.sleep(0.5)


# ---- the tables ----------------------------------------------------------------------------------


def median_run(runs: list[Run]) -> Run:
    return Run(*(statistics.median(getattr(r, f) for r in runs) for f in Run.__dataclass_fields__))


Results = dict[tuple[str, str], list[Run]]  # (set, "baked" or a link's name) -> its runs


def medians(results: Results, sets: list[ImageSet]) -> Iterator[tuple[Link, ImageSet, Run, Run]]:
    """Per link and set: the baked run's medians and the pulling run's."""
    for link in LINKS:
        for image_set in sets:
            baked = median_run(results[(image_set.name, "baked")])
            yield link, image_set, baked, median_run(results[(image_set.name, link.name)])


def report(results: Results, sets: list[ImageSet], runs: int) -> None:
    say(f"\nMeasured: medians of {runs} runs, seconds (launch = the sandbox's root copy)")
    say(
        f"{'link':<22} {'set':>6} {'MB':>5} {'run':<6} {'launch':>7} {'to UD':>6} "
        f"{'pull':>6} {'start':>6} {'total':>6} {'baked/pull':>10} {'w/o launch':>10} "
        f"{'PID1-Docker':>11} {'PID1-SSH':>8} {'PID1-last':>9}"
    )
    for link, image_set, baked, pulled in medians(results, sets):
        for kind, run in (("baked", baked), ("pull", pulled)):
            ratios = f"{'':>10} {'':>10}"
            if kind == "pull":
                without = (baked.total - baked.launch) / (pulled.total - pulled.launch)
                ratios = f"{baked.total / pulled.total:>10.2f} {without:>10.2f}"
            say(
                f"{link.describe():<22} {image_set.name:>6} "
                f"{image_set.compressed_bytes / 1e6:>5.0f} {kind:<6} {run.launch:>7.2f} "
                f"{run.to_user_data:>6.2f} {run.pull:>6.2f} {run.containers:>6.2f} "
                f"{run.total:>6.2f} {ratios} {run.to_runtime:>11.2f} {run.to_ssh:>8.2f} "
                f"{run.to_running:>9.2f}"
            )
    say("\nOn EC2 (seconds): the fixed costs below replace the sandbox's launch and boot to SSH")
    for figure in (spinup_model.PROVISION_AND_BOOT, spinup_model.SSM_REGISTRATION):
        say(f"  {figure.what}: {figure.value:g} s; {figure.source}")
    for figure in spinup_model.FIRST_READS:
        rate = "none" if math.isinf(figure.value) else f"{figure.value / 1e6:.0f} MB/s"
        say(f"  {figure.what}: {rate}; {figure.source}")
    say(
        f"{'link':<22} {'set':>6} {'first read':<28} {'baked':>6} {'pull':>6} {'ratio':>6} "
        f"{'break-even':>10} {'at link':>8} {'halves below':>12}"
    )
    for link, image_set, baked, pulled in medians(results, sets):
        measured = spinup_model.Measured(
            image_set.compressed_bytes,
            baked.ssh_to_running,
            pulled.pull,
            pulled.ssh_to_running,
        )
        for figure in spinup_model.FIRST_READS:
            ec2_baked, ec2_pull = spinup_model.on_ec2(measured, figure)
            transfer = spinup_model.break_even_transfer(measured, figure)
            below = image_set.compressed_bytes * 8 / transfer / 1e6 if transfer else math.inf
            say(
                f"{link.describe():<22} {image_set.name:>6} {figure.label:<28} "
                f"{ec2_baked:>6.1f} {ec2_pull:>6.1f} {ec2_baked / ec2_pull:>6.2f} "
                f"{transfer:>9.1f}s {pulled.pull:>7.1f}s "
                f"{below:>6.0f} Mbit/s"
            )
    say(
        "break-even: seconds of image transfer (compressed bytes / bandwidth) at which baking "
        "halves spin-up on EC2; 'at link': the measured pull of this set over this link; "
        "'halves below': the bandwidth under which baking this set halves spin-up"
    )


# ---- main ----------------------------------------------------------------------------------------


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per set, link and kind")
    parser.add_argument(
        "--sizes",
        default="60,120,450",
        help="image set sizes in MB compressed, comma-separated",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    signal.signal(signal.SIGTERM, _interrupted)
    began = time.monotonic()
    with ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="tfbake-spinup-") as tmp:
        work = Path(tmp)
        namespace = Namespace().create()
        cleanup.callback(namespace.remove)
        registry = start_registry(
            work / "registry",
            host=f"{namespace.address}:{REGISTRY_PORT}",
            launcher=namespace.launcher(),
        )
        cleanup.callback(registry.stop)
        proxy = DelayProxy((namespace.address, REGISTRY_PORT)).start()
        cleanup.callback(proxy.stop)
        say(f"registry {registry.host} in namespace {namespace.name}, reached at {proxy.host}")
        sets = push_image_sets(registry, proxy.host, sizes)
        sandbox = start_real_sandbox(None, work / "sandbox.log")
        cleanup.callback(sandbox.stop)
        sandbox.client("iam").create_instance_profile(InstanceProfileName=PROFILE)
        baked = {s.name: (s, bake(sandbox, s, work)) for s in sets}
        outputs = launch_templates(sandbox, baked, work / "terraform")
        results: Results = {}
        for image_set in sets:
            template = outputs["launch_templates"][image_set.name]
            module_user_data = outputs["user_data"][image_set.name]
            pulling = pulling_user_data(image_set, module_user_data)
            for _ in range(args.runs):
                # Interleaved, so that anything else on the machine weighs on all alike. The
                # baked run never reaches the registry: one serves as baseline for every link.
                for kind, link in (("baked", None), *(("pull", link) for link in LINKS)):
                    if link is not None:
                        namespace.limit(link.mbit)
                        proxy.rtt_ms = link.rtt_ms
                    if link is None:
                        run = launch(sandbox, template, image_set, module_user_data, pull=False)
                    else:
                        run = launch(sandbox, template, image_set, pulling, pull=True)
                    key = (image_set.name, kind if link is None else link.name)
                    results.setdefault(key, []).append(run)
                    say(
                        f"  {image_set.name} {key[1]}: {run.total:.2f} s "
                        f"(launch {run.launch:.2f}, pull {run.pull:.2f})"
                    )
        report(results, sets, args.runs)
    say(f"\nwhole benchmark: {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench_spinup: interrupted; its machines, registry and namespace are gone")
