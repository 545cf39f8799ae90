"""The sandbox holds runbooks to AWS's Automation contract: onCancel, maxAttempts, step pages."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.support.sandbox_helpers import (
    bake_parameters,
    builders,
    clients,
    register_base_ami,
    start_bake,
    tfbake_images,
    wait_for_execution,
    wait_for_step,
)
from tfbake.bake.documents import ensure_documents, runbook_content
from tfbake.bake.execution import snapshot
from tfbake.sandbox import Sandbox


@pytest.fixture
def aws(sandbox: Sandbox) -> tuple[Any, Any, str]:
    ec2, ssm = clients(sandbox)
    return ec2, ssm, register_base_ami(ec2)


def test_a_cancel_after_create_image_removes_the_image_and_the_builder(
    aws: Any, sandbox: Sandbox
) -> None:
    ec2, ssm, base_ami = aws
    sandbox.delay_step("WaitForImage", 30)
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    wait_for_step(ssm, execution_id, "WaitForImage")
    assert [i["State"] for i in tfbake_images(ec2)] == ["available"]

    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    details = wait_for_execution(ssm, execution_id, timeout=5)

    assert details["AutomationExecutionStatus"] == "Cancelled"
    assert tfbake_images(ec2) == []
    assert [b["State"]["Name"] for b in builders(ec2)] == ["terminated"]


@pytest.mark.parametrize("path", ["FindBuilderOnFailure", "FindBuilderOnCancel"])
def test_a_builder_the_cleanup_path_cannot_list_yet_is_found_again_and_terminated(
    aws: Any, sandbox: Sandbox, path: str
) -> None:
    ec2, ssm, base_ami = aws
    # EC2's eventual consistency: the first read of the path does not list the builder yet.
    sandbox.not_found_reads(path, 1)
    if path == "FindBuilderOnFailure":
        sandbox.inject_failure("RunRecipe", "pull failed")
    else:
        sandbox.delay_step("RunRecipe", 30)
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    if path == "FindBuilderOnCancel":
        wait_for_step(ssm, execution_id, "RunRecipe")
        ssm.stop_automation_execution(AutomationExecutionId=execution_id)

    details = wait_for_execution(ssm, execution_id, timeout=10)

    assert details["AutomationExecutionStatus"] in ("Failed", "Cancelled")
    assert [b["State"]["Name"] for b in builders(ec2)] == ["terminated"]


def test_a_cancel_workflow_ends_at_its_time_limit(aws: Any, sandbox: Sandbox) -> None:
    ec2, ssm, base_ami = aws
    sandbox.controls.limits.cancel_workflow_seconds = 1.0
    sandbox.delay_step("RunRecipe", 30)
    sandbox.delay_step("TerminateBuilderOnCancel", 30)
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    wait_for_step(ssm, execution_id, "RunRecipe")

    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    details = wait_for_execution(ssm, execution_id, timeout=5)

    assert details["AutomationExecutionStatus"] == "Cancelled"
    [last] = [s for s in details["StepExecutions"] if s["StepName"] == "TerminateBuilderOnCancel"]
    assert last["StepStatus"] == "Cancelled"
    assert [b["State"]["Name"] for b in builders(ec2)] == ["running"]


def _runbook_with(step_name: str, **changes: Any) -> str:
    document = yaml.safe_load(runbook_content())
    for step in document["mainSteps"]:
        if step["name"] == step_name:
            step.update(changes)
    return yaml.safe_dump(document)


@pytest.mark.parametrize("step", ["LaunchBuilder", "TagImageExtra"])
def test_on_cancel_where_aws_refuses_it_is_refused_at_create_document(aws: Any, step: str) -> None:
    _, ssm, _ = aws
    content = _runbook_with(step, onCancel="step:FindBuilderOnCancel")

    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="refused-runbook",
            Content=content,
            DocumentType="Automation",
            DocumentFormat="YAML",
        )

    assert raised.value.response["Error"]["Code"] == "InvalidDocumentContent"
    assert step in raised.value.response["Error"]["Message"]


@pytest.mark.parametrize("step", ["IdentifyBuilder", "WaitForImage"])
def test_a_first_read_that_finds_nothing_yet_is_retried(
    aws: Any, sandbox: Sandbox, step: str
) -> None:
    _, ssm, base_ami = aws
    sandbox.not_found_reads(step, 1)
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))

    details = wait_for_execution(ssm, execution_id)

    assert details["AutomationExecutionStatus"] == "Success", details.get("FailureMessage")
    [record] = [s for s in details["StepExecutions"] if s["StepName"] == step]
    assert record["MaxAttempts"] > 1


def test_a_read_that_finds_nothing_fails_a_step_without_max_attempts(
    aws: Any, sandbox: Sandbox
) -> None:
    _, ssm, base_ami = aws
    ensure_documents(ssm)  # the recipe document the runbook runs
    content = _runbook_with("WaitForImage", maxAttempts=1)
    ssm.create_document(
        Name="single-attempt", Content=content, DocumentType="Automation", DocumentFormat="YAML"
    )
    sandbox.not_found_reads("WaitForImage", 1)

    started = ssm.start_automation_execution(
        DocumentName="single-attempt", Parameters=bake_parameters(base_ami)
    )
    details = wait_for_execution(ssm, started["AutomationExecutionId"])

    assert details["AutomationExecutionStatus"] == "Failed"
    assert "InvalidAMIID.NotFound" in details["FailureMessage"]


def test_step_executions_past_the_kept_number_are_truncated_and_paged(
    aws: Any, sandbox: Sandbox
) -> None:
    _, ssm, base_ami = aws
    sandbox.controls.limits.step_executions_kept = 4
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    wait_for_execution(ssm, execution_id)

    details = ssm.get_automation_execution(AutomationExecutionId=execution_id)
    pages = ssm.get_paginator("describe_automation_step_executions").paginate(
        AutomationExecutionId=execution_id, PaginationConfig={"PageSize": 3}
    )
    paged = [s["StepName"] for page in pages for s in page["StepExecutions"]]

    kept = details["AutomationExecution"]["StepExecutions"]
    assert details["AutomationExecution"]["StepExecutionsTruncated"] is True
    assert len(kept) == 4
    assert paged[:4] == [s["StepName"] for s in kept]
    assert paged[-1] == "MarkImageReady"
    assert len(paged) > 6  # more than two pages


def test_create_document_fails_at_the_account_limit(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, _ = aws
    sandbox.controls.limits.documents = 2
    step = {"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["true"]}}
    content = yaml.safe_dump({"schemaVersion": "2.2", "description": "x", "mainSteps": [step]})
    for name in ("first-doc", "second-doc"):
        ssm.create_document(
            Name=name, Content=content, DocumentType="Command", DocumentFormat="YAML"
        )

    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="third-doc", Content=content, DocumentType="Command", DocumentFormat="YAML"
        )

    assert raised.value.response["Error"]["Code"] == "DocumentLimitExceeded"


def test_a_truncated_execution_is_read_whole(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, base_ami = aws
    sandbox.controls.limits.step_executions_kept = 3
    sandbox.inject_failure("RunRecipe", "pull failed")
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    wait_for_execution(ssm, execution_id)

    state = snapshot(ssm, execution_id, sandbox.region)

    assert state.failure is not None and state.failure.step == "RunRecipe"
    assert state.steps_done > 3
