"""The sandbox runs tfbake's runbook itself: success, a failure at every step, stop, filters."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.sandbox_helpers import (
    IMAGE_NAME,
    IMAGES,
    bake_parameters,
    builders,
    clients,
    register_base_ami,
    start_bake,
    tags_of,
    tfbake_images,
    wait_for_execution,
    wait_for_step,
)
from tfbake.bake.documents import runbook_content
from tfbake.sandbox import Sandbox


def _success_path() -> list[dict[str, Any]]:
    """The runbook's steps in the order a bake without a KMS key runs them."""
    steps = yaml.safe_load(runbook_content())["mainSteps"]
    by_name = {step["name"]: step for step in steps}
    path, step = [], steps[0]
    while True:
        path.append(step)
        if step.get("isEnd"):
            return path
        if step["action"] == "aws:branch":
            # No KmsKeyId in these bakes: the choice comparing it with its default is taken.
            choices = step["inputs"]["Choices"]
            target = next(c["NextStep"] for c in choices if c.get("StringEquals") == "none")
        else:
            target = step.get("nextStep") or steps[steps.index(step) + 1]["name"]
        step = by_name[target]


def _failable_steps() -> list[str]:
    names = [step["name"] for step in _success_path()]
    launch = next(s["name"] for s in _success_path() if s["action"] == "aws:runInstances")
    return names[names.index(launch) :]


@pytest.fixture
def aws(sandbox: Sandbox) -> tuple[Any, Any, str]:
    ec2, ssm = clients(sandbox)
    return ec2, ssm, register_base_ami(ec2)


def _first_failed_step(details: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in details["StepExecutions"] if s["StepStatus"] == "Failed")


def test_a_bake_launches_records_creates_tags_and_terminates(aws: Any, sandbox: Sandbox) -> None:
    ec2, ssm, base_ami = aws
    execution_id, names = start_bake(ssm, bake_parameters(base_ami))

    details = wait_for_execution(ssm, execution_id)

    assert details["AutomationExecutionStatus"] == "Success", details.get("FailureMessage")
    [image_id] = details["Outputs"]["CreateImage.ImageId"]
    [builder] = builders(ec2)
    assert builder["State"]["Name"] == "terminated"
    assert builder["MetadataOptions"]["HttpTokens"] == "required"
    assert tags_of(builder)["tfbake:execution-id"] == execution_id
    [image] = tfbake_images(ec2)
    assert image["ImageId"] == image_id
    assert image["Name"] == IMAGE_NAME
    assert tags_of(image)["tfbake:status"] == "ready"
    assert tags_of(image)["tfbake:base-ami"] == base_ami
    assert tags_of(image)["team"] == "platform"
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]]
    snapshots = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    assert all(tags_of(s)["tfbake:execution-id"] == execution_id for s in snapshots)
    [command] = sandbox.recorded_commands()
    assert command.document_name == names.recipe
    assert command.instance_ids == (builder["InstanceId"],)
    assert command.parameters["Images"] == [" ".join(IMAGES)]
    provision = base64.b64decode(command.parameters["Provision"][0])
    assert provision == b"echo 'hello world' > /etc/motd\0"


@pytest.mark.parametrize("step", _failable_steps())
def test_a_failure_at_any_step_terminates_the_builder_and_leaves_no_ready_image(
    aws: Any, sandbox: Sandbox, step: str
) -> None:
    ec2, ssm, base_ami = aws
    sandbox.inject_failure(step, f"injected failure in {step}")
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))

    details = wait_for_execution(ssm, execution_id)

    assert details["AutomationExecutionStatus"] == "Failed"
    assert _first_failed_step(details)["StepName"] == step
    assert step in details["FailureMessage"]
    assert [b["State"]["Name"] for b in builders(ec2)] == ["terminated"]
    assert not any(tags_of(i).get("tfbake:status") == "ready" for i in tfbake_images(ec2))
    assert tfbake_images(ec2) == []  # deregistered: its name is free for the next bake


def test_a_bake_after_a_failed_one_succeeds(aws: Any, sandbox: Sandbox) -> None:
    ec2, ssm, base_ami = aws
    sandbox.inject_failure("MarkImageReady", "tagging denied")
    failed, _ = start_bake(ssm, bake_parameters(base_ami))
    assert wait_for_execution(ssm, failed)["AutomationExecutionStatus"] == "Failed"
    sandbox.clear_faults()

    retried, _ = start_bake(ssm, bake_parameters(base_ami))

    assert wait_for_execution(ssm, retried)["AutomationExecutionStatus"] == "Success"
    assert [tags_of(i)["tfbake:status"] for i in tfbake_images(ec2)] == ["ready"]


def test_the_failed_command_carries_the_failure_in_its_output(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, base_ami = aws
    sandbox.inject_failure("RunRecipe", "pull failed: docker.io/library/nginx")
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    details = wait_for_execution(ssm, execution_id)
    [command] = sandbox.recorded_commands()
    assert _first_failed_step(details)["Outputs"]["CommandId"] == [command.command_id]

    invocation = ssm.get_command_invocation(
        CommandId=command.command_id, InstanceId=command.instance_ids[0]
    )
    listed = ssm.list_command_invocations(CommandId=command.command_id, Details=True)

    assert invocation["Status"] == "Failed"
    assert "pull failed: docker.io/library/nginx" in invocation["StandardOutputContent"]
    assert listed["CommandInvocations"][0]["CommandPlugins"][0]["Status"] == "Failed"


def test_a_value_outside_the_runbook_patterns_is_refused_at_start(aws: Any) -> None:
    ec2, ssm, base_ami = aws
    # tfbake itself refuses such a reference before the call: sent past it, as anyone could.
    parameters = {**bake_parameters(base_ami), "Images01": ["nginx; rm -rf /"]}

    with pytest.raises(ssm.exceptions.InvalidAutomationExecutionParametersException) as caught:
        start_bake(ssm, parameters)

    assert "Images01" in str(caught.value)
    assert builders(ec2) == []


def test_a_kms_key_takes_the_launch_step_that_sets_it(aws: Any) -> None:
    _, ssm, base_ami = aws
    parameters = bake_parameters(base_ami, kms_key_id="alias/tfbake-amis")

    details = wait_for_execution(ssm, start_bake(ssm, parameters)[0])

    ran = [s["StepName"] for s in details["StepExecutions"]]
    assert details["AutomationExecutionStatus"] == "Success", details.get("FailureMessage")
    assert "LaunchBuilderWithKmsKey" in ran
    assert "LaunchBuilder" not in ran


def test_one_client_token_starts_one_execution(aws: Any) -> None:
    _, ssm, base_ami = aws
    token = str(uuid.uuid4())
    first, names = start_bake(ssm, bake_parameters(base_ami), ClientToken=token)

    again, _ = start_bake(ssm, bake_parameters(base_ami), ClientToken=token)

    assert again == first
    listed = ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    assert [e["AutomationExecutionId"] for e in listed] == [first]
    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        ssm.start_automation_execution(
            DocumentName=names.runbook,
            Parameters=bake_parameters(base_ami, set_name="other"),
            ClientToken=token,
        )


def test_a_stopped_execution_runs_its_cancel_workflow_and_leaves_no_builder(
    aws: Any, sandbox: Sandbox
) -> None:
    ec2, ssm, base_ami = aws
    sandbox.delay_step("RunRecipe", 30)
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    wait_for_step(ssm, execution_id, "RunRecipe")

    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    details = wait_for_execution(ssm, execution_id, timeout=5)

    assert details["AutomationExecutionStatus"] == "Cancelled"
    ran = [s["StepName"] for s in details["StepExecutions"]]
    assert ran[ran.index("RunRecipe") + 1 :] == ["FindBuilderOnCancel", "TerminateBuilderOnCancel"]
    assert [b["State"]["Name"] for b in builders(ec2)] == ["terminated"]
    assert not any(s["StepName"] == "StopBuilder" for s in details["StepExecutions"])


def test_describe_filters_and_pages_executions(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, base_ami = aws
    sandbox.inject_failure("RunRecipe", "boom")
    failed, _ = start_bake(ssm, bake_parameters(base_ami))
    wait_for_execution(ssm, failed)
    sandbox.clear_faults()
    tags = [{"Key": "tfbake:fingerprint", "Value": "f" * 64}]
    tagged, _ = start_bake(ssm, bake_parameters(base_ami), Tags=tags)
    wait_for_execution(ssm, tagged)

    def ids(*filters: dict[str, Any]) -> list[str]:
        listed = ssm.describe_automation_executions(Filters=list(filters))
        return [e["AutomationExecutionId"] for e in listed["AutomationExecutionMetadataList"]]

    assert ids({"Key": "ExecutionId", "Values": [failed]}) == [failed]
    assert ids({"Key": "ExecutionStatus", "Values": ["Failed"]}) == [failed]
    assert ids({"Key": "TagKey", "Values": ["tfbake:fingerprint"]}) == [tagged]
    assert set(ids({"Key": "DocumentNamePrefix", "Values": ["tfbake-bake-"]})) == {failed, tagged}
    assert ids({"Key": "DocumentNamePrefix", "Values": ["other-"]}) == []
    paginator = ssm.get_paginator("describe_automation_executions")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 1}))
    assert [len(p["AutomationExecutionMetadataList"]) for p in pages] == [1, 1]


def test_throttled_calls_fail_then_succeed(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, base_ami = aws
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    no_retries = boto3.client(
        "ssm",
        endpoint_url=sandbox.url,
        region_name=sandbox.region,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    sandbox.throttle("GetAutomationExecution", 2)

    for _ in range(2):
        with pytest.raises(ClientError, match="ThrottlingException"):
            no_retries.get_automation_execution(AutomationExecutionId=execution_id)
    answer = no_retries.get_automation_execution(AutomationExecutionId=execution_id)

    assert answer["AutomationExecution"]["AutomationExecutionId"] == execution_id


def test_a_retrying_client_survives_throttling(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, base_ami = aws
    execution_id, _ = start_bake(ssm, bake_parameters(base_ami))
    sandbox.log.clear()
    sandbox.throttle("GetAutomationExecution", 3)

    details = wait_for_execution(ssm, execution_id)

    assert details["AutomationExecutionStatus"] == "Success"
    assert sandbox.log.count("GetAutomationExecution") >= 4  # throttled calls are logged too


def test_faults_can_be_set_over_http(aws: Any, sandbox: Sandbox) -> None:
    _, ssm, base_ami = aws

    def call(method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{sandbox.url}{path}", data=data, method=method)
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    call("POST", "/tfbake-sandbox/faults", {"step": "StopBuilder", "fail": "over http"})
    call("POST", "/tfbake-sandbox/faults", {"throttle": {"action": "StartAutomationExecution"}})
    failed = wait_for_execution(ssm, start_bake(ssm, bake_parameters(base_ami))[0])
    call("DELETE", "/tfbake-sandbox/faults")
    passed = wait_for_execution(ssm, start_bake(ssm, bake_parameters(base_ami))[0])
    commands = call("GET", "/tfbake-sandbox/commands")["Commands"]

    assert _first_failed_step(failed)["FailureMessage"] == "over http"
    assert passed["AutomationExecutionStatus"] == "Success"
    assert sandbox.log.count("StartAutomationExecution") == 3  # one throttled, then two
    assert [c["Parameters"]["Images"] for c in commands] == [[" ".join(IMAGES)]] * 2


def test_running_instances_with_a_profile_are_online_in_ssm(aws: Any) -> None:
    ec2, ssm, base_ami = aws
    profile = {"Name": "tfbake-builder"}
    running, stopped = (
        ec2.run_instances(ImageId=base_ami, MinCount=1, MaxCount=1, IamInstanceProfile=profile)[
            "Instances"
        ][0]["InstanceId"]
        for _ in range(2)
    )
    # Without an instance profile the agent has no credentials and never registers.
    ec2.run_instances(ImageId=base_ami, MinCount=1, MaxCount=1)
    ec2.stop_instances(InstanceIds=[stopped])

    listed = ssm.describe_instance_information()["InstanceInformationList"]
    filtered = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [running]}]
    )["InstanceInformationList"]

    assert [(i["InstanceId"], i["PingStatus"]) for i in listed] == [(running, "Online")]
    assert [i["InstanceId"] for i in filtered] == [running]


def test_an_image_name_is_unique_as_on_aws(aws: Any) -> None:
    ec2, _, base_ami = aws
    instance = ec2.run_instances(ImageId=base_ami, MinCount=1, MaxCount=1)["Instances"][0]
    ec2.create_image(InstanceId=instance["InstanceId"], Name=IMAGE_NAME)

    with pytest.raises(ClientError, match=r"InvalidAMIName\.Duplicate"):
        ec2.create_image(InstanceId=instance["InstanceId"], Name=IMAGE_NAME)


def test_an_unknown_runbook_is_refused(aws: Any) -> None:
    _, ssm, _ = aws
    with pytest.raises(ClientError, match="AutomationDefinitionNotFound"):
        ssm.start_automation_execution(DocumentName="no-such-runbook", Parameters={})


def test_parameters_outside_the_runbook_are_refused(aws: Any) -> None:
    _, ssm, base_ami = aws
    with pytest.raises(ClientError, match="InvalidAutomationExecutionParameters"):
        start_bake(ssm, {**bake_parameters(base_ami), "Fingerprint": ["not-hex"]})
