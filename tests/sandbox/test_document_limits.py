"""The sandbox's own model of SSM's 64 KB document limit: content and runtime values, counted
apart from tfbake's stricter reading, and enforced at exactly that size."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tfbake.model.document_budget import DOCUMENT_SIZE_LIMIT, document_size
from tfbake.sandbox import Sandbox
from tfbake.sandbox.machines.agent import RUN_SHELL_SCRIPT
from tfbake.sandbox.ssm.document_limits import DOCUMENT_LIMIT_BYTES, document_bytes

INSTANCE = "i-0123456789abcdef0"


def test_the_values_count_and_their_names_do_not() -> None:
    parameters = {"commands": ["é" * 10, "x"]}

    assert document_bytes("{}", parameters) == 2 + 20 + 1
    # tfbake's own reading is stricter: it counts the names too.
    assert document_size("{}", parameters) == document_bytes("{}", parameters) + len("commands")
    assert DOCUMENT_LIMIT_BYTES == DOCUMENT_SIZE_LIMIT == 65536


def send(ssm: Any, values_bytes: int) -> Any:
    return ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[INSTANCE],
        Parameters={"commands": ["x" * values_bytes]},
    )


def test_send_command_is_refused_one_byte_past_the_limit(sandbox: Sandbox) -> None:
    ssm = boto3.client("ssm")
    # AWS's own shell-script document, as the sandbox serves it.
    content = json.dumps(RUN_SHELL_SCRIPT)
    room = DOCUMENT_LIMIT_BYTES - len(content.encode("utf-8"))

    with pytest.raises(ClientError) as caught:
        send(ssm, room + 1)
    assert caught.value.response["Error"]["Code"] == "MaxDocumentSizeExceeded"
    try:
        send(ssm, room)
    except ClientError as err:
        assert err.response["Error"]["Code"] != "MaxDocumentSizeExceeded"
