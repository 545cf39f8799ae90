"""Module READMEs carry up-to-date inputs/outputs tables, and variables follow the house style."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.module_docs import blocks, current, module_dirs, render

MODULES = module_dirs()
FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")


def test_the_three_modules_exist() -> None:
    assert [m.name for m in MODULES] == ["asg", "bake-infra", "baked-ami"]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_module_has_the_four_files_and_a_readme(module: Path) -> None:
    assert sorted(p.name for p in module.iterdir() if p.is_file()) == sorted(FILES)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_readme_tables_match_variables_and_outputs(module: Path) -> None:
    section = current(module / "README.md")
    assert section is not None, f"{module.name}/README.md has no table markers"
    assert section == render(module), (
        f"{module.name}/README.md tables are stale: run python -m tests.support.module_docs"
    )


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_variables_have_description_type_default_in_that_order(module: Path) -> None:
    for name, attributes in blocks(module / "variables.tf", "variable"):
        keys = [k for k in attributes if k in ("description", "type", "default")]
        assert keys[:2] == ["description", "type"], f"{module.name}: variable {name}: {keys}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_outputs_have_descriptions(module: Path) -> None:
    for name, attributes in blocks(module / "outputs.tf", "output"):
        assert attributes.get("description"), f"{module.name}: output {name}"
