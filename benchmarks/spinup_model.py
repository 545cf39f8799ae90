"""EC2's fixed costs on paper, added to bench_spinup.py's measured parts, and the break-even.

The sandbox's machines boot in about two seconds from a copied directory; an EC2 instance
spends tens of seconds being placed and booted first, the same for a baked and a pulling
instance, and its root volume loads the snapshot's blocks lazily, which only the baked instance
pays for its layers. What AWS documents is cited; what it does not is an assumption, named so.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 2**20


@dataclass(frozen=True)
class Figure:
    what: str
    value: float  # seconds, or bytes per second for a rate
    source: str
    label: str = ""  # its name in a table row


# Not documented by AWS (the EC2 docs give no launch or boot duration). Taken from a published
# cold-launch measurement: brevdev/ec2-coldboot-research, AL2023 on m7i.large, 25.8 s from
# RunInstances to SSH, of which 17.8 s pending to running (daemonology.net's ec2-boot-bench,
# 2021, measured 23-26 s for Linux AMIs). SSH is where EC2's figure and the sandbox's boot are
# joined: what the sandbox's machine does after its own sshd start is added, and what it does
# before (the containers may run before sshd starts) is taken off.
PROVISION_AND_BOOT = Figure(
    "instance provisioning + boot to SSH",
    25.8,
    "published, not documented by AWS: brevdev/ec2-coldboot-research, AL2023 on m7i.large, "
    "25.8 s from RunInstances to SSH, 17.8 s of it pending to running",
)
SSM_REGISTRATION = Figure(
    "SSM agent registration",
    0.0,
    "not on this path: user data starts the containers whether or not the agent has "
    "registered (it gates the bake's online step); AWS documents no duration",
)
# AWS: "The default volume initialization rate fluctuates throughout the initialization
# process" (EBS User Guide, Initialize Amazon EBS volumes); no figure is given.
DEFAULT_FIRST_READ = Figure(
    "EBS first read of the baked layers, default (lazy) initialization",
    130e6,
    "assumed: AWS documents no rate (EBS User Guide, 'Initialize Amazon EBS volumes': "
    "it fluctuates); 130-140 MB/s measured on gp3 by a third party (re:Post, AWS MGN article)",
    "default, lazy (assumed)",
)
PROVISIONED_FIRST_READ = Figure(
    "EBS first read with a provisioned volume initialization rate (300 MiB/s)",
    300 * MIB,
    "EBS User Guide, 'Initialize Amazon EBS volumes': 100-300 MiB/s, snapshot blocks "
    "downloaded at the specified rate; launch templates' VolumeInitializationRate",
    "init rate 300 MiB/s",
)
FAST_SNAPSHOT_RESTORE = Figure(
    "EBS first read with fast snapshot restore",
    float("inf"),
    "EBS User Guide, 'Amazon EBS fast snapshot restore': volumes fully initialized at "
    "creation; USD 0.75 per snapshot, zone and hour (How AWS Pricing Works, Amazon EBS)",
    "fast snapshot restore",
)
FIRST_READS = (DEFAULT_FIRST_READ, PROVISIONED_FIRST_READ, FAST_SNAPSHOT_RESTORE)


@dataclass(frozen=True)
class Measured:
    """Medians of one image set and link, from the machine's sshd start (where EC2's fixed
    cost ends) to the last container running; negative when it ran before sshd started."""

    compressed_bytes: int
    baked_ssh_to_running: float  # no pull: Docker and container start
    pull_seconds: float
    pull_ssh_to_running: float  # Docker start, the pull and container start


def on_ec2(measured: Measured, first_read: Figure) -> tuple[float, float]:
    """(baked, pull) spin-up seconds on EC2: the fixed costs plus what was measured."""
    fixed = PROVISION_AND_BOOT.value + SSM_REGISTRATION.value
    # Upper bound: every baked byte is read once from a volume that is still loading.
    read = measured.compressed_bytes / first_read.value
    baked = fixed + measured.baked_ssh_to_running + read
    return baked, fixed + measured.pull_ssh_to_running


def break_even_transfer(measured: Measured, first_read: Figure) -> float:
    """Seconds of image transfer (bytes / bandwidth) at which baking halves spin-up on EC2.

    With the pull's other costs as measured: baked <= (fixed + other + transfer) / 2.
    """
    baked, _ = on_ec2(measured, first_read)
    fixed = PROVISION_AND_BOOT.value + SSM_REGISTRATION.value
    # Docker and container start in the pull run: what it costs besides the transfer.
    other = measured.pull_ssh_to_running - measured.pull_seconds
    return max(0.0, 2 * baked - fixed - other)
