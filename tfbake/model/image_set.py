"""The image set: what goes on the AMI (fingerprinted), how to build it and where it goes (not).

Pure values. spec/ reads them from spec files and the Terraform query and checks every field;
everything after that takes them as given.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from tfbake.model.reference import ImageReference

SSM_PREFIX = "ssm:"
ARCHITECTURES = ("x86_64", "arm64")
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")
MAX_VOLUME_GIB = 16384
DOCKER = "docker"
CONTAINERD = "containerd"
RUNTIMES = (DOCKER, CONTAINERD)
# Where the kubelet looks for images (the CRI plugin's namespace): what EKS nodes run.
DEFAULT_CONTAINERD_NAMESPACE = "k8s.io"


@dataclass(frozen=True)
class Share:
    accounts: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.accounts or self.organizations or self.organizational_units)


@dataclass(frozen=True)
class Distribution:
    regions: tuple[str, ...] = ()  # besides the home region, in the order given
    region_kms_keys: tuple[tuple[str, str], ...] = ()  # region -> KMS key of its copy, sorted
    share: Share = Share()
    fast_snapshot_restore: tuple[str, ...] = ()  # availability zones of the home region

    def kms_key_for(self, region: str) -> str | None:
        return dict(self.region_kms_keys).get(region)


@dataclass(frozen=True)
class Ansible:
    """A playbook, its files packed as one archive, and the variables it runs with."""

    playbook: str  # path inside the archive
    digest: str  # "sha256:" + hex of the uncompressed tar
    extra_vars_json: str  # canonical JSON object, ASCII only
    archive: bytes = field(compare=False, repr=False)  # gzip of the tar
    files: tuple[str, ...] = field(compare=False, default=())  # archive member names

    @property
    def extra_vars(self) -> dict[str, Any]:
        variables: dict[str, Any] = json.loads(self.extra_vars_json)
        return variables

    def encoded(self) -> str:
        return base64.b64encode(self.archive).decode("ascii")

    def manifest_entry(self) -> dict[str, Any]:
        """The fingerprint input: what runs, and the exact content it runs from."""
        return {"playbook": self.playbook, "bundle": self.digest, "extra_vars": self.extra_vars}


@dataclass(frozen=True)
class Runtime:
    """The image store the images are baked into: Docker's, or a namespace of containerd's."""

    name: str = DOCKER
    namespace: str | None = None  # containerd's namespace; None with Docker

    def manifest_entry(self) -> dict[str, str] | None:
        """The fingerprint input; None for Docker, so that sets from before `runtime` keep
        their fingerprints."""
        if self.name == DOCKER:
            return None
        return {"name": self.name, "namespace": self.namespace or DEFAULT_CONTAINERD_NAMESPACE}


@dataclass(frozen=True)
class BaseAmi:
    """Where the base image comes from: an id, an SSM parameter, or the newest name match."""

    ami_id: str | None = None
    ssm_parameter: str | None = None
    owners: tuple[str, ...] = ()
    name_pattern: str | None = None

    def describe(self) -> str:
        if self.ami_id:
            return self.ami_id
        if self.ssm_parameter:
            return f"{SSM_PREFIX}{self.ssm_parameter}"
        return f"newest of {','.join(self.owners)}/{self.name_pattern}"


@dataclass(frozen=True)
class Volume:
    size_gib: int = 30
    type: str = "gp3"
    encrypted: bool = True
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Builder:
    """How the bake runs. None of this changes what is on the disk, so none is fingerprinted."""

    instance_type: str | None = None  # None: a default for the architecture
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    instance_profile: str | None = None
    automation_role_arn: str | None = None
    document_name: str | None = None
    timeout_minutes: int = 60
    # CloudWatch Logs group that receives the recipe's whole output (Run Command keeps its start).
    log_group: str | None = None


# The owner that names the calling account in ami_owners (as EC2's Owners filter does).
SELF_OWNER = "self"


@dataclass(frozen=True)
class ImageSet:
    name: str
    images: tuple[ImageReference, ...]
    base_ami: BaseAmi
    architecture: str | None = None
    volume: Volume = Volume()
    provision: tuple[str, ...] = ()
    salt: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    ansible: Ansible | None = None
    runtime: Runtime = Runtime()
    builder: Builder = Builder()
    # Access, not content: where to look and how to reach registries.
    ami_owners: tuple[str, ...] = (SELF_OWNER,)
    insecure_registries: tuple[str, ...] = ()
    registry_credentials_parameter: str | None = None
    # Where the ready AMI goes (regions, sharing, fast restore): not content either.
    distribution: Distribution = field(default_factory=Distribution)
    source: str = field(default="<spec>", compare=False)

    @property
    def bakes_here(self) -> bool:
        """Whether a bake in this account can serve the image set: its lookups trust the
        account's own AMIs only when ami_owners names self. A workload account that trusts an
        image account alone only finds; an AMI baked there would never be found."""
        return SELF_OWNER in self.ami_owners
