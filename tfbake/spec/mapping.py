"""Reading an image set (tfbake/model/image_set.py) out of a plain mapping, checking every field.

`image_set_from_mapping` is the one validator; files (HCL or JSON) and the Terraform query both
arrive here as plain mappings. Validation is pure: resolving `base_ami` and tags happens later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfbake.model import tags as tfbake_tags
from tfbake.model.errors import InvalidReference, SpecError
from tfbake.model.image_set import (
    ARCHITECTURES,
    CONTAINERD,
    DEFAULT_CONTAINERD_NAMESPACE,
    DOCKER,
    MAX_VOLUME_GIB,
    RUNTIMES,
    SELF_OWNER,
    SSM_PREFIX,
    VOLUME_TYPES,
    Ansible,
    BaseAmi,
    Builder,
    ImageSet,
    Runtime,
    Volume,
)
from tfbake.model.patterns import (
    ACCOUNT_ID_RE,
    AMI_ID_RE,
    AMI_ID_SHAPE,
    CONTAINERD_NAMESPACE_RE,
    KMS_KEY_RE,
    KMS_KEY_SHAPE,
)
from tfbake.model.reference import ImageReference, parse_references
from tfbake.spec.distribution import (
    DISTRIBUTION_FIELDS,
    distribution_from,
)
from tfbake.spec.fields import Fields, Locator, kind_of, nowhere
from tfbake.spec.untrusted import check_plain

NAME_RE = re.compile(r"[a-z0-9-]{1,48}")
SSM_PATH_RE = re.compile(r"/?[A-Za-z0-9_.\-/]{1,2000}")
# An owner of AMIs: an account id or one of EC2's owner aliases.
OWNER_RE = re.compile(rf"{ACCOUNT_ID_RE.pattern}|self|amazon|aws-marketplace|aws-backup-vault")


FIELDS = (
    "name", "images", "base_ami", "architecture", "volume", "provision", "salt", "tags",
    "builder", "ami_owners", "insecure_registries", "registry_credentials_parameter", "ansible",
    "runtime", "containerd_namespace", *DISTRIBUTION_FIELDS,
)  # fmt: skip
# Fields no image set goes without.
REQUIRED_FIELDS = ("name", "images", "base_ami")
VOLUME_FIELDS = ("size", "type", "encrypted", "kms_key_id")
BUILDER_FIELDS = (
    "instance_type", "subnet_id", "security_group_ids", "instance_profile",
    "automation_role_arn", "document_name", "timeout_minutes", "log_group",
)  # fmt: skip


def image_set_from_mapping(
    data: Any,
    source: str = "<spec>",
    locate: Locator = nowhere,
    base_dir: Path | None = None,
) -> ImageSet:
    """Validate a spec mapping (from a file or the Terraform query) into an ImageSet.

    `base_dir` is where relative Ansible paths start: the spec file's directory, or the working
    directory when None.
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"must be an object of fields, got {kind_of(data)}", source=source)
    try:
        check_plain(data)  # the loaders check too; a mapping may come from elsewhere
    except ValueError as err:
        raise SpecError(str(err), source=source) from None
    fields = Fields(data, source, locate)
    fields.reject_unknown(FIELDS)
    name = fields.string("name", required=True)
    if not NAME_RE.fullmatch(name):
        raise fields.error("name", f"{name!r} must be 1-48 lower-case letters, digits or dashes")
    insecure_registries, credentials_parameter = _access(fields)
    volume = _volume(fields.nested("volume"))
    return ImageSet(
        name=name,
        images=_images(fields),
        base_ami=_base_ami(fields),
        architecture=_architecture(fields),
        volume=volume,
        provision=_provision(fields),
        salt=fields.string("salt", ""),
        tags=_tags(fields),
        ansible=_ansible(fields, base_dir),
        runtime=_runtime(fields),
        builder=_builder(fields.nested("builder")),
        ami_owners=_owners(fields, "ami_owners") or (SELF_OWNER,),
        insecure_registries=insecure_registries,
        registry_credentials_parameter=credentials_parameter,
        distribution=distribution_from(fields, volume),
        source=source,
    )


def _images(fields: Fields) -> tuple[ImageReference, ...]:
    if fields.data.get("images") is None:
        raise fields.error("images", "is required")
    texts = fields.data["images"]
    if not isinstance(texts, list | tuple):
        raise fields.error("images", f"must be a list of image references, got {kind_of(texts)}")
    if not texts:
        raise fields.error("images", "is empty: an image set needs at least one image")
    try:
        return tuple(parse_references(list(texts)))
    except InvalidReference as err:
        raise fields.error("images", err.message) from err


def _base_ami(fields: Fields) -> BaseAmi:
    value = fields.data.get("base_ami")
    if value is None:
        raise fields.error("base_ami", "is required (an ami-... id, ssm:<path>, or {owners, name})")
    if isinstance(value, str):
        if AMI_ID_RE.fullmatch(value):
            return BaseAmi(ami_id=value)
        if value.startswith(SSM_PREFIX) and SSM_PATH_RE.fullmatch(value[len(SSM_PREFIX) :]):
            return BaseAmi(ssm_parameter=value[len(SSM_PREFIX) :])
        if value.startswith("ami-"):
            why = f"is not an AMI id: {AMI_ID_SHAPE}"
        elif value.startswith(SSM_PREFIX):
            why = "is not an SSM parameter path: letters, digits and _.-/ after ssm:"
        else:
            why = "must be an AMI id (ami-...), ssm:<parameter path>, or {owners, name}"
        raise fields.error("base_ami", f"{value!r} {why}")
    pattern = fields.nested("base_ami")
    pattern.reject_unknown(("owners", "owner", "name"))
    owners = _owners(pattern, "owners") or _owners(pattern, "owner")
    name_pattern = pattern.string("name", required=True)
    if not owners:
        raise pattern.error("owners", "is required with a name pattern")
    return BaseAmi(owners=owners, name_pattern=name_pattern)


def _owners(fields: Fields, name: str) -> tuple[str, ...]:
    value = fields.data.get(name)
    owners = (value,) if isinstance(value, str) else fields.strings(name)
    for owner in owners:
        if not OWNER_RE.fullmatch(owner):
            raise fields.error(name, f"{owner!r} is not a 12-digit account id or an owner alias")
    return owners


def _architecture(fields: Fields) -> str | None:
    value = fields.string("architecture")
    if value is not None and value not in ARCHITECTURES:
        raise fields.error("architecture", f"{value!r} must be one of {', '.join(ARCHITECTURES)}")
    return value


def _runtime(fields: Fields) -> Runtime:
    name = fields.string("runtime", DOCKER)
    if name not in RUNTIMES:
        raise fields.error("runtime", f"{name!r} must be one of {', '.join(RUNTIMES)}")
    namespace = fields.string("containerd_namespace") or None
    if namespace is None:
        return Runtime(name, DEFAULT_CONTAINERD_NAMESPACE if name == CONTAINERD else None)
    if name != CONTAINERD:
        raise fields.error("containerd_namespace", f'is set but runtime is "{name}"')
    if not CONTAINERD_NAMESPACE_RE.fullmatch(namespace):
        raise fields.error(
            "containerd_namespace",
            f"{namespace!r} is not a containerd namespace: letters and digits, in words joined "
            "by single '.', '_' or '-', at most 76 characters",
        )
    return Runtime(name, namespace)


def _volume(fields: Fields) -> Volume:
    fields.reject_unknown(VOLUME_FIELDS)
    volume_type = fields.string("type", "gp3")
    if volume_type not in VOLUME_TYPES:
        raise fields.error("type", f"{volume_type!r} must be one of {', '.join(VOLUME_TYPES)}")
    encrypted = fields.boolean("encrypted", True)
    kms_key_id = fields.string("kms_key_id") or None
    if kms_key_id and not encrypted:
        raise fields.error("kms_key_id", "is set but encrypted is false")
    if kms_key_id and not KMS_KEY_RE.fullmatch(kms_key_id):
        raise fields.error("kms_key_id", f"{kms_key_id!r} is not {KMS_KEY_SHAPE}")
    return Volume(
        size_gib=fields.integer("size", 30, 1, MAX_VOLUME_GIB),
        type=volume_type,
        encrypted=encrypted,
        kms_key_id=kms_key_id,
    )


def _provision(fields: Fields) -> tuple[str, ...]:
    commands = fields.strings("provision")
    for index, command in enumerate(commands):
        if not command.strip():
            raise fields.error("provision", f"command {index + 1} is empty")
        if "\0" in command:
            raise fields.error("provision", f"command {index + 1} contains a NUL byte")
    return commands


# EC2 allows 50 tags per resource; tfbake's own take up to about 20 (status, revocation and one
# per region copy), so the spec's get the rest.
MAX_EXTRA_TAGS = 30


def _tags(fields: Fields) -> tuple[tuple[str, str], ...]:
    tags = fields.mapping("tags")
    if len(tags) > MAX_EXTRA_TAGS:
        raise fields.error("tags", f"{len(tags)} tags; at most {MAX_EXTRA_TAGS} besides tfbake's")
    for key, value in tags.items():
        if not isinstance(value, str):
            raise fields.error("tags", f"value of {key!r} must be a string")
        problem = tfbake_tags.tag_problem(str(key), value)
        if problem:
            raise fields.error("tags", problem)
    return tuple(sorted((str(k), v) for k, v in tags.items()))


# Shapes of the builder settings, checked here so a typo fails before a bake starts.
BUILDER_PATTERNS = {
    "instance_type": (re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+"), "an instance type like t3.large"),
    "subnet_id": (re.compile(r"subnet-[0-9a-f]{8,17}"), "a subnet id (subnet-...)"),
    "security_group_ids": (re.compile(r"sg-[0-9a-f]{8,17}"), "security group ids (sg-...)"),
    # IAM names are ASCII: letters, digits and +=,.@_- (the runbook's allowedPattern says so).
    "instance_profile": (re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}"), "an instance profile name"),
    "automation_role_arn": (
        re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}"),
        "an IAM role ARN",
    ),
    "document_name": (re.compile(r"[a-zA-Z0-9_.:/-]{3,128}"), "an SSM document name"),
    "log_group": (re.compile(r"[A-Za-z0-9_./#-]{1,512}"), "a CloudWatch Logs group name"),
}
# Automations that run longer than 12 hours need an assume role (the caller's own session
# credentials expire), so a longer wait without one would end in a failed bake.
MAX_MINUTES_WITHOUT_ROLE = 12 * 60
SSM_PARAMETER_RE = re.compile(r"[A-Za-z0-9_.\-/]{1,2048}")
HOST_PORT_RE = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9a-fA-F:.]+\](?::[0-9]{1,5})?")


def _builder(fields: Fields) -> Builder:
    fields.reject_unknown(BUILDER_FIELDS)
    for name, (pattern, shape) in BUILDER_PATTERNS.items():
        value = fields.data.get(name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str) and item and not pattern.fullmatch(item):
                raise fields.error(name, f"{item!r} is not {shape}")
    builder = Builder(
        instance_type=fields.string("instance_type") or None,
        subnet_id=fields.string("subnet_id") or None,
        security_group_ids=fields.strings("security_group_ids"),
        instance_profile=fields.string("instance_profile") or None,
        automation_role_arn=fields.string("automation_role_arn") or None,
        document_name=fields.string("document_name") or None,
        timeout_minutes=fields.integer("timeout_minutes", 60, 1, 24 * 60),
        log_group=fields.string("log_group") or None,
    )
    if builder.timeout_minutes > MAX_MINUTES_WITHOUT_ROLE and not builder.automation_role_arn:
        raise fields.error(
            "timeout_minutes",
            f"{builder.timeout_minutes} minutes needs builder.automation_role_arn: SSM runs an "
            f"automation for longer than {MAX_MINUTES_WITHOUT_ROLE // 60} hours only under an "
            "assume role",
        )
    return builder


def _ansible(fields: Fields, base_dir: Path | None) -> Ansible | None:
    if fields.data.get("ansible") is None:
        return None
    # Packing a bundle needs tarfile and gzip; only specs that name a playbook load them.
    from tfbake.spec.ansible import AnsibleFieldError, ansible_from_mapping

    nested = fields.nested("ansible")
    try:
        return ansible_from_mapping(nested.data, base_dir or Path.cwd())
    except AnsibleFieldError as err:
        raise nested.error(err.field, err.message) from None


def _access(fields: Fields) -> tuple[tuple[str, ...], str | None]:
    """Insecure registries and the credentials parameter: how to reach images, not content."""
    insecure = fields.strings("insecure_registries")
    for host in insecure:
        if not HOST_PORT_RE.fullmatch(host):
            raise fields.error("insecure_registries", f"{host!r} is not a host[:port]")
    parameter = fields.string("registry_credentials_parameter") or None
    if parameter and not SSM_PARAMETER_RE.fullmatch(parameter):
        raise fields.error(
            "registry_credentials_parameter", f"{parameter!r} is not a parameter name"
        )
    return insecure, parameter
