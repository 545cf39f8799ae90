"""The shipped documents run without the comments of their sources: fixing a comment renames no
document and rebakes no AMI."""

from __future__ import annotations

from importlib import resources

import yaml

from tfbake.bake import documents
from tfbake.bake.comments import without_shell_comments, without_yaml_comments

SOURCES = ("recipe.sh", "builder-user-data.sh", "runbook.yaml", "recipe-command.yaml")


def source(name: str) -> str:
    return resources.files("tfbake.bake").joinpath(name).read_text(encoding="utf-8")


def without_comments(name: str, text: str) -> str:
    return without_shell_comments(text) if name.endswith(".sh") else without_yaml_comments(text)


def test_a_changed_or_added_comment_leaves_every_shipped_byte_alone() -> None:
    for name in SOURCES:
        text = source(name)
        commented = text.replace("\n", "\n# a comment fixed in a later release\n", 3)
        assert commented != text
        assert without_comments(name, commented) == without_comments(name, text), name


def test_the_runbook_means_the_same_without_its_comments() -> None:
    text = source("runbook.yaml").replace("__CHUNKED_PARAMETERS__", "")
    assert yaml.safe_load(without_yaml_comments(text)) == yaml.safe_load(text)


def test_the_shipped_documents_hold_no_comment_line() -> None:
    runbook = documents.runbook_content()
    assert not [line for line in runbook.splitlines() if line.lstrip().startswith("#")]
    script = without_shell_comments(source("recipe.sh"))
    # Here-document content is what the recipe writes (a unit file's own comment): it stays.
    kept = [line for line in script.splitlines()[1:] if line.lstrip().startswith("#")]
    assert [line[:20] for line in kept] == ["# Ordered before uni", "# would make an orde"]


def test_a_script_keeps_its_interpreter_line() -> None:
    assert without_shell_comments(source("builder-user-data.sh")).startswith("#!")


def test_here_documents_are_content() -> None:
    script = "cat >f <<'UNIT'\n# kept\nUNIT\n# dropped\ncat <<-EOF\n\t# kept too\n\tEOF\necho x\n"
    assert without_shell_comments(script) == (
        "cat >f <<'UNIT'\n# kept\nUNIT\ncat <<-EOF\n\t# kept too\n\tEOF\necho x\n"
    )
