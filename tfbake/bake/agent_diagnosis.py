"""Why a builder is not online in SSM, read from its console long before the runbook gives up.

WaitForBuilderOnline waits up to 15 minutes; a builder whose agent will never register (the base
AMI has none and the user data could not install it, no instance profile, no route to the SSM
endpoints) would hold the bake that long and then fail without a reason. The builder's user data
(builder-user-data.sh) writes what it did to the console as `tfbake-agent: ...` lines, and
GetConsoleOutput returns the console: from those lines, and from their absence once the builder
has had time to boot, this names the likely cause.
"""

from __future__ import annotations

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.bake.contract import builder_instances

AGENT_MARKER = "tfbake-agent: "
# Installing and registering the agent takes a minute or two on EC2: a builder whose console
# shows no failure is given this long before silence counts as a cause.
SILENT_GRACE_SECONDS = 300.0


def offline_builder_cause(aws: AwsContext, execution_id: str, waited_seconds: float) -> str | None:
    """The likely reason the execution's builder is not online in SSM; None when unknown yet."""
    region = aws.effective_region
    ec2 = aws.client("ec2")
    instances, _ = builder_instances(aws, execution_id, ["running"])
    if not instances:
        return None
    instance_id = instances[0]["InstanceId"]
    if not instances[0].get("IamInstanceProfile"):
        return (
            f"builder {instance_id} has no instance profile, so its SSM agent has no "
            "credentials to register (set builder.instance_profile)"
        )
    with aws_errors(f"ec2:GetConsoleOutput {instance_id}", region):
        # botocore decodes the base64 EC2 sends.
        console = ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
    return cause_from_console(instance_id, console, waited_seconds)


def cause_from_console(instance_id: str, console: str, waited_seconds: float) -> str | None:
    said = [
        line.split(AGENT_MARKER, 1)[1].strip()
        for line in console.splitlines()
        if AGENT_MARKER in line
    ]
    failed = [line for line in said if line.startswith(("install failed", "agent failed"))]
    if failed:
        return (
            f"the SSM agent never started on builder {instance_id}: {failed[-1]} (the base AMI "
            "has no agent and the builder could not install it: use a base AMI with the agent, "
            "or give the builder a route to S3 in its region)"
        )
    if waited_seconds < SILENT_GRACE_SECONDS:
        return None
    minutes = int(waited_seconds // 60)
    if any(line.startswith(("agent running", "agent present")) for line in said):
        return (
            f"the SSM agent runs on builder {instance_id} but has not registered in {minutes} "
            "min: no route to the SSM endpoints (ssm, ssmmessages, ec2messages: a NAT gateway "
            "or VPC endpoints in its subnet), or its instance profile lacks "
            "ssm:UpdateInstanceInformation"
        )
    if console.strip():
        return (
            f"no SSM agent started on builder {instance_id} in {minutes} min: its console shows "
            "no agent, and the user data that installs one did not run"
        )
    return None
