"""What a root meets when tfbake or the module does not fit: one line that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.specs import NGINX
from tests.support.terraform import SANDBOX_AWS_PROVIDER, Root, stage
from tfbake.sandbox import Sandbox

MAIN_TF = (
    SANDBOX_AWS_PROVIDER
    + """
variable "tfbake_command" {
  type = list(string)
}

variable "on_missing" {
  type    = string
  default = null
}

module "web_ami" {
  source = "../modules/baked-ami"

  name           = "upgrade-web"
  images         = ["NGINX"]
  base_ami       = "ami-0123456789abcdef0"
  architecture   = "x86_64"
  tfbake_command = var.tfbake_command
  on_missing     = var.on_missing
}
""".replace("NGINX", NGINX)
)


@pytest.fixture(scope="module")
def root(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Root:
    tree = tmp_path_factory.mktemp("upgrades")
    stage(tree)
    (tree / "root").mkdir()
    (tree / "root" / "main.tf").write_text(MAIN_TF)
    directory = Root(tree / "root", terraform_bin)
    directory.init().check()
    return directory


def _detail(run: object) -> str:
    # Terraform wraps error details to its width.
    return " ".join(getattr(run, "stderr", "").split())


def test_tfbake_missing_from_path_says_how_to_install_it(root: Root, sandbox: Sandbox) -> None:
    plan = root.plan({"tfbake_command": ["tfbake-not-installed-here"]})
    assert plan.code == 1
    detail = _detail(plan)
    assert "tfbake: error: tfbake-not-installed-here is not on the PATH" in detail, detail
    assert "pipx install 'tfbake>=0.2.0,<0.3.0'" in detail, detail


def test_a_root_that_still_sets_on_missing_is_told_what_to_change(
    root: Root, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = root.plan({"tfbake_command": ["tfbake"], "on_missing": "bake"})
    assert plan.code == 1
    detail = _detail(plan)
    assert "on_missing was removed in modules/baked-ami 0.2" in detail, detail
    assert "delete the on_missing argument" in detail
