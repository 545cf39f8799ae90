"""Hostile input, met the way a user meets it: every class is one line on stderr and exit 2.

Each test runs tfbake as a separate process (`tfbake fingerprint`/`ensure` on a spec file, or
`tfbake external` with a query on stdin) against the sandbox, so a value that slipped past
validation would reach AWS and fail there instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.bakes import BASE
from tests.support.cli import assert_one_line_error, external, run_tfbake
from tests.support.specs import NGINX, query, spec_data, write_spec
from tfbake.aws.calls import AwsContext
from tfbake.model.errors import ExitCode
from tfbake.sandbox import Sandbox

BAD = ExitCode.BAD_INPUT
HCL_SPEC = f'name = "web"\nimages = ["{NGINX}"]\nbase_ami = "{BASE}"\n'


def write_hcl(directory: Path, text: str) -> Path:
    path = directory / "web.hcl"
    path.write_text(text, encoding="utf-8")
    return path


def recorded_manifests(aws: AwsContext) -> list[str]:
    ssm = aws.client("ssm")
    found = ssm.get_parameters_by_path(Path="/tfbake/manifests", Recursive=True)["Parameters"]
    return [parameter["Name"] for parameter in found]


def started_bakes(aws: AwsContext) -> int:
    listing = aws.client("ssm").describe_automation_executions()
    return len(listing["AutomationExecutionMetadataList"])


# Python's \d and \w match far more than ASCII: each of these passed a pattern (or int()) and
# failed later, in an encoder or at AWS, or was silently read as another
# value (Arabic-Indic digits are read as a number).
@pytest.mark.parametrize(
    ("how", "value", "fragment"),
    [
        ("spec", {"images": ["nginx:\u00f1"]}, "malformed tag"),
        ("spec", {"volume": {"size": "\u00b2"}}, "volume.size"),
        ("spec", {"volume": {"size": "\u0661\u0660"}}, "volume.size"),
        ("spec", {"builder": {"instance_profile": "b\u00e4ker"}}, "instance profile name"),
        ("spec", {"ami_owners": ["\u0661" * 12]}, "12-digit account id"),
        ("spec", {"share": {"accounts": ["\u0661" * 12]}}, "12-digit account id"),
        ("--region", "us-east-\u0661", "not an AWS region name"),
        ("query", {"region": "us-east-\u0661"}, "not an AWS region name"),
        ("query", {"images": ["nginx:\u00f1"]}, "malformed tag"),
    ],
    ids=[
        "tag",
        "superscript-size",
        "arabic-size",
        "profile",
        "owner",
        "share",
        "region-option",
        "query-region",
        "query-tag",
    ],
)
def test_unicode_where_ascii_is_meant(
    sandbox: Sandbox, tmp_path: Path, how: str, value: Any, fragment: str
) -> None:
    if how == "query":
        result = external(query(base_ami=BASE, **value))
    elif how == "--region":
        result = run_tfbake("fingerprint", "--region", value, str(write_spec(tmp_path)))
    else:
        result = run_tfbake("fingerprint", str(write_spec(tmp_path, base_ami=BASE, **value)))
    assert_one_line_error(result, BAD, fragment)


@pytest.mark.parametrize("how", ["spec", "query"])
def test_a_number_too_long_for_python(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    volume = {"size": "9" * 5000}  # int() refuses more than 4,300 digits
    if how == "spec":
        result = run_tfbake("fingerprint", str(write_spec(tmp_path, base_ami=BASE, volume=volume)))
    else:
        result = external(query(base_ami=BASE, volume=volume))
    assert_one_line_error(result, BAD, "volume.size: must be a whole number")


def _query_with_salt(salt: bytes) -> bytes:
    return json.dumps(query(base_ami=BASE, salt="SALT")).encode().replace(b"SALT", salt)


# A lone surrogate is no character: UTF-8 cannot encode it, so it failed wherever it was
# written (the fingerprint's canonical JSON, an AWS call) with an encoder's traceback.
@pytest.mark.parametrize(
    ("how", "content"),
    [
        ("json", '{"name": "web", "images": ["N"], "base_ami": "B", "salt": "\\ud800"}'),
        ("json", '{"name": "web", "images": ["N"], "base_ami": "B", "tags": {"\\udfff": "x"}}'),
        ("hcl", HCL_SPEC.encode() + b'salt = "\xed\xa0\x80"\n'),
        ("query", _query_with_salt(b"\\ud800")),
        ("query", json.dumps(query(base_ami=BASE, tags={"team": "\ud800"})).encode()),
        ("query", json.dumps({**query(base_ami=BASE), "\ud800": "x"}).encode()),
        ("query", _query_with_salt(b"\xff")),
    ],
    ids=[
        "json-value",
        "json-key",
        "hcl-bytes",
        "query-value",
        "query-nested",
        "query-key",
        "query-bytes",
    ],
)
def test_lone_surrogates_and_bad_utf8(
    sandbox: Sandbox, tmp_path: Path, how: str, content: str | bytes
) -> None:
    if how == "query":
        result = external(content)
    else:
        path = tmp_path / f"web.{how}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace('"N"', json.dumps(NGINX)).replace('"B"', f'"{BASE}"'))
        result = run_tfbake("fingerprint", str(path))
    assert_one_line_error(result, BAD)


@pytest.mark.parametrize(
    "how", ["json-200000", "hcl-3000", "hcl-400", "query-200000", "query-field-200000"]
)
def test_deep_nesting(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    kind, _, depth_text = how.rpartition("-")
    depth = int(depth_text)
    nested = "[" * depth + "]" * depth
    if kind == "json":
        path = tmp_path / "web.json"
        path.write_text(json.dumps(spec_data(base_ami=BASE))[:-1] + f', "salt": {nested}}}')
        result = run_tfbake("fingerprint", str(path))
    elif kind == "hcl":
        result = run_tfbake(
            "fingerprint", str(write_hcl(tmp_path, HCL_SPEC + f"salt = {nested}\n"))
        )
    elif kind == "query":
        result = external(nested)
    else:
        result = external({**query(base_ami=BASE), "tags": nested})
    assert_one_line_error(result, BAD, "nested")


def test_hcl_attribute_and_block_of_one_name(sandbox: Sandbox, tmp_path: Path) -> None:
    spec = write_hcl(tmp_path, HCL_SPEC + "volume = { size = 30 }\nvolume {\n  size = 40\n}\n")
    assert_one_line_error(
        run_tfbake("fingerprint", str(spec)), BAD, "web.hcl:5: volume: set twice (first on line 4)"
    )


@pytest.mark.parametrize("how", ["hcl-string", "dev-zero", "query"])
def test_oversized_input_is_refused_before_parsing(
    sandbox: Sandbox, tmp_path: Path, how: str
) -> None:
    if how == "hcl-string":
        spec = write_hcl(tmp_path, HCL_SPEC + 'salt = "' + "x" * 20_000_000 + '"\n')
        result = run_tfbake("fingerprint", str(spec), timeout=60)
        fragment = "larger than"
    elif how == "dev-zero":
        result = run_tfbake("fingerprint", "/dev/zero", timeout=60)
        fragment = "not a regular file"
    else:
        result = external({**query(base_ami=BASE), "salt": "x" * 20_000_000}, timeout=60)
        fragment = "larger than"
    assert_one_line_error(result, BAD, fragment)


@pytest.mark.parametrize("how", ["spec", "terraform-file", "var-file"])
def test_a_fifo_does_not_hang(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    fifo = tmp_path / {"spec": "web.hcl", "terraform-file": "main.tf"}.get(how, "x.tfvars")
    os.mkfifo(fifo)
    # Nobody ever writes to it: a blocking open would wait forever (run_tfbake's timeout fails).
    if how == "spec":
        result = run_tfbake("fingerprint", str(fifo), timeout=30)
    elif how == "terraform-file":
        result = run_tfbake("check", "--terraform", str(tmp_path), timeout=30)
    else:
        (tmp_path / "main.tf").write_text('module "web" {\n  source = "./baked-ami"\n}\n')
        args = ("check", "--terraform", str(tmp_path), "--var-file", str(fifo))
        result = run_tfbake(*args, timeout=30)
    assert_one_line_error(result, BAD, "not a regular file (a FIFO)")


# Values SSM's allowedPattern or EC2 would refuse only once a bake starts (exit 7, with the
# inputs manifest already recorded): refused when the spec is read, nothing started or stored.
@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"volume": {"kms_key_id": "my key"}}, "volume.kms_key_id"),
        ({"volume": {"kms_key_id": "1234abcd"}}, "volume.kms_key_id"),
        ({"volume": {"kms_key_id": "arn:aws:kms:eu-west-1:1:key/x"}}, "volume.kms_key_id"),
        ({"regions": ["eu-west-1"], "region_kms_keys": {"eu-west-1": "key"}}, "region_kms_keys"),
        ({"tags": {"team": "\U0001f680" * 200}}, "at most 256"),
        ({"tags": {"team": '"' * 250}}, "as a runbook parameter"),
        ({"tags": {"\u00e9" * 129: "x"}}, "1 to 128 characters"),
        ({"tags": {"AWS:team": "x"}}, "reserved"),
        ({"builder": {"instance_profile": "b\u00e4ker"}}, "instance profile name"),
    ],
    ids=[
        "kms-space",
        "kms-short",
        "kms-arn",
        "region-kms",
        "tag-emoji",
        "tag-quotes",
        "tag-key-length",
        "tag-aws-prefix",
        "profile",
    ],
)
def test_values_aws_would_refuse_are_refused_at_plan(
    aws: AwsContext, tmp_path: Path, changes: dict[str, Any], fragment: str
) -> None:
    spec = write_spec(tmp_path, base_ami=BASE, **changes)
    assert_one_line_error(run_tfbake("ensure", str(spec)), BAD, fragment)
    assert_one_line_error(external(query(base_ami=BASE, **changes)), BAD, fragment)
    assert started_bakes(aws) == 0
    assert recorded_manifests(aws) == []


def test_non_ascii_tags_within_aws_limits_are_baked(aws: AwsContext, tmp_path: Path) -> None:
    value = "\u00f1" * 256  # 256 characters; as \u escapes it would exceed SSM's 512
    spec = write_spec(tmp_path, base_ami=BASE, tags={"equipo": value})
    result = run_tfbake("ensure", str(spec))
    assert result.code == 0, result.stderr
    image = aws.client("ec2").describe_images(ImageIds=[result.stdout.strip()])["Images"][0]
    assert {"Key": "equipo", "Value": value} in image["Tags"]


def test_a_refused_start_leaves_no_manifest_record(
    aws: AwsContext, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.deny("StartAutomationExecution", times=1)
    result = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE)))
    assert_one_line_error(result, ExitCode.AWS, "ssm:StartAutomationExecution")
    assert recorded_manifests(aws) == []


@pytest.mark.parametrize(
    ("how", "text", "fragment"),
    [
        ("json", '{"name": "web", "name": "api"}', "name: set twice"),
        ("json", '{"name": "web", "volume": {"size": 8, "size": 9}}', ": size: set twice"),
        ("hcl", 'name = "web"\nname = "api"\n', "web.hcl:2: name: set twice (first on line 1)"),
        (
            "hcl",
            'name = "web"\nvolume {\n  size = 8\n  size = 9\n}\n',
            "web.hcl:4: volume.size: set twice",
        ),
        ("hcl", 'name = "web"\ntags = { a = "1", "a" = "2" }\n', "web.hcl:2: tags.a: set twice"),
        ("query", '{"protocol": "1", "name": "web", "name": "api"}', "key 'name' is given twice"),
        ("query", '{"protocol": "1", "tags": "{\\"a\\": \\"1\\", \\"a\\": \\"2\\"}"}', "tags: key"),
    ],
    ids=["json", "json-nested", "hcl", "hcl-block", "hcl-object", "query", "query-nested"],
)
def test_duplicate_keys_are_errors(
    sandbox: Sandbox, tmp_path: Path, how: str, text: str, fragment: str
) -> None:
    if how == "query":
        result = external(text)
    else:
        path = tmp_path / f"web.{how}"
        path.write_text(text)
        result = run_tfbake("fingerprint", str(path))
    assert_one_line_error(result, BAD, fragment)


def test_hcl_heredoc_lines_are_not_taken_for_attributes(sandbox: Sandbox, tmp_path: Path) -> None:
    # The same shape as a repeated attribute, but inside a heredoc: text, not HCL.
    spec = write_hcl(tmp_path, HCL_SPEC + 'provision = [<<EOT\nname = "x"\nname = "y"\nEOT\n]\n')
    result = run_tfbake("fingerprint", str(spec))
    assert result.code == 0, result.stderr


def _ansible_tree(tmp_path: Path) -> tuple[Path, Path]:
    spec_dir = tmp_path / "spec"
    outside = tmp_path / "elsewhere"
    for directory in (spec_dir, outside):
        directory.mkdir()
    (outside / "site.yml").write_text("- hosts: all\n")
    return spec_dir, outside


@pytest.mark.parametrize("how", ["dotdot", "symlink", "query"])
def test_ansible_directory_outside_the_spec_tree_is_refused(
    sandbox: Sandbox, tmp_path: Path, how: str
) -> None:
    spec_dir, outside = _ansible_tree(tmp_path)
    directory = "../elsewhere"
    if how == "symlink":
        (spec_dir / "ansible").symlink_to(outside)
        directory = "ansible"
    ansible = {"directory": directory, "playbook": "site.yml", "files": ["site.yml"]}
    if how == "query":
        result = external(query(base_ami=BASE, ansible=ansible), cwd=spec_dir)
    else:
        result = run_tfbake(
            "fingerprint", str(write_spec(spec_dir, base_ami=BASE, ansible=ansible))
        )
    assert_one_line_error(result, BAD, "ansible.directory", "give an absolute path")


def test_ansible_directory_elsewhere_given_absolute_is_used(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    spec_dir, outside = _ansible_tree(tmp_path)
    ansible = {"directory": str(outside), "playbook": "site.yml", "files": ["site.yml"]}
    result = run_tfbake("fingerprint", str(write_spec(spec_dir, base_ami=BASE, ansible=ansible)))
    assert result.code == 0, result.stderr
