"""The plan reads, the apply acts: what protocol 2's two halves ask of the one flow.

At plan, `survey` looks up the AMI and reports what a bake would take, changing nothing in AWS
(plan roles are often read-only, and a plan runs on code nobody has reviewed yet). At apply, the
module's bake resource hands back the pinned inputs the plan showed; `require_planned` holds
them to the plan's fingerprint, so the apply bakes exactly what the reviewer read, and
`require_planned_ami_ready` refuses an AMI the plan found that was revoked since.
"""

from __future__ import annotations

from dataclasses import replace

from tfbake.aws.calls import AwsContext
from tfbake.ensure import missing_message
from tfbake.model.errors import AmiMissing, BadInput
from tfbake.model.plan import FOUND, MISSING, Plan, Result
from tfbake.pipeline import look_up
from tfbake.terraform.protocol import Query


def survey(plan: Plan, aws: AwsContext) -> Result:
    """The plan's ready AMI (and its region copies), or what is missing; never a write.

    An AMI without every region copy is reported missing: the bake resource's apply makes the
    copies, as it would after a bake. An account that only finds (ami_owners without self)
    cannot bake what is missing, so there a missing AMI fails the plan."""
    found = look_up(plan, aws)
    if found.status != FOUND and not plan.image_set.bakes_here:
        raise AmiMissing(missing_here_message(found))
    if found.status != FOUND or not plan.image_set.distribution.regions:
        return found
    from tfbake.distribute.apply import check_copies

    checked = check_copies(found, aws)
    return checked if not checked.missing_regions else replace(checked, status=MISSING)


def read_planned(query: Query, plan: Plan, aws: AwsContext) -> Result:
    """The AMI of a plan already made, for the data source read after the bake resource."""
    require_planned(query, plan)
    result = survey(plan, aws)
    if result.status != FOUND:
        raise AmiMissing(
            f"no ready AMI of image set {plan.image_set.name!r} (fingerprint "
            f"{plan.fingerprint.short}) in {result.region}, though the module's bake resource "
            "is applied; if the AMI was invalidated or deregistered since, rebake it: "
            "terraform apply -replace='<module address>.terraform_data.bake'"
        )
    return result


def missing_here_message(result: Result) -> str:
    owners = ", ".join(result.plan.image_set.ami_owners)
    return missing_message(
        result,
        f"this account only finds it (ami_owners {owners} has no self): bake and share it in "
        "the image account first",
    )


def require_planned(query: Query, plan: Plan) -> None:
    """The inputs handed to the apply make the fingerprint the plan showed, or nothing runs."""
    if not query.planned_fingerprint:
        raise BadInput(
            "the apply's query names no planned_fingerprint (modules/baked-ami's bake resource "
            "sends it)"
        )
    if plan.fingerprint.value != query.planned_fingerprint:
        raise BadInput(
            f"the inputs at apply make fingerprint {plan.fingerprint.short}, the plan showed "
            f"{query.planned_fingerprint[:16]} (a changed Ansible file, or another tfbake "
            "release between plan and apply): plan again"
        )


def require_planned_ami_ready(query: Query, found: Result) -> None:
    """An AMI the plan found must still be ready when the apply hands it on."""
    planned = query.planned_ami
    if not planned or found.ami_id == planned:
        return
    if any(ami.ami_id == planned and ami.usable for ami in found.unusable):
        return  # still ready; a newer one of the same fingerprint exists too
    raise AmiMissing(
        f"{planned}, which the plan found for image set {found.plan.image_set.name!r}, is no "
        "longer ready (invalidated or deregistered since the plan); nothing was baked or "
        "changed: plan again, and the new plan shows the bake"
    )
