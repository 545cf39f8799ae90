"""Bakes in the sandbox: its seeded base image, plans of test specs, the builder's instance
profile, a silent progress sink."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.specs import BUILDER_PROFILE, spec_data
from tfbake.aws.calls import AwsContext
from tfbake.bake.lock import LOCK_PREFIX, LockRecord
from tfbake.model.plan import Plan
from tfbake.pipeline import plan_image_set
from tfbake.spec.mapping import image_set_from_mapping

# Amazon Linux 2023's public parameter; the sandbox registers the AMI it names.
BASE = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def plan_for(aws: AwsContext, **changes: Any) -> Plan:
    return plan_image_set(image_set_from_mapping(spec_data(base_ami=BASE, **changes)), aws)


def create_builder_profile(aws: AwsContext) -> None:
    """The instance profile the test specs' builders use, as modules/bake-infra creates one."""
    aws.client("iam").create_instance_profile(InstanceProfileName=BUILDER_PROFILE)


def no_progress(_: Any) -> None:
    pass


def hold_lock(aws: AwsContext, fingerprint: str, execution_id: str = "") -> LockRecord:
    """The bake lock of `fingerprint` as a client leaves it that created it (and, given an
    execution id, recorded its bake), then died: written as tfbake writes it."""
    record = LockRecord(str(uuid.uuid4()), execution_id, "a-client-that-died/1")
    aws.client("ssm").put_parameter(
        Name=LOCK_PREFIX + fingerprint, Value=record.encode(), Type="String", Overwrite=False
    )
    return record
