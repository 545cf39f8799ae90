"""Other AWS accounts of the sandbox, reached as AWS users reach them: AssumeRole."""

from __future__ import annotations

from typing import Any

import boto3

# The sandbox's own account (its default credentials), where its SSM Automation runs bakes.
SANDBOX_ACCOUNT = "123456789012"
IMAGE_ACCOUNT = "111111111111"
WORKLOAD_ACCOUNT = "222222222222"
OTHER_ACCOUNT = "333333333333"


def account_environment(account_id: str) -> dict[str, str]:
    """The credentials variables of a role in `account_id`, for a process such as `tfbake`."""
    sts = boto3.client("sts")
    role = f"arn:aws:iam::{account_id}:role/tfbake-test"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def account_client(service: str, account_id: str, region: str | None = None) -> Any:
    environment = account_environment(account_id)
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
    )
