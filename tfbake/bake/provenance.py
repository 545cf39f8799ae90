"""Proof that an AMI a bake returns was made by tfbake's runbook, not by anyone's tags.

Tags are not proof: whoever may tag an image can tag it ready with any fingerprint. A baked
AMI is returned only when all of these hold:
- the image is the `CreateImage.ImageId` output of the execution the bake ran or attached to;
- the execution succeeded and ran tfbake's runbook: its document name is the content-addressed
  name of the runbook this tfbake renders (or the configured `builder.document_name`), and the
  version it ran has this tfbake's content hash (DescribeDocument's Hash of that version);
- the image carries `tfbake:execution-id` of that execution and is marked ready.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfbake.aws.calls import aws_errors
from tfbake.bake.contract import IMAGE_OUTPUT
from tfbake.bake.execution import SUCCESS, read_execution
from tfbake.model import tags
from tfbake.model.ami import AmiRecord
from tfbake.model.errors import BakeFailed


def proven_image(
    ssm: Any,
    execution_id: str,
    candidates: Sequence[AmiRecord],
    *,
    configured_runbook: str | None,
    region: str,
    execution: dict[str, Any] | None = None,
) -> AmiRecord:
    """The ready AMI among `candidates` that execution `execution_id` provably created; from
    `execution`, its GetAutomationExecution answer, when the caller has read it already."""
    if not execution or execution.get("AutomationExecutionId") != execution_id:
        execution = read_execution(ssm, execution_id, region)
    _verify_runbook(ssm, execution, configured_runbook, region)
    if execution.get("AutomationExecutionStatus") != SUCCESS:
        raise _unproven(execution_id, f"it is {execution.get('AutomationExecutionStatus')}")
    outputs = (execution.get("Outputs") or {}).get(IMAGE_OUTPUT) or []
    if len(outputs) != 1:
        raise _unproven(execution_id, f"it reports no single {IMAGE_OUTPUT}")
    image_id = outputs[0]
    record = next((r for r in candidates if r.ami_id == image_id), None)
    if record is None or not record.usable:
        raise _unproven(execution_id, f"its image {image_id} is not a ready AMI of the fingerprint")
    if record.tags.get(tags.EXECUTION_ID) != execution_id:
        raise _unproven(execution_id, f"its image {image_id} names another execution")
    return record


def _verify_runbook(
    ssm: Any, execution: dict[str, Any], configured: str | None, region: str
) -> None:
    from tfbake.bake.documents import (
        content_hash,
        document_names,
        runbook_content,
        verify_document_hash,
    )

    name = execution.get("DocumentName", "")
    expected = configured or document_names().runbook
    if name != expected:
        raise _unproven(execution["AutomationExecutionId"], f"it ran {name}, not {expected}")
    if configured:
        return  # the operator's own runbook: its content is theirs to vouch for
    version = execution.get("DocumentVersion")
    with aws_errors(f"ssm:DescribeDocument {name}", region):
        described = ssm.describe_document(
            Name=name, **({"DocumentVersion": version} if version else {})
        )["Document"]
    verify_document_hash(described, name, content_hash(runbook_content()), region)


def _unproven(execution_id: str, why: str) -> BakeFailed:
    return BakeFailed(f"bake {execution_id} is not proven to have made its AMI: {why}")
