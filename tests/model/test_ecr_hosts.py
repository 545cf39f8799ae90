"""One rule for Amazon ECR's registry hosts (tfbake.model.reference.ECR_HOST_RE), FIPS hosts
included, held the same by tfbake's credentials, the bake's parameters and the builder's recipe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.bakes import plan_for
from tests.support.scratch_root import RECIPE, make_scratch_builder
from tfbake.aws.calls import AwsContext
from tfbake.bake.request import image_name, start_parameters
from tfbake.model.reference import ECR_HOST_RE, is_ecr_host
from tfbake.resolve.credentials import ecr_region

DIGEST = "sha256:" + "c" * 64
FIPS_HOST = "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "eu-west-1"),
        (FIPS_HOST, "us-gov-west-1"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example", None),
        ("12345.dkr.ecr.eu-west-1.amazonaws.com", None),
        ("public.ecr.aws", None),
    ],
)
def test_an_ecr_host_is_recognised_with_its_region(host: str, region: str | None) -> None:
    assert (is_ecr_host(host), ecr_region(host)) == (region is not None, region)


def test_the_recipe_checks_ecr_hosts_by_the_same_rule() -> None:
    line = next(line for line in RECIPE.read_text().splitlines() if line.startswith("re_ecr_host="))
    in_recipe = line.partition("=")[2].strip("'")
    # POSIX ERE has neither named nor non-capturing groups: the same rule, written as ERE.
    as_ere = re.sub(r"\(\?(P<[a-z]+>|:)", "(", ECR_HOST_RE.pattern)

    assert in_recipe == f"^{as_ere}$"


def test_a_fips_ecr_image_makes_the_builder_log_in(tmp_path: Path, aws: AwsContext) -> None:
    reference = f"{FIPS_HOST}/team/app:1.0@{DIGEST}"
    plan = plan_for(aws, images=[reference])
    parameters = start_parameters(plan, "us-gov-west-1", image_name(plan))

    builder = make_scratch_builder(tmp_path)
    run = builder.run(
        SSM_Images=parameters["Images01"][0],
        SSM_EcrRegistries=parameters.get("EcrRegistries", [""])[0],
        SSM_Region="us-gov-west-1",
    )

    assert run.returncode == 0, run.output
    logins = [
        entry["argv"][2:] for entry in run.entries if entry["argv"][:2] == ["docker", "login"]
    ]
    assert logins == [["--username", "AWS", "--password-stdin", FIPS_HOST]]
    assert ["ecr", "get-login-password", "--region", "us-gov-west-1"] in run.calls_to("aws")
