"""Read an image-set spec file (HCL or JSON) into an ImageSet.

Validation errors name the file, the field and, where it can be found, the line: the parser's
own line for syntax errors, and the line the field is set on for value errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbake.errors import SpecError
from tfbake.spec import ImageSet, image_set_from_mapping

JSON_SUFFIXES = (".json",)


def load_image_set(path: Path) -> ImageSet:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", source=source) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read: {err}", source=source) from None
    if path.suffix.lower() in JSON_SUFFIXES:
        data = _parse_json(text, source)
        locate = _json_locator(text)
    else:
        locate = _hcl_locator(text)
        data = _literal_values(parse_hcl(text, source), source, locate)
        _refuse_duplicates(text, source)
    # Ansible files are named relative to the spec, wherever tfbake runs from.
    return image_set_from_mapping(data, source, locate, base_dir=path.parent)


def parse_hcl(text: str, source: str) -> dict[str, Any]:
    # python-hcl2 (and its parser, lark) is slow to import; only HCL specs pay for it.
    import hcl2
    from hcl2.utils import SerializationOptions
    from lark.exceptions import LarkError, UnexpectedInput

    options = SerializationOptions(
        strip_string_quotes=True, with_comments=False, explicit_blocks=False
    )
    try:
        return hcl2.loads(text, serialization_options=options)
    except UnexpectedInput as err:
        raise SpecError(
            f"cannot parse HCL: {_first_line(str(err))}", source=source, line=err.line
        ) from None
    except (LarkError, ValueError) as err:
        raise SpecError(f"cannot parse HCL: {_first_line(str(err))}", source=source) from None


def _literal_values(
    data: dict[str, Any], source: str, locate: Callable[[str], int | None]
) -> dict[str, Any]:
    """HCL's own escapes and heredocs applied; an interpolation is an error, not text.

    A spec file is read, not evaluated: `${...}` has nothing to refer to, and passing it on
    verbatim would bake a different command than the one the user meant.
    """
    from tfbake.hcl_values import Unresolvable, evaluate

    values = {}
    for key, value in data.items():
        try:
            values[key] = evaluate(value, {})
        except Unresolvable as err:
            raise SpecError(
                f"{err.reason}: a spec file is not evaluated like Terraform; "
                "write $${ for a literal ${",
                source=source,
                field=key,
                line=locate(key),
            ) from None
    return values


def _refuse_duplicates(text: str, source: str) -> None:
    """Terraform refuses an attribute set twice; python-hcl2 would keep the last silently."""
    seen: dict[str, int] = {}
    for match in re.finditer(r"^(\w+)[ \t]*[={]", text, re.MULTILINE):
        line = text.count("\n", 0, match.start()) + 1
        name = match[1]
        if name in seen:
            raise SpecError(
                f"set twice (first on line {seen[name]})", source=source, field=name, line=line
            )
        seen[name] = line


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"invalid JSON: {err.msg}", source=source, line=err.lineno) from None


def _hcl_locator(text: str) -> Callable[[str], int | None]:
    return _locator(text, lambda name: rf"^[ \t]*{re.escape(name)}[ \t]*[={{]")


def _json_locator(text: str) -> Callable[[str], int | None]:
    return _locator(text, lambda name: rf'"{re.escape(name)}"\s*:')


def _locator(text: str, pattern_for: Callable[[str], str]) -> Callable[[str], int | None]:
    """Line of the first place a top-level field name is set; a hint, not a parse."""

    def locate(name: str) -> int | None:
        match = re.search(pattern_for(name), text, re.MULTILINE)
        return text.count("\n", 0, match.start()) + 1 if match else None

    return locate


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "syntax error"
