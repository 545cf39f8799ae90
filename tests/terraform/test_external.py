"""`tfbake external` as Terraform runs it: a process fed a JSON query on stdin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.amis import seed_ami
from tests.support.cli import assert_one_line_error, external
from tests.support.specs import BASE_AMI, query, spec_data
from tfbake.aws.calls import AwsContext
from tfbake.model import tags
from tfbake.model.errors import ExitCode
from tfbake.pipeline import plan_image_set
from tfbake.sandbox import Sandbox
from tfbake.spec.mapping import image_set_from_mapping


@pytest.fixture
def ec2(sandbox: Sandbox) -> Any:
    return AwsContext().client("ec2")


def fingerprint_of(**changes: Any) -> str:
    image_set = image_set_from_mapping(spec_data(**changes))
    return plan_image_set(image_set, AwsContext()).fingerprint.value


def test_returns_the_ready_ami_as_a_flat_string_map(ec2: Any, sandbox: Sandbox) -> None:
    fingerprint = fingerprint_of()
    ami = seed_ami(ec2, fingerprint)
    result = external(query())
    assert result.code == 0, result.stderr
    reply = result.external_result()
    assert reply["ami_id"] == ami
    assert reply["fingerprint"] == fingerprint
    assert reply["status"] == "found"
    assert reply["name"] == "web"
    assert reply["region"] == "us-east-1"
    assert reply["base_ami"] == BASE_AMI
    assert json.loads(reply["images"]) == [
        "docker.io/library/nginx:1.27@sha256:" + "a" * 64,
        "docker.io/library/redis:7@sha256:" + "b" * 64,
    ]


def test_missing_ami_with_on_missing_fail(sandbox: Sandbox) -> None:
    result = external(query(on_missing="fail"))
    assert_one_line_error(result, ExitCode.AMI_MISSING, "no ready AMI", "on_missing is fail",
                          "comes from TFBAKE_ON_MISSING or the module",
                          "`TFBAKE_ON_MISSING=bake terraform apply`")  # fmt: skip


def test_environment_overrides_on_missing(sandbox: Sandbox) -> None:
    result = external(query(on_missing="bake"), env={"TFBAKE_ON_MISSING": "fail"})
    assert_one_line_error(result, ExitCode.AMI_MISSING, "on_missing is fail")
    assert sandbox.log.count("StartAutomationExecution") == 0


def test_not_ready_ami_is_reported_never_returned(ec2: Any, sandbox: Sandbox) -> None:
    ami = seed_ami(ec2, fingerprint_of(), status=tags.STATUS_FAILED)
    result = external(query(on_missing="fail"))
    assert_one_line_error(result, ExitCode.AMI_MISSING, f"{ami} is failed")


def test_a_salt_of_null_is_a_salt(ec2: Any, sandbox: Sandbox) -> None:
    ami = seed_ami(ec2, fingerprint_of(salt="null"))
    result = external(query(salt="null", on_missing="fail"))
    assert result.code == 0, result.stderr
    assert result.external_result()["ami_id"] == ami
    assert fingerprint_of(salt="null") != fingerprint_of()


def test_a_json_field_given_as_null_is_not_given(sandbox: Sandbox) -> None:
    unset = external(query(on_missing="fail"))
    nulled = external({**query(on_missing="fail"), "regions": "null", "share": "null"})
    assert nulled.code == unset.code == ExitCode.AMI_MISSING, nulled.stderr
    assert nulled.stderr == unset.stderr


def test_region_from_the_query(ec2: Any, sandbox: Sandbox) -> None:
    result = external(query(region="eu-west-1", on_missing="fail"))
    assert_one_line_error(result, ExitCode.AMI_MISSING, "in eu-west-1")


def test_no_op_lookup_makes_exactly_one_describe_images(ec2: Any, sandbox: Sandbox) -> None:
    ami = seed_ami(
        ec2, plan_image_set(image_set_from_mapping(spec_data()), AwsContext()).fingerprint.value
    )
    assert external(query()).code == 0  # the first lookup records that it returned the AMI
    sandbox.log.clear()
    assert external(query()).code == 0
    assert sandbox.log.actions() == ["DescribeImages"]
    (image,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert tags.LAST_RETURNED in {tag["Key"] for tag in image["Tags"]}


def test_ssm_base_ami_adds_one_get_parameter(ec2: Any, sandbox: Sandbox) -> None:
    AwsContext().client("ssm").put_parameter(Name="/base/web", Value=BASE_AMI, Type="String")
    sandbox.log.clear()
    external(query(base_ami="ssm:/base/web", on_missing="fail"))
    assert sorted(sandbox.log.actions()) == ["DescribeImages", "GetParameter"]


@pytest.mark.parametrize(
    ("stdin", "fragment"),
    [
        ("", "stdin is empty"),
        ("{not json", "not valid JSON"),
        ('["web"]', "expected one JSON object, got list"),
        (json.dumps({**query(), "salt": 3}), "value of 'salt' must be a string"),
        (json.dumps({k: v for k, v in query().items() if k != "name"}), "name: is required"),
        (json.dumps({k: v for k, v in query().items() if k != "images"}), "images: is required"),
        (json.dumps(query(images=[])), "images: is empty"),
        (json.dumps(query(images=["nginx", "Not/Valid"])), "invalid image reference 'Not/Valid'"),
        (json.dumps(query(images=["nginx;reboot"])), "shell metacharacters"),
        (json.dumps(query(images=["$(curl x|sh)"])), "shell metacharacters"),
        (json.dumps({**query(), "imagse": "[]"}), "unknown key 'imagse' (did you mean 'images'?)"),
        (json.dumps(query(protocol="3")), "protocol '3' is not supported"),
        (json.dumps({k: v for k, v in query().items() if k != "protocol"}), "protocol None"),
        (json.dumps({**query(), "images": "nginx"}), "images is not valid JSON"),
        (json.dumps(query(on_missing="maybe")), "on_missing 'maybe' must be one of"),
    ],
    ids=[
        "empty", "malformed", "array", "non-string", "no-name", "no-images", "empty-images",
        "invalid-reference", "metacharacters", "command-substitution", "unknown-key",
        "wrong-protocol", "no-protocol", "images-not-json", "bad-on-missing",
    ],
)  # fmt: skip
def test_bad_input_is_one_line_with_exit_2(sandbox: Sandbox, stdin: str, fragment: str) -> None:
    assert_one_line_error(external(stdin), ExitCode.BAD_INPUT, fragment)


def test_base_ami_not_found(sandbox: Sandbox) -> None:
    result = external(query(architecture=None))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "base_ami", BASE_AMI, "not found")


def test_ssm_parameter_not_found(sandbox: Sandbox) -> None:
    result = external(query(base_ami="ssm:/no/such/parameter"))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "'/no/such/parameter' not found")


def test_no_aws_credentials(sandbox: Sandbox, tmp_path: Any) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = external(query(), env=env)
    assert_one_line_error(result, ExitCode.AWS, "no AWS credentials")


def test_unreachable_endpoint(sandbox: Sandbox) -> None:
    result = external(query(), env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert_one_line_error(result, ExitCode.AWS, "cannot reach the AWS endpoint")


def test_describe_images_access_denied(sandbox: Sandbox) -> None:
    sandbox.deny("DescribeImages")
    result = external(query())
    assert_one_line_error(
        result,
        ExitCode.AWS,
        "access denied: ec2:DescribeImages in us-east-1",
        "UnauthorizedOperation",
    )


def test_get_parameter_access_denied(sandbox: Sandbox) -> None:
    sandbox.deny("GetParameter")
    result = external(query(base_ami="ssm:/base/web"))
    assert_one_line_error(result, ExitCode.AWS, "access denied: ssm:GetParameter /base/web")
