"""Ansible provisioning: the bundle's validation and packing, its fingerprint, and its transport."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.model.test_fingerprint import BASE as RESOLVED
from tests.model.test_fingerprint import WORKED_EXAMPLE_HASH, WORKED_EXAMPLE_SPEC, resolved
from tests.support.cli import external, run_tfbake
from tests.support.sandbox_helpers import bake_parameters
from tests.support.specs import query, write_spec
from tfbake.bake import documents
from tfbake.model.chunks import ANSIBLE_BUNDLE
from tfbake.model.errors import BadInput, SpecError
from tfbake.model.fingerprint import fingerprint_of, inputs_manifest
from tfbake.model.image_set import ImageSet
from tfbake.sandbox import Sandbox
from tfbake.sandbox.automation.engine import resolve_parameters
from tfbake.spec import ansible
from tfbake.spec.mapping import image_set_from_mapping
from tfbake.spec.specfile import load_image_set

BASE_AMI = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
FILES = {
    "site.yml": "- hosts: localhost\n  roles: [web]\n",
    "roles/web/tasks/main.yml": "- debug: {msg: '{{ greeting }}'}\n",
    "roles/web/defaults/main.yml": "greeting: hello\n",
    "group_vars/all.yml": "answer: 42\n",
}
LISTED = ["site.yml", "roles/", "group_vars/all.yml"]


def write_files(directory: Path, files: dict[str, str] = FILES) -> Path:
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def ansible_spec(**changes: Any) -> dict[str, Any]:
    return {"playbook": "site.yml", "files": LISTED, "extra_vars": {"env": "prod"}, **changes}


def pack(directory: Path, **changes: Any) -> ansible.Ansible:
    return ansible.ansible_from_mapping(ansible_spec(**changes), directory)


def refusal(directory: Path, **changes: Any) -> str:
    with pytest.raises(SpecError) as caught:
        image_set_from_mapping(
            {**WORKED_EXAMPLE_SPEC, "ansible": ansible_spec(**changes)}, "web.hcl",
            base_dir=directory,
        )  # fmt: skip
    return caught.value.message


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


# ---- the bundle -----------------------------------------------------------------------------


def test_same_files_give_the_same_bundle_whatever_their_times_order_and_modes(
    tmp_path: Path,
) -> None:
    first = write_files(tmp_path / "a")
    # Written in the opposite order, a year apart, with another umask's modes.
    second = tmp_path / "b"
    for relative in reversed(list(FILES)):
        write_files(second, {relative: FILES[relative]})
        os.utime(second / relative, (1_000_000, 1_000_000))
        (second / relative).chmod(0o600)

    a = pack(first)
    b = pack(second, files=list(reversed(LISTED)))

    assert a.digest == b.digest
    assert a.archive == b.archive
    assert a.digest.startswith("sha256:") and len(a.digest) == 71


def test_the_archive_holds_exactly_the_listed_files_normalised(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    (directory / "README.md").write_text("not listed\n")
    bundle = pack(directory)

    assert members(bundle.archive) == {name: text.encode() for name, text in FILES.items()}
    with tarfile.open(fileobj=io.BytesIO(bundle.archive), mode="r:gz") as tar:
        infos = tar.getmembers()
    assert [info.name for info in infos] == sorted(FILES)
    assert {(info.mtime, info.uid, info.gid, info.uname, info.mode) for info in infos} == {
        (0, 0, 0, "", 0o644)
    }


def test_executability_is_kept_and_changes_the_digest(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    before = pack(directory)
    (directory / "site.yml").chmod(0o755)
    after = pack(directory)

    assert after.digest != before.digest
    with tarfile.open(fileobj=io.BytesIO(after.archive), mode="r:gz") as tar:
        assert tar.getmember("site.yml").mode == 0o755


def test_a_symlink_inside_the_directory_is_packed_as_its_content(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    (directory / "main.yml").symlink_to("site.yml")
    bundle = pack(directory, playbook="main.yml", files=["main.yml", "roles/"])
    assert members(bundle.archive)["main.yml"] == FILES["site.yml"].encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"files": ["../outside.yml", "site.yml"]}, "'../outside.yml' contains '..'"),
        ({"files": ["roles/../../outside.yml"]}, "contains '..'"),
        ({"files": ["/etc/passwd", "site.yml"]}, "'/etc/passwd' is absolute"),
        ({"playbook": "../outside.yml"}, "contains '..'"),
        ({"playbook": "/srv/site.yml"}, "is absolute"),
        ({"files": ["roles/"]}, "'site.yml' is not one of the files"),
        ({"playbook": "other.yml"}, "'other.yml' is not one of the files"),
        ({"files": ["site.yml", "missing.yml"]}, "'missing.yml' does not exist"),
        ({"files": []}, "is empty"),
        ({"playbook": None}, "is required"),
        ({"playbook": "-e@x.yml", "files": ["site.yml"]}, "no component starting with"),
        ({"extra_vars": {"not a name": 1}}, "is not a valid Ansible variable name"),
        ({"extra_vars": {"big": "x" * 600}}, "at most 512 travel as a parameter"),
        ({"unknown": 1}, "unknown field"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_invalid_bundles_are_refused_naming_the_field(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    text = refusal(write_files(tmp_path / "ansible"), **changes)
    assert message in text
    assert "ansible." in text


def test_a_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    directory = write_files(tmp_path / "ansible")
    (tmp_path / "secret.yml").write_text("password: x\n")
    (directory / "roles/web/vars.yml").symlink_to(tmp_path / "secret.yml")
    assert "leads outside the directory" in refusal(directory)


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    directory = write_files(tmp_path / "ansible")
    (tmp_path / "elsewhere").mkdir()
    (directory / "roles/shared").symlink_to(tmp_path / "elsewhere")
    assert "'roles/shared' is a symbolic link to a directory" in refusal(directory)


def test_a_directory_reached_through_a_link_outside_is_refused(tmp_path: Path) -> None:
    directory = write_files(tmp_path / "ansible")
    write_files(tmp_path / "other", {"x.yml": "x: 1\n"})
    (directory / "link").symlink_to(tmp_path / "other")
    assert "leads outside the directory" in refusal(directory, files=["site.yml", "link/x.yml"])


def test_a_file_flipped_to_a_link_outside_while_packing_never_ships_its_target(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE\n")
    directory = write_files(tmp_path / "play")
    raced = directory / "group_vars" / "all.yml"
    stop = threading.Event()

    def flip() -> None:
        # Each swap is atomic (rename over the file): the path is always a regular file inside
        # the directory or a link to the secret outside.
        while not stop.is_set():
            link = directory / "group_vars" / ".link"
            link.symlink_to(secret)
            link.replace(raced)
            regular = directory / "group_vars" / ".file"
            regular.write_text("answer: 42\n")
            regular.replace(raced)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    packed = refused = 0
    try:
        for _ in range(300):
            try:
                bundle = pack(directory)
            except ansible.AnsibleFieldError as err:
                assert "all.yml" in err.message
                refused += 1
                continue
            packed += 1
            assert b"TOP-SECRET" not in members(bundle.archive)["group_vars/all.yml"]
    finally:
        stop.set()
        flipper.join(timeout=10)
    assert packed and refused  # the race was run both ways


def test_a_bundle_too_large_for_the_parameters_is_refused_with_its_size(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    # Random bytes do not compress: about 13 KB whatever gzip does.
    (directory / "roles/web/files").mkdir()
    (directory / "roles/web/files/blob.bin").write_bytes(os.urandom(13 * 1024))

    message = refusal(directory)

    assert "the Ansible bundle is 13." in message
    assert "KB; at most 12 KB travel as a parameter" in message


def test_a_bundle_at_the_limit_fits_the_runbook_parameters(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    (directory / "roles/web/files").mkdir()
    (directory / "roles/web/files/blob.bin").write_bytes(os.urandom(11 * 1024))
    bundle = pack(directory)
    encoded = bundle.encoded()

    parameters = bake_parameters(
        "ami-0123456789abcdef0",
        ansible_bundle=encoded,
        ansible_playbook=bundle.playbook,
        ansible_extra_vars=bundle.extra_vars_json,
    )
    chunks = [parameters[name][0] for name in ANSIBLE_BUNDLE.slot_names if name in parameters]

    # StartAutomationExecution takes at most 512 characters per value.
    assert all(len(value) <= 512 for values in parameters.values() for value in values)
    assert "".join(chunks) == encoded
    values = resolve_parameters(yaml.safe_load(documents.runbook_content()), parameters)
    assert values["AnsiblePlaybook"] == "site.yml"
    assert json.loads(values["AnsibleExtraVars"]) == {"env": "prod"}


def test_a_bundle_over_the_parameter_limit_is_refused_when_baking() -> None:
    with pytest.raises(BadInput, match="a bake carries at most 16384"):
        bake_parameters(
            "ami-0123456789abcdef0", ansible_bundle="A" * 16388, ansible_playbook="site.yml"
        )


# ---- the fingerprint ------------------------------------------------------------------------


def fingerprint(image_set: ImageSet) -> tuple[str, dict[str, Any]]:
    manifest = inputs_manifest(image_set, images=resolved(image_set), **RESOLVED)
    return fingerprint_of(manifest).value, manifest


def with_ansible(directory: Path, **changes: Any) -> ImageSet:
    spec = {**WORKED_EXAMPLE_SPEC, "ansible": ansible_spec(**changes)}
    return image_set_from_mapping(spec, base_dir=directory)


def test_a_spec_without_ansible_keeps_the_worked_example_fingerprint() -> None:
    value, manifest = fingerprint(image_set_from_mapping(WORKED_EXAMPLE_SPEC))
    assert value == WORKED_EXAMPLE_HASH
    assert "ansible" not in manifest


def test_the_bundle_is_an_input(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    value, manifest = fingerprint(with_ansible(directory))

    assert value != WORKED_EXAMPLE_HASH
    assert manifest["ansible"] == {
        "playbook": "site.yml",
        "bundle": pack(directory).digest,
        "extra_vars": {"env": "prod"},
    }


def test_a_changed_playbook_changes_the_fingerprint(tmp_path: Path) -> None:
    directory = write_files(tmp_path)
    before, _ = fingerprint(with_ansible(directory))
    (directory / "site.yml").write_text(FILES["site.yml"] + "  become: true\n")
    after, _ = fingerprint(with_ansible(directory))
    assert after != before


@pytest.mark.parametrize(
    "changes",
    [
        {"extra_vars": {"env": "staging"}},
        {"extra_vars": {}},
        {"playbook": "group_vars/all.yml"},
        {"files": ["site.yml", "roles/"]},
    ],
    ids=lambda change: next(iter(change)),
)
def test_each_ansible_setting_changes_the_fingerprint(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    directory = write_files(tmp_path)
    assert (
        fingerprint(with_ansible(directory, **changes))[0]
        != fingerprint(with_ansible(directory))[0]
    )


def test_where_the_files_live_is_not_an_input(tmp_path: Path) -> None:
    here = fingerprint(with_ansible(write_files(tmp_path / "checkout-a")))[0]
    there = fingerprint(with_ansible(write_files(tmp_path / "elsewhere" / "checkout-b")))[0]
    assert here == there


# ---- where paths start ----------------------------------------------------------------------

HCL_SPEC = """\
name         = "web"
images       = ["nginx:1.27@sha256:{digest}"]
base_ami     = "ami-0123456789abcdef0"
architecture = "x86_64"
ansible = {{
  playbook   = "site.yml"
  files      = ["site.yml", "roles/", "group_vars/all.yml"]
  extra_vars = {{ env = "prod" }}
}}
"""


def test_a_spec_file_names_files_relative_to_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "infra" / "web.hcl"
    write_files(spec.parent)
    spec.write_text(HCL_SPEC.format(digest="a" * 64))
    monkeypatch.chdir(tmp_path)

    image_set = load_image_set(Path("infra/web.hcl"))

    assert image_set.ansible == pack(spec.parent)
    assert image_set.ansible is not None
    assert image_set.ansible.extra_vars == {"env": "prod"}


def test_a_spec_file_error_names_the_file_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "web.hcl"
    write_files(tmp_path)
    spec.write_text(HCL_SPEC.format(digest="a" * 64).replace('"roles/"', '"../roles/"'))
    with pytest.raises(SpecError, match=r"web\.hcl:\d+: ansible\.files: '\.\./roles/' contains"):
        load_image_set(spec)


def test_the_terraform_query_names_files_from_the_working_directory_or_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path / "modules" / "web" / "ansible")
    monkeypatch.chdir(tmp_path)
    relative = {"directory": "modules/web/ansible", **ansible_spec()}
    absolute = {**relative, "directory": str(tmp_path / "modules" / "web" / "ansible")}
    from tfbake.terraform.protocol import parse_query

    parsed = [parse_query(json.dumps(query(ansible=value)), {}) for value in (relative, absolute)]

    assert parsed[0].image_set.ansible == parsed[1].image_set.ansible
    assert parsed[0].image_set.ansible == pack(tmp_path / "modules" / "web" / "ansible")


# ---- a bake in the sandbox ------------------------------------------------------------------


def test_a_bake_hands_the_bundle_to_the_builder(tmp_path: Path, sandbox: Sandbox) -> None:
    directory = write_files(tmp_path)
    spec = write_spec(tmp_path, base_ami=BASE_AMI, ansible=ansible_spec())

    result = run_tfbake("ensure", str(spec))

    assert result.code == 0, result.stderr
    parameters = sandbox.recorded_commands()[0].parameters
    archive = base64.b64decode(parameters["AnsibleBundle"][0])
    assert members(archive) == {name: text.encode() for name, text in FILES.items()}
    assert parameters["AnsiblePlaybook"] == ["site.yml"]
    assert json.loads(parameters["AnsibleExtraVars"][0]) == {"env": "prod"}
    assert archive == pack(directory).archive


def test_a_bake_without_ansible_sends_empty_ansible_parameters(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = run_tfbake("ensure", str(write_spec(tmp_path, base_ami=BASE_AMI)))

    assert result.code == 0, result.stderr
    parameters = sandbox.recorded_commands()[0].parameters
    assert parameters["AnsibleBundle"] == parameters["AnsiblePlaybook"] == [""]


def test_external_refuses_a_bundle_escaping_its_directory(tmp_path: Path, sandbox: Sandbox) -> None:
    write_files(tmp_path)
    spec = {"directory": str(tmp_path), **ansible_spec(files=["site.yml", "../etc/passwd"])}
    result = external(query(base_ami=BASE_AMI, ansible=spec))
    assert result.code == 2
    assert result.stdout == ""
    assert "ansible.files: '../etc/passwd' contains '..'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
