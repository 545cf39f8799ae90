"""Which AMIs the region still launches from: the in-use scan that protects AMIs from gc.

An AMI counts as in use when anything could start an instance from it, or already has:
every version of every launch template (an ASG or a rollback may pin an old version), every
launch configuration, every autoscaling group (through its launch template version or launch
configuration), and every instance that is not terminated (a stopped one restarts from its
root volume, but a replacement or a re-image needs the AMI). Every call is paginated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code, paginate
from tfbake.model.errors import AwsError

# Every instance state but terminated: shutting-down instances still hold the AMI for a moment.
LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
SSM_ALIAS_PREFIX = "resolve:ssm:"


@dataclass(frozen=True)
class Use:
    """One reference that keeps an AMI in use."""

    kind: str  # launch-template, launch-configuration, autoscaling-group, instance
    resource: str  # the template's, configuration's, group's name or the instance id
    detail: str = ""  # which version, or the instance state

    def __str__(self) -> str:
        return f"{self.kind} {self.resource}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class _Template:
    template_id: str
    name: str
    default_version: int
    latest_version: int
    images: Mapping[int, str]  # version number -> AMI id


UsageMap = Mapping[str, tuple[Use, ...]]  # AMI id -> what uses it


def scan_usage(aws: AwsContext) -> UsageMap:
    """Every AMI referenced in the region, with what references it."""
    region = aws.effective_region
    ec2 = aws.client("ec2")
    autoscaling = aws.client("autoscaling")
    uses: dict[str, list[Use]] = defaultdict(list)

    templates = _launch_templates(aws, ec2, region)
    for template in templates:
        for version, image in sorted(template.images.items()):
            uses[image].append(Use("launch-template", template.name, f"version {version}"))

    with aws_errors("autoscaling:DescribeLaunchConfigurations", region):
        configurations = {
            c["LaunchConfigurationName"]: c.get("ImageId", "")
            for c in paginate(autoscaling, "describe_launch_configurations", "LaunchConfigurations")
        }
    for configuration, image in configurations.items():
        uses[image].append(Use("launch-configuration", configuration))

    with aws_errors("autoscaling:DescribeAutoScalingGroups", region):
        groups = list(paginate(autoscaling, "describe_auto_scaling_groups", "AutoScalingGroups"))
    for group in groups:
        for image, detail in _group_images(group, templates, configurations):
            uses[image].append(Use("autoscaling-group", group["AutoScalingGroupName"], detail))

    filters = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
    with aws_errors("ec2:DescribeInstances", region):
        for reservation in paginate(ec2, "describe_instances", "Reservations", Filters=filters):
            for instance in reservation["Instances"]:
                state = instance.get("State", {}).get("Name", "")
                uses[instance.get("ImageId", "")].append(
                    Use("instance", instance["InstanceId"], state)
                )
    uses.pop("", None)
    return {image: tuple(found) for image, found in uses.items()}


def _launch_templates(aws: AwsContext, ec2: Any, region: str) -> list[_Template]:
    with aws_errors("ec2:DescribeLaunchTemplates", region):
        listed = list(paginate(ec2, "describe_launch_templates", "LaunchTemplates"))
    templates = []
    for listing in listed:
        template_id = listing["LaunchTemplateId"]
        # No Versions filter: every version, not only $Default and $Latest.
        with aws_errors(f"ec2:DescribeLaunchTemplateVersions {template_id}", region):
            versions = list(
                paginate(
                    ec2,
                    "describe_launch_template_versions",
                    "LaunchTemplateVersions",
                    LaunchTemplateId=template_id,
                )
            )
        images = {}
        for version in versions:
            image = version.get("LaunchTemplateData", {}).get("ImageId", "")
            if image.startswith(SSM_ALIAS_PREFIX):
                image = _resolve_alias(aws, image, region)
            if image:
                images[int(version["VersionNumber"])] = image
        templates.append(
            _Template(
                template_id,
                listing.get("LaunchTemplateName", template_id),
                int(listing.get("DefaultVersionNumber", 0)),
                int(listing.get("LatestVersionNumber", 0)),
                images,
            )
        )
    return templates


def _resolve_alias(aws: AwsContext, image: str, region: str) -> str:
    """A `resolve:ssm:` image id names the AMI its parameter holds at launch time."""
    parameter = image[len(SSM_ALIAS_PREFIX) :]
    try:
        with aws_errors(f"ssm:GetParameter {parameter}", region):
            return str(aws.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"])
    except AwsError as err:
        # A parameter that no longer exists launches nothing; anything else must stop gc.
        if error_code(err) == "ParameterNotFound":
            return ""
        raise


def _group_images(
    group: Mapping[str, Any], templates: Iterable[_Template], configurations: Mapping[str, str]
) -> list[tuple[str, str]]:
    specs = []
    if group.get("LaunchTemplate"):
        specs.append(group["LaunchTemplate"])
    policy = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
    if policy.get("LaunchTemplateSpecification"):
        specs.append(policy["LaunchTemplateSpecification"])
    specs.extend(
        o["LaunchTemplateSpecification"]
        for o in policy.get("Overrides", [])
        if o.get("LaunchTemplateSpecification")
    )
    found = []
    for spec in specs:
        template = _find_template(spec, templates)
        if template is None:
            continue
        version = _version_number(template, str(spec.get("Version") or "$Default"))
        image = template.images.get(version, "")
        if image:
            found.append((image, f"launch template {template.name} version {version}"))
    configuration = group.get("LaunchConfigurationName", "")
    if configurations.get(configuration):
        found.append((configurations[configuration], f"launch configuration {configuration}"))
    return found


def _find_template(spec: Mapping[str, Any], templates: Iterable[_Template]) -> _Template | None:
    template_id = spec.get("LaunchTemplateId")
    for template in templates:
        if template_id == template.template_id or (
            not template_id and spec.get("LaunchTemplateName") == template.name
        ):
            return template
    return None


def _version_number(template: _Template, version: str) -> int:
    if version == "$Latest":
        return template.latest_version
    if version == "$Default":
        return template.default_version
    return int(version) if version.isascii() and version.isdigit() else template.default_version
