"""`terraform fmt -check` and `terraform validate` on every module and example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.terraform import REPO_ROOT, Root, stage

ROOTS = sorted(
    str(path.parent.relative_to(REPO_ROOT))
    for path in [
        *REPO_ROOT.glob("modules/*/versions.tf"),
        *REPO_ROOT.glob("examples/*/versions.tf"),
        # An example of several roots (one per account) keeps each in a directory of its own.
        *REPO_ROOT.glob("examples/*/*/versions.tf"),
    ]
)


def test_every_module_and_example_is_checked() -> None:
    assert {"modules/asg", "modules/bake-infra", "modules/baked-ami"} <= set(ROOTS)
    assert {"examples/demo-app", "examples/sandbox"} <= set(ROOTS)
    assert {"examples/two-accounts/image", "examples/two-accounts/workload"} <= set(ROOTS)


@pytest.mark.parametrize("directory", ["modules", "examples"])
def test_terraform_fmt_check(terraform_bin: str, directory: str) -> None:
    root = Root(REPO_ROOT, terraform_bin)
    # -check writes nothing: it lists the files that would change and exits 3.
    code, out, err = root.tf.cmd("fmt", directory, check=True, recursive=True, diff=True)
    assert code == 0, f"terraform fmt would change:\n{out}{err}"


@pytest.mark.parametrize("directory", ROOTS)
def test_terraform_validate(terraform_bin: str, directory: str, tmp_path: Path) -> None:
    # The whole example: its roots share directories beside them (examples/two-accounts).
    stage(tmp_path, "/".join(directory.split("/")[:2]))
    root = Root(tmp_path / directory, terraform_bin)
    root.init().check()
    validated = root.validate()
    assert validated.code == 0, validated.stderr + validated.stdout
    assert "Success! The configuration is valid" in validated.stdout
    # A deprecated attribute (AWS provider 6 deprecates aws_region's name) shows as a warning.
    assert "Warning" not in validated.stdout + validated.stderr
