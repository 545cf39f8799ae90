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

from tfbake.model.errors import SpecError
from tfbake.model.image_set import ImageSet
from tfbake.spec.mapping import image_set_from_mapping
from tfbake.spec.untrusted import DuplicateKey, check_plain, loads_json, read_text_file

JSON_SUFFIXES = (".json",)


def load_image_set(path: Path) -> ImageSet:
    source = str(path)
    try:
        text = read_text_file(path)
    except FileNotFoundError:
        raise SpecError("no such file", source=source) from None
    except OSError as err:
        raise SpecError(f"cannot read: {err.strerror or err}", source=source) from None
    except ValueError as err:
        raise SpecError(str(err), source=source) from None
    if path.suffix.lower() in JSON_SUFFIXES:
        data = _parse_json(text, source)
        locate = _json_locator(text)
    else:
        locate = _hcl_locator(text)
        data = _literal_values(parse_hcl(text, source), source, locate)
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
        tree = hcl2.parses(text)
        _refuse_duplicates(tree, source, options)
        data = hcl2.serialize(tree, serialization_options=options)
        check_plain(data)
    except UnexpectedInput as err:
        raise SpecError(
            f"cannot parse HCL: {_first_line(str(err))}", source=source, line=err.line
        ) from None
    except RecursionError:
        # lark's tree and python-hcl2's rules recurse once per level of nesting.
        raise SpecError("cannot parse HCL: nested too deeply", source=source) from None
    except (LarkError, ValueError, RuntimeError) as err:
        raise SpecError(f"cannot parse HCL: {_first_line(str(err))}", source=source) from None
    return data


def _refuse_duplicates(tree: Any, source: str, options: Any) -> None:
    """Terraform refuses an argument set twice, or as an argument and a block, and a key given
    twice in an object; python-hcl2 would keep the last silently."""
    from hcl2.rules.base import AttributeRule, BlockRule, BodyRule
    from hcl2.rules.containers import ObjectElemRule, ObjectRule

    def name_of(node: Any) -> str:
        if isinstance(node, AttributeRule):
            return str(node.identifier.serialize(options))
        if isinstance(node, BlockRule):
            return str(node.labels[0].serialize(options))
        return str(node.key.serialize(options))

    # Without recursion (the tree may be deep); each node with the dotted name of where it is.
    pending: list[tuple[Any, str]] = [(tree, "")]
    while pending:
        node, prefix = pending.pop()
        if isinstance(node, BodyRule):
            named = [c for c in node.children if isinstance(c, AttributeRule)]
            # Blocks of one type may repeat; only an argument of the same name clashes.
            first_blocks: dict[str, Any] = {}
            for child in node.children:
                if isinstance(child, BlockRule):
                    first_blocks.setdefault(name_of(child), child)
            _first_repeat([(name_of(c), c) for c in named] + list(first_blocks.items()),
                          prefix, source)  # fmt: skip
        elif isinstance(node, ObjectRule):
            _first_repeat([(name_of(e), e) for e in node.elements], prefix, source)
        if isinstance(node, AttributeRule | BlockRule | ObjectElemRule):
            prefix = f"{prefix}{name_of(node)}."
        pending.extend((c, prefix) for c in getattr(node, "children", ()) if c is not None)


def _first_repeat(named: list[tuple[str, Any]], prefix: str, source: str) -> None:
    seen: dict[str, int | None] = {}
    for name, node in sorted(named, key=lambda pair: _line(pair[1]) or 0):
        if name in seen:
            first = f" (first on line {seen[name]})" if seen[name] else ""
            raise SpecError(
                f"set twice{first}", source=source, field=prefix + name, line=_line(node)
            )
        seen[name] = _line(node)


def _line(node: Any) -> int | None:
    meta = getattr(node, "_meta", None)
    return getattr(meta, "line", None)


def _literal_values(
    data: dict[str, Any], source: str, locate: Callable[[str], int | None]
) -> dict[str, Any]:
    """HCL's own escapes and heredocs applied; an interpolation is an error, not text.

    A spec file is read, not evaluated: `${...}` has nothing to refer to, and passing it on
    verbatim would bake a different command than the one the user meant.
    """
    from tfbake.spec.hcl_values import Unresolvable, evaluate

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


def _parse_json(text: str, source: str) -> Any:
    try:
        return loads_json(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"invalid JSON: {err.msg}", source=source, line=err.lineno) from None
    except DuplicateKey as err:
        raise SpecError("set twice", source=source, field=err.key) from None
    except ValueError as err:
        raise SpecError(str(err), source=source) from None


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
