"""The stand-in `hashicorp/external` keeps the real provider's contract, checked through Terraform.

Each test runs one `data "external"` against a small stub program, the way the real provider's
own tests do, and asserts the behaviour (or the error title) the real provider has.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.terraform import Root

VERSIONS = """
terraform {
  required_providers {
    external = {
      source  = "hashicorp/external"
      version = ">= 2.3"
    }
  }
}
"""
# Answers with its stdin, working directory and one environment variable, or misbehaves on
# request (argv[1]).
STUB = """
import json, os, sys
query = sys.stdin.read()
mode = sys.argv[1] if len(sys.argv) > 1 else "echo"
if mode == "fail":
    sys.stderr.write("stub: the thing is broken\\n")
    sys.exit(3)
if mode == "silent-fail":
    sys.exit(4)
if mode == "number":
    print(json.dumps({"count": 1}))
elif mode == "stray-print":
    print("starting up")
    print(json.dumps({"ok": "yes"}))
else:
    sys.stderr.write("stderr of a successful run\\n")
    print(json.dumps({
        "stdin": query,
        "cwd": os.getcwd(),
        "marker": os.environ.get("STUB_MARKER", ""),
    }))
"""


@pytest.fixture(scope="module")
def external_template(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("external-template")
    (directory / "versions.tf").write_text(VERSIONS)
    (directory / "stub.py").write_text(STUB)
    Root(directory, terraform_bin).init().check()
    return directory


def external_root(template: Path, destination: Path, terraform_bin: str, body: str) -> Root:
    shutil.copytree(template, destination, symlinks=True)
    (destination / "main.tf").write_text(
        body + '\noutput "result" {\n  value = data.external.stub.result\n}\n'
    )
    return Root(destination, terraform_bin)


def program(*arguments: str) -> str:
    return json.dumps([sys.executable, "${path.module}/stub.py", *arguments])


def test_query_reaches_stdin_as_one_json_object_without_null_values(
    external_template: Path, terraform_bin: str, tmp_path: Path
) -> None:
    body = f"""
data "external" "stub" {{
  program = {program()}
  query   = {{ name = "web", images = jsonencode(["nginx:1.27"]), salt = null }}
}}
"""
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    root.apply().check()
    stdin = root.outputs()["result"]["stdin"]
    assert json.loads(stdin) == {"images": '["nginx:1.27"]', "name": "web"}


def test_empty_program_elements_are_dropped(
    external_template: Path, terraform_bin: str, tmp_path: Path
) -> None:
    body = f"""
data "external" "stub" {{
  program = ["", "{sys.executable}", "", "${{path.module}}/stub.py", ""]
}}
"""
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    root.apply().check()
    assert root.outputs()["result"]["stdin"] == "{}"


def test_working_dir_sets_the_programs_directory(
    external_template: Path, terraform_bin: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    body = f"""
data "external" "stub" {{
  program     = ["{sys.executable}", abspath("${{path.module}}/stub.py")]
  working_dir = "{elsewhere}"
}}
"""
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    root.apply().check()
    assert root.outputs()["result"]["cwd"] == str(elsewhere)


def test_terraforms_environment_reaches_the_program(
    external_template: Path, terraform_bin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_MARKER", "from-the-environment")
    body = f'data "external" "stub" {{\n  program = {program()}\n}}\n'
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    root.apply().check()
    assert root.outputs()["result"]["marker"] == "from-the-environment"


def test_non_zero_exit_fails_with_the_programs_stderr(
    external_template: Path, terraform_bin: str, tmp_path: Path
) -> None:
    body = f'data "external" "stub" {{\n  program = {program("fail")}\n}}\n'
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    run = root.apply()
    assert run.code == 1
    assert "External Program Execution Failed" in run.stderr
    assert "Error Message: stub: the thing is broken" in run.stderr
    assert "exit status 3" in run.stderr


def test_non_zero_exit_without_stderr_says_so(
    external_template: Path, terraform_bin: str, tmp_path: Path
) -> None:
    body = f'data "external" "stub" {{\n  program = {program("silent-fail")}\n}}\n'
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    run = root.apply()
    assert run.code == 1
    assert "External Program Execution Failed" in run.stderr
    assert "returned no additional error messaging" in " ".join(run.stderr.split())


@pytest.mark.parametrize("mode", ["number", "stray-print"])
def test_output_that_is_not_a_map_of_strings_is_unexpected(
    external_template: Path, terraform_bin: str, tmp_path: Path, mode: str
) -> None:
    body = f'data "external" "stub" {{\n  program = {program(mode)}\n}}\n'
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    run = root.apply()
    assert run.code == 1
    assert "Unexpected External Program Results" in run.stderr
    assert "must be a JSON encoded map of string keys and string values" in " ".join(
        run.stderr.split()
    )


def test_stderr_of_a_successful_run_is_not_shown(
    external_template: Path, terraform_bin: str, tmp_path: Path
) -> None:
    body = f'data "external" "stub" {{\n  program = {program()}\n}}\n'
    root = external_root(external_template, tmp_path / "root", terraform_bin, body)
    run = root.apply().check()
    assert "stderr of a successful run" not in run.stdout + run.stderr
