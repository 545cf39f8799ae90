from __future__ import annotations

from pathlib import Path

import pytest

from tfbake.model.errors import BadInput
from tfbake.terraform.discover import ModuleCall, Unresolved, discover

SOURCE = "../../modules/baked-ami"


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def only_call(directory: Path, **kwargs: object) -> ModuleCall:
    calls = discover(directory, **kwargs)  # type: ignore[arg-type]
    assert len(calls) == 1
    return calls[0]


VARIABLE_IMAGES = """
variable "images" {
  type    = list(string)
  default = ["default:1"]
}
"""
MODULE_USES_VAR = f"""
module "web" {{
  source = "{SOURCE}"
  images = var.images
}}
"""


def images_with(tmp_path: Path, files: dict[str, str], **kwargs: object) -> object:
    write(tmp_path, {"variables.tf": VARIABLE_IMAGES, "main.tf": MODULE_USES_VAR, **files})
    return only_call(tmp_path, **kwargs).arguments["images"]


def test_literal_arguments_become_python_values(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.tf": f"""
# the header line is counted from the file text
module "web" {{
  source        = "{SOURCE}"
  count         = 2
  name          = "web"
  images        = ["nginx:1.25", "redis:7"]
  volume_size   = 30
  ratio         = 1.5
  large         = 3e1
  enabled       = false
  tags          = {{ Team = "core", "cost-center" = "42", nested = {{ ids = [1, 2] }} }}
  escaped       = "literal $${{HOME}} and %%{{x}}"
  quoted        = "say \\"hi\\"\\n"
  script        = <<-EOT
    echo one
      echo two
  EOT
}}
"""
        },
    )
    call = only_call(tmp_path)
    assert call.address == "module.web"
    assert call.file == tmp_path / "main.tf"
    assert call.line == 3
    assert call.source == SOURCE
    assert call.meta == {"count": 2}
    assert call.unresolved == ()
    assert call.arguments == {
        "name": "web",
        "images": ["nginx:1.25", "redis:7"],
        "volume_size": 30,
        "ratio": 1.5,
        "large": 30,
        "enabled": False,
        "tags": {"Team": "core", "cost-center": "42", "nested": {"ids": [1, 2]}},
        "escaped": "literal ${HOME} and %{x}",
        "quoted": 'say "hi"\n',
        "script": "echo one\n  echo two\n",
    }


def test_variable_default_resolves_whole_reference(tmp_path: Path) -> None:
    assert images_with(tmp_path, {}) == ["default:1"]


def test_interpolation_inside_a_string(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.tf": f"""
variable "env" {{
  default = "prod"
}}
variable "size" {{
  type    = number
  default = 8
}}
module "web" {{
  source = "{SOURCE}"
  name   = "web-${{var.env}}-${{var.size}}"
  images = ["registry.example.com/${{var.env}}/app:1", "$${{var.env}}"]
}}
"""
        },
    )
    assert only_call(tmp_path).arguments == {
        "name": "web-prod-8",
        "images": ["registry.example.com/prod/app:1", "${var.env}"],
    }


def test_tf_var_environment_overrides_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_VAR_images", '["env:1", "env:2"]')
    assert images_with(tmp_path, {}) == ["env:1", "env:2"]


def test_terraform_tfvars_overrides_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_VAR_images", '["env:1"]')
    files = {"terraform.tfvars": 'images = ["tfvars:1"]\n'}
    assert images_with(tmp_path, files) == ["tfvars:1"]


def test_tfvars_json_overrides_tfvars(tmp_path: Path) -> None:
    files = {
        "terraform.tfvars": 'images = ["tfvars:1"]\n',
        "terraform.tfvars.json": '{"images": ["json:1"]}',
    }
    assert images_with(tmp_path, files) == ["json:1"]


def test_auto_tfvars_override_in_lexical_order(tmp_path: Path) -> None:
    files = {
        "terraform.tfvars.json": '{"images": ["json:1"]}',
        "a.auto.tfvars": 'images = ["a:1"]\n',
        "b.auto.tfvars.json": '{"images": ["b:1"]}',
        "c.auto.tfvars": 'images = ["c:1"]\n',
    }
    assert images_with(tmp_path, files) == ["c:1"]
    (tmp_path / "c.auto.tfvars").unlink()
    assert images_with(tmp_path, {}) == ["b:1"]


def test_var_files_in_order_override_auto_tfvars(tmp_path: Path) -> None:
    first = tmp_path / "first.tfvars"
    second = tmp_path / "second.tfvars.json"
    files = {
        "z.auto.tfvars": 'images = ["auto:1"]\n',
        first.name: 'images = ["first:1"]\n',
        second.name: '{"images": ["second:1"]}',
    }
    assert images_with(tmp_path, files, var_files=[second, first]) == ["first:1"]
    assert images_with(tmp_path, {}, var_files=[first, second]) == ["second:1"]


def test_cli_variables_override_var_files(tmp_path: Path) -> None:
    files = {"prod.tfvars": 'images = ["file:1"]\n'}
    images = images_with(
        tmp_path,
        files,
        var_files=[tmp_path / "prod.tfvars"],
        variables={"images": '["cli:1"]'},
    )
    assert images == ["cli:1"]


def test_string_values_from_the_command_line_stay_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in Terraform: a primitive or untyped variable takes the text as is, a number is converted.
    write(
        tmp_path,
        {
            "main.tf": f"""
variable "name" {{}}
variable "ref" {{
  type = string
}}
variable "size" {{
  type = number
}}
module "web" {{
  source = "{SOURCE}"
  name   = var.name
  ref    = var.ref
  size   = var.size
}}
"""
        },
    )
    monkeypatch.setenv("TF_VAR_size", "20")
    call = only_call(tmp_path, variables={"name": '["x"]', "ref": "true"})
    assert call.arguments == {"name": '["x"]', "ref": "true", "size": 20}


def test_unresolvable_arguments_are_reported_with_reason(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.tf": f"""
variable "missing" {{
  type = string
}}
locals {{
  images = ["nginx:1"]
}}
module "web" {{
  source   = "{SOURCE}"
  name     = "web"
  images   = local.images
  base_ami = module.base.ami_id
  recipe   = jsonencode({{ a = 1 }})
  mixed    = ["redis:7", local.extra]
  owner    = var.missing
  for_each = toset(["a"])
}}
"""
        },
    )
    call = only_call(tmp_path)
    assert call.arguments == {"name": "web"}
    assert call.meta == {"for_each": '${toset(["a"])}'}
    assert call.unresolved == (
        Unresolved("images", "${local.images}", "references local.images"),
        Unresolved("base_ami", "${module.base.ami_id}", "references module.base output"),
        Unresolved("recipe", "${jsonencode({a = 1})}", "function call jsonencode()"),
        Unresolved("mixed", '["redis:7", "${local.extra}"]', "element 1: references local.extra"),
        Unresolved("owner", "${var.missing}", "variable missing has no value"),
    )


def test_other_modules_are_ignored(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.tf": f"""
module "vpc" {{
  source = "terraform-aws-modules/vpc/aws"
}}
module "almost" {{
  source = "../modules/baked-ami-extras"
}}
module "web" {{
  source = "{SOURCE}"
}}
"""
        },
    )
    assert [call.address for call in discover(tmp_path)] == ["module.web"]


def test_calls_in_several_files_are_sorted_by_file_then_line(tmp_path: Path) -> None:
    block = 'module "{}" {{\n  source = "' + SOURCE + '"\n}}\n'
    write(
        tmp_path,
        {
            "b.tf": block.format("zeta") + "\n" + block.format("alpha"),
            "a.tf": "\n\n" + block.format("omega"),
        },
    )
    found = [(call.file.name, call.line, call.address) for call in discover(tmp_path)]
    assert found == [
        ("a.tf", 3, "module.omega"),
        ("b.tf", 1, "module.zeta"),
        ("b.tf", 5, "module.alpha"),
    ]


@pytest.mark.parametrize(
    "source",
    [
        "git::https://example.com/tfbake.git//modules/baked-ami?ref=v1",
        "app.terraform.io/acme/tfbake/aws//modules/baked-ami",
        "github.com/acme/tfbake//baked-ami",
        "git::ssh://git@example.com/tfbake.git//modules/baked-ami?ref=release/1.2",
    ],
    ids=["git-with-ref", "registry-subdir", "git-root-subdir", "ref-with-slash"],
)
def test_remote_sources_are_matched(tmp_path: Path, source: str) -> None:
    write(
        tmp_path, {"main.tf": f'module "web" {{\n  source  = "{source}"\n  version = "1.2"\n}}\n'}
    )
    call = only_call(tmp_path)
    assert call.source == source
    assert call.meta == {"version": "1.2"}


def test_custom_source_pattern(tmp_path: Path) -> None:
    write(tmp_path, {"main.tf": 'module "web" {\n  source = "./ours"\n}\n'})
    assert discover(tmp_path) == []
    assert only_call(tmp_path, source_pattern=r"/ours$").address == "module.web"


def test_parse_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"main.tf": 'module "web" {\n  source = "x"\n  images = [1,, 2]\n}\n'})
    with pytest.raises(BadInput) as caught:
        discover(tmp_path)
    message = caught.value.one_line()
    assert message.startswith(f"{tmp_path / 'main.tf'}:3: cannot parse HCL: ")
    assert "\n" not in caught.value.message


def test_tfvars_parse_error_names_file(tmp_path: Path) -> None:
    write(tmp_path, {"variables.tf": VARIABLE_IMAGES, "terraform.tfvars.json": '{\n"images": [}'})
    with pytest.raises(BadInput, match=r"terraform\.tfvars\.json:2: cannot parse JSON"):
        discover(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such Terraform directory"):
        discover(tmp_path / "absent")


# ---- bounded parsing -------------------------------------------------------------------------

GENERATED_RESOURCE = 'resource "null_resource" "r%d" {\n  triggers = { id = "%d" }\n}\n'


def test_a_15_mb_file_of_resources_is_not_parsed(tmp_path: Path) -> None:
    import resource
    import time

    generated = "".join(GENERATED_RESOURCE % (i, i) for i in range(220_000))
    assert len(generated) > 15_000_000
    write(tmp_path, {"main.tf": MODULE_USES_VAR, "variables.tf": VARIABLE_IMAGES,
                     "generated.tf": generated})  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()

    call = only_call(tmp_path)

    assert call.arguments["images"] == ["default:1"]
    assert time.monotonic() - started < 10
    # ru_maxrss is in KiB: the file's text is held once, its parse never.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def test_a_file_declaring_modules_beyond_the_parse_bound_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    generated = "".join(f'variable "v{i}" {{\n  default = "{i}"\n}}\n' for i in range(300_000))
    write(tmp_path, {"main.tf": MODULE_USES_VAR, "generated.tf": generated})

    with pytest.raises(BadInput) as caught:
        discover(tmp_path)

    assert caught.value.one_line() == (
        f"{tmp_path / 'generated.tf'}: {len(generated) // 1024} KiB of HCL declaring modules or "
        "variables; tfbake parses at most 256 KiB a file (move generated configuration to "
        "files of its own)"
    )
