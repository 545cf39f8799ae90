"""`check --terraform`: the tfbake module calls of a directory, each checked as far as the
values Terraform would give it are known without a plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfbake.aws.calls import AwsContext
from tfbake.model.errors import TfbakeError
from tfbake.model.fingerprint import INPUT_FIELDS
from tfbake.model.plan import Result
from tfbake.pipeline import check, plan_image_set
from tfbake.spec.mapping import FIELDS, REQUIRED_FIELDS, image_set_from_mapping
from tfbake.terraform.discover import ModuleCall, discover, terraform_roots


@dataclass(frozen=True)
class CallReport:
    """One module call of a Terraform directory, checked as far as its values allow."""

    address: str
    location: str
    result: Result | None
    problem: str | None  # why it could not be checked
    unresolved: tuple[str, ...]

    @property
    def status(self) -> str:
        return self.result.status if self.result else "unchecked"


def find_module_calls(
    directory: Path,
    var_files: Sequence[Path],
    variables: Mapping[str, str],
    *,
    recursive: bool,
) -> tuple[list[Path], list[ModuleCall]]:
    """The Terraform roots read (the directory, or every root below it) and their module calls."""
    roots = terraform_roots(directory) if recursive else [directory]
    calls = [
        call
        for root in roots
        for call in discover(
            root, var_files=var_files, variables=variables, undeclared_ok=recursive
        )
    ]
    return roots, calls


def check_module_call(call: ModuleCall, aws: AwsContext) -> CallReport:
    """The call's AMI and copies, when its fingerprint inputs are known without an apply."""
    location = f"{call.file}:{call.line}" if call.line else str(call.file)
    unresolved = tuple(f"{u.field} = {u.expression} ({u.reason})" for u in call.unresolved)
    # Only an unknown fingerprint input stops the check; an unknown builder, tags or sharing
    # setting changes how a bake runs, not which AMI is the right one.
    blocking = [u.field for u in call.unresolved if u.field in INPUT_FIELDS]
    missing = [name for name in REQUIRED_FIELDS if name not in call.arguments]
    if blocking or missing:
        problem = "cannot resolve statically: " + ", ".join(blocking or missing)
        return CallReport(call.address, location, None, problem, unresolved)
    spec = {key: value for key, value in call.arguments.items() if key in FIELDS}
    try:
        image_set = image_set_from_mapping(spec, f"{location} {call.address}")
        result = check(plan_image_set(image_set, aws), aws)
    except TfbakeError as err:
        return CallReport(call.address, location, None, err.one_line(), unresolved)
    return CallReport(call.address, location, result, None, unresolved)
