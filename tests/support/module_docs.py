"""The inputs and outputs tables of each module's README, rendered from variables.tf/outputs.tf.

The tables sit between BEGIN/END markers in modules/<name>/README.md; everything else in the
README is written by hand. `python -m tests.support.module_docs` rewrites stale tables;
`--check` only reports them (tests/test_module_docs.py does the same in CI).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hcl2

MODULES = Path(__file__).resolve().parents[2] / "modules"
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"


def module_dirs() -> list[Path]:
    return sorted(path.parent for path in MODULES.glob("*/versions.tf"))


def blocks(path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, attributes) of each `kind` block in the file, in file order."""
    parsed = hcl2.loads(path.read_text())
    return [
        (_unquote(name), attributes)
        for block in parsed.get(kind, [])
        for name, attributes in block.items()
    ]


def render(module: Path) -> str:
    lines = [BEGIN, "## Inputs", "", "| Name | Description | Type | Default | Required |"]
    lines.append("|------|-------------|------|---------|:--------:|")
    for name, attributes in blocks(module / "variables.tf", "variable"):
        required = "default" not in attributes
        default = "n/a" if required else f"`{_hcl(attributes['default'])}`"
        lines.append(
            f"| {name} | {_cell(_text(attributes.get('description', '')))} "
            f"| `{_cell(_hcl(attributes.get('type', 'any')))}` | {_cell(default)} "
            f"| {'yes' if required else 'no'} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|------|-------------|"]
    for name, attributes in blocks(module / "outputs.tf", "output"):
        lines.append(f"| {name} | {_cell(_text(attributes.get('description', '')))} |")
    lines.append(END)
    return "\n".join(lines)


def current(readme: Path) -> str | None:
    """The README's tables section as it stands, or None when its markers are missing."""
    text = readme.read_text() if readme.exists() else ""
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def update(module: Path) -> bool:
    """Rewrite the README's tables; True when they changed."""
    readme = module / "README.md"
    section = current(readme)
    if section is None:
        raise SystemExit(f"{readme}: add the lines {BEGIN} and {END} where the tables go")
    rendered = render(module)
    if section == rendered:
        return False
    readme.write_text(readme.read_text().replace(section, rendered))
    return True


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _text(value: Any) -> str:
    # python-hcl2 keeps a string literal's quotes and escapes.
    return _unquote(str(value)).replace('\\"', '"').replace("\\\\", "\\")


def _hcl(value: Any) -> str:
    """A parsed value written back as HCL."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(item) for item in value) + "]"
    if isinstance(value, dict):
        items = [f"{_unquote(k)} = {_hcl(v)}" for k, v in value.items() if k != "__is_block__"]
        return "{" + ", ".join(items) + "}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for module in module_dirs():
        section = current(module / "README.md")
        if section != render(module):
            stale.append(module)
            if not check:
                update(module)
    verb = "stale" if check else "rewrote"
    for module in stale:
        sys.stderr.write(f"{verb}: {module / 'README.md'}\n")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
