"""What a bake is told: the runbook's parameters for one plan, and the AMI's name."""

from __future__ import annotations

from typing import Any

from tfbake.model.errors import BadInput
from tfbake.model.plan import Plan
from tfbake.model.reference import is_ecr_host

DEFAULT_INSTANCE_TYPES = {"x86_64": "t3.large", "arm64": "t4g.large"}


def image_name(plan: Plan) -> str:
    """AMI names are unique per account and region; the fingerprint makes this one unique."""
    return f"tfbake-{plan.image_set.name}-{plan.fingerprint.short}"


def lock_image_name(name: str, token: str, *, unique: bool) -> str:
    """The AMI's name in the bake of one lock: with `unique`, suffixed from the lock's token.

    Not from the clock: every client that starts the bake of one lock must send the same
    parameters with its token, or SSM refuses the retry (IdempotentParameterMismatch).
    """
    return f"{name}-{token[:8]}" if unique else name


def ecr_registries(plan: Plan) -> list[str]:
    hosts = {image.reference.registry for image in plan.images}
    return sorted(host for host in hosts if is_ecr_host(host))


def refuse_doomed_bake(plan: Plan) -> None:
    """Refuse, before anything starts, a bake that cannot succeed for want of a setting."""
    if not plan.image_set.builder.instance_profile:
        raise BadInput(
            "builder.instance_profile is empty: a builder without an instance profile never "
            "registers with SSM, so the bake would wait at WaitForBuilderOnline until it times "
            "out; set builder.instance_profile (modules/bake-infra's builder output has one)"
        )
    ecr = set(ecr_registries(plan))
    private = sorted(
        str(image.reference)
        for image in plan.images
        if image.needs_credentials and image.reference.registry not in ecr
    )
    if private and not plan.image_set.registry_credentials_parameter:
        raise BadInput(
            f"{', '.join(private)} resolved only with your local registry credentials, which "
            "the builder does not have, so it could not pull; set registry_credentials_parameter "
            "to an SSM SecureString parameter holding Docker auths for the builder"
        )


def start_parameters(plan: Plan, region: str, name: str) -> dict[str, list[str]]:
    from tfbake.bake.documents import runbook_parameters

    refuse_doomed_bake(plan)
    image_set = plan.image_set
    builder = image_set.builder
    volume = image_set.volume
    arguments: dict[str, Any] = {
        "base_ami_id": plan.base_ami_id,
        "instance_type": builder.instance_type or DEFAULT_INSTANCE_TYPES[plan.architecture],
        "subnet_id": builder.subnet_id,
        "security_group_ids": builder.security_group_ids,
        "instance_profile": builder.instance_profile,
        "volume_size_gib": volume.size_gib,
        "volume_type": volume.type,
        "encrypted": volume.encrypted,
        "kms_key_id": volume.kms_key_id,
        "image_name": name,
        "fingerprint": plan.fingerprint.value,
        "set_name": image_set.name,
        "images": sorted({str(image.pinned) for image in plan.images}),
        "provision": image_set.provision,
        "registry_credentials_parameter": image_set.registry_credentials_parameter,
        "ecr_registries": ecr_registries(plan),
        "region": region,
        "automation_role_arn": builder.automation_role_arn,
        "extra_tags": dict(image_set.tags),
        "recipe_log_group": builder.log_group,
        "runtime": image_set.runtime.name,
        "containerd_namespace": image_set.runtime.namespace,
    }
    if image_set.ansible is not None:
        arguments["ansible_bundle"] = image_set.ansible.encoded()
        arguments["ansible_playbook"] = image_set.ansible.playbook
        arguments["ansible_extra_vars"] = image_set.ansible.extra_vars_json
    return runbook_parameters(**arguments)
