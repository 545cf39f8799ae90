"""Image-set specs: files (HCL, JSON) and mappings validate into ImageSets or name the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tfbake.model.errors import ExitCode, SpecError
from tfbake.model.image_set import BaseAmi
from tfbake.spec.mapping import image_set_from_mapping
from tfbake.spec.specfile import load_image_set

VALID: dict[str, Any] = {
    "name": "web",
    "images": ["nginx:1.27", "redis"],
    "base_ami": "ami-0123456789abcdef0",
}


def spec(**changes: Any) -> dict[str, Any]:
    data = {**VALID, **changes}
    return {key: value for key, value in data.items() if value is not None}


def test_minimal_spec_gets_defaults() -> None:
    image_set = image_set_from_mapping(spec())
    assert image_set.name == "web"
    assert [str(i) for i in image_set.images] == [
        "docker.io/library/nginx:1.27",
        "docker.io/library/redis:latest",
    ]
    assert image_set.base_ami == BaseAmi(ami_id="ami-0123456789abcdef0")
    assert image_set.architecture is None
    assert (image_set.volume.size_gib, image_set.volume.type, image_set.volume.encrypted) == (
        30, "gp3", True,
    )  # fmt: skip
    assert image_set.ami_owners == ("self",)


def test_full_spec() -> None:
    image_set = image_set_from_mapping(
        spec(
            architecture="arm64",
            volume={"size": 50, "type": "io2", "encrypted": True, "kms_key_id": "alias/bake"},
            provision=["echo 'hi' > /etc/motd"],
            salt="2",
            tags={"team": "web"},
            builder={"instance_type": "t4g.large", "subnet_id": "subnet-0123456789abcdef0",
                     "security_group_ids": ["sg-01234567"], "timeout_minutes": 30},
            ami_owners=["123456789012"],
            insecure_registries=["reg.internal:5000"],
        )
    )  # fmt: skip
    assert image_set.architecture == "arm64"
    assert image_set.volume.kms_key_id == "alias/bake"
    assert image_set.provision == ("echo 'hi' > /etc/motd",)
    assert image_set.tags == (("team", "web"),)
    assert image_set.builder.security_group_ids == ("sg-01234567",)
    assert image_set.builder.timeout_minutes == 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
         BaseAmi(ssm_parameter="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")),
        ({"owners": ["099720109477"], "name": "ubuntu/images/*"},
         BaseAmi(owners=("099720109477",), name_pattern="ubuntu/images/*")),
        ({"owner": "amazon", "name": "al2023-ami-*"},
         BaseAmi(owners=("amazon",), name_pattern="al2023-ami-*")),
    ],
)  # fmt: skip
def test_base_ami_forms(value: Any, expected: BaseAmi) -> None:
    assert image_set_from_mapping(spec(base_ami=value)).base_ami == expected


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": None}, "name", "is required"),
        ({"name": "Web"}, "name", "lower-case"),
        ({"name": "a" * 49}, "name", "1-48"),
        ({"images": None}, "images", "is required"),
        ({"images": []}, "images", "is empty"),
        ({"images": "nginx"}, "images", "must be a list"),
        ({"images": ["nginx", "$(id)"]}, "images", "shell metacharacters"),
        ({"base_ami": "ubuntu"}, "base_ami", "must be an AMI id (ami-...), ssm:"),
        ({"base_ami": "ami-123"}, "base_ami", "'ami-123' is not an AMI id: ami- and then 8 or 17"),
        ({"base_ami": "ssm:a b"}, "base_ami", "is not an SSM parameter path"),
        ({"base_ami": {"name": "x-*"}}, "base_ami.owners", "is required"),
        ({"architecture": "i386"}, "architecture", "must be one of"),
        ({"runtime": "podman"}, "runtime", "'podman' must be one of docker, containerd"),
        ({"containerd_namespace": "k8s.io"}, "containerd_namespace", 'runtime is "docker"'),
        (
            {"runtime": "containerd", "containerd_namespace": "k8s.io;reboot"},
            "containerd_namespace",
            "is not a containerd namespace",
        ),
        (
            {"runtime": "containerd", "containerd_namespace": "n" * 77},
            "containerd_namespace",
            "at most 76 characters",
        ),
        ({"volume": {"size": 0}}, "volume.size", "whole number"),
        ({"volume": {"type": "gp9"}}, "volume.type", "must be one of"),
        ({"volume": {"encrypted": False, "kms_key_id": "k"}}, "volume.kms_key_id", "encrypted"),
        ({"provision": ["  "]}, "provision", "command 1 is empty"),
        ({"tags": {"tfbake:status": "ready"}}, "tags", "reserved"),
        ({"tags": {"aws:x": "y"}}, "tags", "reserved"),
        ({"tags": {"team": "x" * 257}}, "tags", "value of 'team' has 257 characters"),
        ({"tags": {f"k{n}": "v" for n in range(31)}}, "tags", "at most 30"),
        ({"imgaes": ["x"]}, "imgaes", "did you mean 'images'"),
        ({"builder": {"instance_typ": "t3.large"}}, "builder.instance_typ", "did you mean"),
        ({"ami_owners": ["me"]}, "ami_owners", "account id"),
        ({"builder": {"subnet_id": "subnet-zz"}}, "builder.subnet_id", "not a subnet id"),
        ({"builder": {"security_group_ids": ["sg-1;x"]}}, "builder.security_group_ids", "sg-"),
        ({"builder": {"instance_type": "large"}}, "builder.instance_type", "instance type"),
        ({"builder": {"automation_role_arn": "role"}}, "builder.automation_role_arn", "ARN"),
        ({"builder": {"timeout_minutes": 0}}, "builder.timeout_minutes", "whole number"),
        ({"builder": {"timeout_minutes": 721}}, "builder.timeout_minutes", "automation_role_arn"),
        ({"insecure_registries": ["a b"]}, "insecure_registries", "host[:port]"),
        ({"registry_credentials_parameter": "$(x)"}, "registry_credentials_parameter", "name"),
    ],
)
def test_invalid_field_is_named(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        image_set_from_mapping(spec(**changes), "spec.hcl")
    assert caught.value.field == field
    assert message in caught.value.message
    assert caught.value.message.startswith(f"spec.hcl: {field}: ")
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_a_wait_of_twelve_hours_needs_no_role_and_a_longer_one_with_a_role_is_accepted() -> None:
    role = "arn:aws:iam::123456789012:role/tfbake-automation"
    at_most = image_set_from_mapping(spec(builder={"timeout_minutes": 720}), "spec.hcl")
    longer = spec(builder={"timeout_minutes": 721, "automation_role_arn": role})

    assert at_most.builder.timeout_minutes == 720
    assert image_set_from_mapping(longer, "spec.hcl").builder.timeout_minutes == 721


def test_not_a_mapping() -> None:
    with pytest.raises(SpecError, match="must be an object"):
        image_set_from_mapping(["web"], "q")


def test_hcl_file_with_blocks(tmp_path: Path) -> None:
    path = tmp_path / "web.hcl"
    path.write_text(
        'name = "web"\nimages = ["nginx:1.27"]\nbase_ami = "ami-0123456789abcdef0"\n'
        'volume {\n  size = 40\n}\nbuilder {\n  instance_type = "t3.large"\n}\n'
        'provision = ["echo \\"$HOME\\""]\n'
    )
    image_set = load_image_set(path)
    assert image_set.volume.size_gib == 40
    assert image_set.builder.instance_type == "t3.large"
    assert image_set.provision == ('echo "$HOME"',)


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "web.json"
    path.write_text(json.dumps(spec(volume={"size": 12})))
    assert load_image_set(path).volume.size_gib == 12


def test_hcl_value_error_names_file_field_and_line(tmp_path: Path) -> None:
    path = tmp_path / "web.hcl"
    path.write_text('name = "web"\n\nimages = ["nginx", "Bad:Ref"]\nbase_ami = "ami-01234567"\n')
    with pytest.raises(SpecError) as caught:
        load_image_set(path)
    assert caught.value.message.startswith(f"{path}:3: images: invalid image reference 'Bad:Ref'")


def test_unparsable_hcl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "web.hcl"
    path.write_text('name = "web"\nimages = [\n  "nginx",\n  oops oops\n')
    with pytest.raises(SpecError) as caught:
        load_image_set(path)
    assert caught.value.line == 4
    assert caught.value.message.startswith(f"{path}:4: cannot parse HCL")


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "web.json"
    path.write_text('{\n "name": "web",\n}')
    with pytest.raises(SpecError, match=r"web.json:3: invalid JSON"):
        load_image_set(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_image_set(tmp_path / "nope.hcl")


def test_hcl_escapes_are_applied_and_interpolation_refused(tmp_path: Path) -> None:
    path = tmp_path / "web.hcl"
    head = 'name = "web"\nimages = ["nginx"]\nbase_ami = "ami-01234567"\n'
    path.write_text(head + 'provision = ["echo $${HOME} %%{x}", "echo \\"$HOME\\""]\n')
    assert load_image_set(path).provision == ("echo ${HOME} %{x}", 'echo "$HOME"')
    path.write_text(head + 'salt = "${var.salt}"\n')
    with pytest.raises(SpecError) as caught:
        load_image_set(path)
    assert caught.value.message.startswith(f"{path}:4: salt: ")
    assert "write $${ for a literal ${" in caught.value.message


def test_hcl_field_set_twice(tmp_path: Path) -> None:
    path = tmp_path / "web.hcl"
    path.write_text('name = "web"\nimages = ["nginx"]\nbase_ami = "ami-01234567"\nname = "api"\n')
    with pytest.raises(SpecError, match=r"web.hcl:4: name: set twice \(first on line 1\)"):
        load_image_set(path)
