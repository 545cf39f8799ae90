"""`tfbake fingerprint` end to end: a spec file, a real registry, a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, external, run_tfbake
from tests.support.registry import RegistryServer, push_image, push_index
from tests.support.specs import BASE_AMI, NGINX, query, write_spec
from tfbake.model.errors import ExitCode


def test_prints_the_fingerprint(tmp_path: Path) -> None:
    result = run_tfbake("fingerprint", str(write_spec(tmp_path)))
    assert result.code == 0, result.stderr
    assert len(result.stdout.strip()) == 64
    again = run_tfbake("fingerprint", str(write_spec(tmp_path)))
    assert again.stdout == result.stdout


def test_json_prints_the_inputs_manifest(tmp_path: Path) -> None:
    result = run_tfbake("fingerprint", str(write_spec(tmp_path)), "--json")
    data = json.loads(result.stdout)
    assert data["schema"] == "tfbake.inputs/1"
    assert data["inputs"]["scheme"] == "tfbake.fingerprint/1"
    assert data["inputs"]["images"][0] == {
        "image": "docker.io/library/nginx:1.27",
        "digest": "sha256:" + "a" * 64,
    }
    assert len(data["fingerprint"]) == 64


def test_pinned_spec_needs_no_boto3_and_no_network(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    code = (
        "import sys\n"
        "from tfbake.cli.main import main\n"
        f"sys.argv = ['tfbake', 'fingerprint', {str(spec)!r}]\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "sys.stderr.write('boto3 loaded' if 'boto3' in sys.modules else 'no boto3')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert len(proc.stdout.strip()) == 64, proc.stderr
    assert proc.stderr.endswith("no boto3")


def test_resolves_tags_through_the_registry(tmp_path: Path, registry: RegistryServer) -> None:
    digest = push_image(registry, "team/app", "v1", content="one")
    spec = write_spec(tmp_path, images=[f"{registry.host}/team/app:v1"])
    data = json.loads(run_tfbake("fingerprint", str(spec), "--json").stdout)
    assert data["inputs"]["images"] == [{"image": f"{registry.host}/team/app:v1", "digest": digest}]
    first = data["fingerprint"]
    push_image(registry, "team/app", "v1", content="two")
    assert json.loads(run_tfbake("fingerprint", str(spec), "--json").stdout)["fingerprint"] != first


def test_arm64_only_change_keeps_the_x86_64_fingerprint(
    tmp_path: Path, registry: RegistryServer
) -> None:
    push_index(registry, "multi", "v1", {"amd64": "x", "arm64": "a1"})
    x86 = write_spec(tmp_path, images=[f"{registry.host}/multi:v1"])
    arm_dir = tmp_path / "arm"
    arm_dir.mkdir()
    arm = write_spec(arm_dir, images=[f"{registry.host}/multi:v1"], architecture="arm64")
    before = (
        run_tfbake("fingerprint", str(x86)).stdout,
        run_tfbake("fingerprint", str(arm)).stdout,
    )
    push_index(registry, "multi", "v1", {"amd64": "x", "arm64": "a2"})
    after = (run_tfbake("fingerprint", str(x86)).stdout, run_tfbake("fingerprint", str(arm)).stdout)
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_tag_not_found(registry: RegistryServer) -> None:
    push_image(registry, "team/app", "v1")
    result = external(query(images=[f"{registry.host}/team/app:v9"]))
    assert_one_line_error(result, ExitCode.REGISTRY, f"{registry.host}/team/app:v9", "not found")


def test_registry_unreachable() -> None:
    result = external(query(images=["127.0.0.1:9/team/app:v1"]))
    assert_one_line_error(result, ExitCode.REGISTRY, "127.0.0.1:9")


def test_auth_denied(basic_auth_registry: RegistryServer, tmp_path: Path) -> None:
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    (docker_config / "config.json").write_text("{}")
    result = external(
        query(images=[f"{basic_auth_registry.host}/team/app:v1"]),
        env={"DOCKER_CONFIG": str(docker_config)},
    )
    assert_one_line_error(result, ExitCode.REGISTRY, "docker login", str(docker_config))


def test_unparsable_hcl_spec(tmp_path: Path) -> None:
    spec = tmp_path / "web.hcl"
    spec.write_text('name = "web"\nimages = [\n')
    result = run_tfbake("fingerprint", str(spec))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "web.hcl", "cannot parse HCL")


def test_usage_errors_point_at_help() -> None:
    result = run_tfbake("gc")
    assert_one_line_error(result, ExitCode.BAD_INPUT, "Missing option '--keep'", "tfbake gc --help")


def test_a_malformed_ami_id_is_called_one(tmp_path: Path) -> None:
    result = run_tfbake("fingerprint", str(write_spec(tmp_path, base_ami="ami-123")))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "web.json:", "base_ami: 'ami-123' is not "
                          "an AMI id: ami- and then 8 or 17 lower-case hex digits")  # fmt: skip


def test_a_field_of_a_block_on_one_line_is_given_the_blocks_line(tmp_path: Path) -> None:
    spec = tmp_path / "web.hcl"
    spec.write_text(
        f'name = "web"\nimages = ["{NGINX}"]\nbase_ami = "{BASE_AMI}"\n\n'
        'builder { instance_typ = "t3.large" }\n'
    )
    result = run_tfbake("fingerprint", str(spec))
    assert_one_line_error(result, ExitCode.BAD_INPUT, "web.hcl:5: builder.instance_typ:",
                          "did you mean 'instance_type'")  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["ensure", "web.hcl", "--forse"], ["no such option '--forse'",
                                             "'--force' is an option of `tfbake bake`",
                                             "see `tfbake ensure --help`"]),
        (["fingerprint", "web.hcl", "--jsn"], ["did you mean '--json'?"]),
        (["check", "--terraform"], ["requires an argument", "see `tfbake check --help`"]),
    ],
    ids=["other-commands-option", "near-miss", "missing-argument"],
)  # fmt: skip
def test_usage_errors_name_the_command_and_suggest_only_near_misses(
    arguments: list[str], fragments: list[str]
) -> None:
    result = run_tfbake(*arguments)
    assert_one_line_error(result, ExitCode.BAD_INPUT, *fragments)
    assert "--verbose" not in result.stderr


def test_every_failing_image_is_listed_under_verbose(
    registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(registry, "team/app", "v1")
    images = [f"{registry.host}/team/{name}" for name in ("app:v1", "a:1", "b:1")]
    spec_path = write_spec(tmp_path, images=images)
    quiet = run_tfbake("fingerprint", str(spec_path))
    assert_one_line_error(quiet, ExitCode.REGISTRY, "(2 of 3 images failed; -v lists each)")
    loud = run_tfbake("-v", "fingerprint", str(spec_path))
    lines = loud.stderr.strip().splitlines()
    assert loud.code == ExitCode.REGISTRY
    assert [line.split(": ", 2)[1] for line in lines[:2]] == [
        f"cannot resolve {registry.host}/team/a:1",
        f"cannot resolve {registry.host}/team/b:1",
    ]
    assert lines[2].startswith("tfbake: error: ")


def test_verbose_shows_the_resolved_inputs_on_stderr(tmp_path: Path) -> None:
    result = run_tfbake("-v", "fingerprint", str(write_spec(tmp_path)))
    assert result.code == 0
    assert len(result.stdout.strip()) == 64
    assert f"tfbake: fingerprint {result.stdout.strip()}" in result.stderr
    assert "tfbake: image docker.io/library/nginx:1.27@sha256:" + "a" * 64 in result.stderr
