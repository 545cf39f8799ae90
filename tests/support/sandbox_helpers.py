"""Starting and following bakes in the sandbox without the tfbake client: the runbook alone."""

from __future__ import annotations

import time
from typing import Any

from tests.support.specs import BUILDER_PROFILE
from tfbake.bake.documents import DocumentNames, ensure_documents, runbook_parameters

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGES = (
    f"docker.io/library/nginx:1.27@{DIGEST_A}",
    f"registry.example.com:5000/team/app@{DIGEST_B}",
)
FINGERPRINT = "f" * 64
IMAGE_NAME = f"tfbake-web-{FINGERPRINT[:16]}"


def clients(sandbox: Any) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 6})
    kwargs = {"endpoint_url": sandbox.url, "region_name": sandbox.region, "config": config}
    return boto3.client("ec2", **kwargs), boto3.client("ssm", **kwargs)


def register_base_ami(ec2: Any) -> str:
    return ec2.register_image(
        Name="base-linux",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]


def bake_parameters(base_ami_id: str, **overrides: Any) -> dict[str, list[str]]:
    arguments: dict[str, Any] = {
        "base_ami_id": base_ami_id,
        "instance_type": "t3.small",
        "subnet_id": None,
        "security_group_ids": [],
        "instance_profile": BUILDER_PROFILE,
        "volume_size_gib": 30,
        "volume_type": "gp3",
        "encrypted": True,
        "kms_key_id": None,
        "image_name": IMAGE_NAME,
        "fingerprint": FINGERPRINT,
        "set_name": "web",
        "images": IMAGES,
        "provision": ["echo 'hello world' > /etc/motd"],
        "registry_credentials_parameter": None,
        "ecr_registries": [],
        "region": "us-east-1",
        "automation_role_arn": None,
        "extra_tags": {"team": "platform"},
    }
    arguments.update(overrides)
    return runbook_parameters(**arguments)


def start_bake(
    ssm: Any, parameters: dict[str, list[str]], **extra: Any
) -> tuple[str, DocumentNames]:
    names = ensure_documents(ssm)
    started = ssm.start_automation_execution(
        DocumentName=names.runbook, Parameters=parameters, **extra
    )
    return started["AutomationExecutionId"], names


def wait_for_execution(ssm: Any, execution_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)
        details = execution["AutomationExecution"]
        if details["AutomationExecutionStatus"] in {"Success", "Failed", "Cancelled", "TimedOut"}:
            return details
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_id} still {details}")
        time.sleep(0.05)


def wait_for_step(ssm: Any, execution_id: str, step: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = ssm.get_automation_execution(AutomationExecutionId=execution_id)
        steps = details["AutomationExecution"]["StepExecutions"]
        if any(s["StepName"] == step for s in steps):
            return
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_id} never reached {step}")


def builders(ec2: Any) -> list[dict[str, Any]]:
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:tfbake:role", "Values": ["builder"]}]
    )["Reservations"]
    return [instance for r in reservations for instance in r["Instances"]]


def tfbake_images(ec2: Any) -> list[dict[str, Any]]:
    return ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "tag:tfbake:fingerprint", "Values": [FINGERPRINT]}]
    )["Images"]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}
