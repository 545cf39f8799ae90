"""Find the calls of the tfbake Terraform module in a Terraform root directory.

Only the root directory's own `*.tf` files are read: module calls inside nested modules are not
followed, and JSON configuration (`*.tf.json`) and override files get no special treatment.
Argument values are resolved statically, the way Terraform would resolve them before a plan:
literals and input variables (defaults, TF_VAR_*, tfvars files, -var-file, -var). Whatever needs
more (locals, resources, data sources, module outputs, functions) is reported as Unresolved.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from tfbake.model.errors import BadInput
from tfbake.spec.hcl_values import NO_VALUE, Unresolvable, evaluate
from tfbake.spec.untrusted import read_text_file

# A source ending in `baked-ami` (local path, git `//subdir`, registry `//subdir`), with an
# optional query such as `?ref=v1`.
DEFAULT_SOURCE_PATTERN = r"(?:^|/)baked-ami/?(?:\?.*)?$"

# Terraform's own module-block arguments: not inputs of the module, reported in `meta`.
# Terraform sets no limit; this one only keeps a device or a runaway file from being read whole.
MAX_TERRAFORM_FILE_BYTES = 16 * 1024 * 1024
# python-hcl2 (lark) holds ~330 bytes of memory and spends ~20 us per byte it parses (1 MiB:
# 343 MB and 23 s, measured on 2 cores): only files that declare module calls or variables are
# parsed, and at most this much of each. Hand-written roots are a few KiB a file.
MAX_PARSED_HCL_BYTES = 256 * 1024
_DECLARES = re.compile(r'^[ \t]*(?:module|variable)[ \t]*"', re.MULTILINE)
META_ARGUMENTS = frozenset({"version", "providers", "count", "for_each", "depends_on"})

_PRIMITIVE_TYPES = frozenset({"string", "number", "bool"})
_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})
_HCL_OPTIONS = SerializationOptions(
    strip_string_quotes=True,
    with_comments=False,
    preserve_heredocs=True,  # python-hcl2 drops a heredoc's final newline when it converts it
    preserve_scientific_notation=False,
)


@dataclass(frozen=True)
class Unresolved:
    field: str  # module argument name, e.g. "images"
    expression: str  # the expression as python-hcl2 renders it, e.g. "${local.images}"
    reason: str  # e.g. "references local.images", "function call concat()"


@dataclass(frozen=True)
class ModuleCall:
    address: str  # "module.web"
    file: Path
    line: int | None  # line of the `module "web" {` header
    source: str
    arguments: dict[str, Any]  # every resolved module input, as plain Python values
    unresolved: tuple[Unresolved, ...]
    # count, for_each, version, providers, depends_on when present: the value when it
    # resolves, else the expression text.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Variable:
    type: str | None  # the type constraint's text, e.g. "string", "list(string)"


def terraform_roots(directory: Path) -> list[Path]:
    """`directory` and every directory below it holding *.tf files, in path order; never
    Terraform's own .terraform (downloaded modules) or another hidden directory."""
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such Terraform directory")
    found = {directory}
    for path in directory.rglob("*.tf"):
        relative = path.parent.relative_to(directory)
        if not any(part.startswith(".") for part in relative.parts):
            found.add(path.parent)
    return sorted(found)


def discover(
    directory: Path,
    *,
    var_files: Sequence[Path] = (),
    variables: Mapping[str, str] = _NO_VARIABLES,
    source_pattern: str = DEFAULT_SOURCE_PATTERN,
    undeclared_ok: bool = False,
) -> list[ModuleCall]:
    """Every module call in `directory` whose source matches `source_pattern`, by file and line.

    With `undeclared_ok`, a value in `variables` for a variable the root does not declare is
    ignored (one --var given to many roots) instead of refused as Terraform refuses it.
    """
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such Terraform directory")
    configs = [(path, *_load_hcl(path)) for path in sorted(directory.glob("*.tf"))]
    values = _variable_values(directory, configs, var_files, variables, undeclared_ok)
    pattern = re.compile(source_pattern)
    calls = []
    for path, text, config in configs:
        for block in config.get("module", []):
            for name, body in block.items():
                source = body.get("source")
                if isinstance(source, str) and pattern.search(source):
                    line = _line_of(text, rf'module\s+"?{re.escape(name)}"?\s*\{{')
                    calls.append(_module_call(name, body, path, line, source, values))
    return sorted(calls, key=lambda call: (str(call.file), call.line or 0))


def _module_call(
    name: str,
    body: dict[str, Any],
    path: Path,
    line: int | None,
    source: str,
    values: Mapping[str, Any],
) -> ModuleCall:
    arguments: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    unresolved: list[Unresolved] = []
    for key, raw in body.items():
        if key in ("source", "__is_block__"):
            continue
        try:
            value = evaluate(raw, values)
        except Unresolvable as exc:
            if key in META_ARGUMENTS:
                meta[key] = raw
            else:
                unresolved.append(Unresolved(key, _render(raw), exc.reason))
            continue
        (meta if key in META_ARGUMENTS else arguments)[key] = value
    return ModuleCall(f"module.{name}", path, line, source, arguments, tuple(unresolved), meta)


def _variable_values(
    directory: Path,
    configs: list[tuple[Path, str, dict[str, Any]]],
    var_files: Sequence[Path],
    cli_values: Mapping[str, str],
    undeclared_ok: bool = False,
) -> dict[str, Any]:
    """Each declared variable's value, NO_VALUE if none, in Terraform's documented precedence.

    default < TF_VAR_name < terraform.tfvars < terraform.tfvars.json < *.auto.tfvars(.json) in
    lexical order < -var-file < -var; a later source replaces the whole value.
    """
    declared: dict[str, _Variable] = {}
    values: dict[str, Any] = {}
    for path, text, config in configs:
        for block in config.get("variable", []):
            for name, body in block.items():
                declared[name] = _Variable(_type_text(body.get("type")))
                values[name] = NO_VALUE
                if "default" in body:
                    line = _line_of(text, rf'variable\s+"?{re.escape(name)}"?\s*\{{')
                    where = f"{path}:{line}"
                    values[name] = _literal(body["default"], where, name, declared[name])

    for name, variable in declared.items():
        raw = os.environ.get(f"TF_VAR_{name}")
        if raw is not None:
            values[name] = _from_string(raw, f"TF_VAR_{name}", name, variable)

    auto = sorted(
        [*directory.glob("*.auto.tfvars"), *directory.glob("*.auto.tfvars.json")],
        key=lambda path: path.name,
    )
    defaults = [directory / "terraform.tfvars", directory / "terraform.tfvars.json"]
    for path in [*(path for path in defaults if path.is_file()), *auto, *var_files]:
        for name, value in _load_tfvars(path).items():
            if name in declared:  # Terraform only warns about undeclared ones
                values[name] = _literal(value, str(path), name, declared[name])

    for name, raw in cli_values.items():
        if name not in declared:
            if undeclared_ok:
                continue
            raise BadInput(f'--var {name}: no variable "{name}" is declared in {directory}')
        values[name] = _from_string(raw, f"--var {name}", name, declared[name])
    return values


def _from_string(raw: str, where: str, name: str, variable: _Variable) -> Any:
    # Terraform reads -var and TF_VAR_ values as HCL only for variables of a complex type
    # (or `any`); for a primitive or undeclared type the text is the value.
    if variable.type is None or variable.type in _PRIMITIVE_TYPES:
        return _convert(raw, where, name, variable)
    if len(raw) > MAX_PARSED_HCL_BYTES:
        raise BadInput(f"{where}: over {MAX_PARSED_HCL_BYTES // 1024} KiB of HCL to parse")
    try:
        parsed = hcl2.loads(f"value = {raw}\n", serialization_options=_HCL_OPTIONS)["value"]
    except Exception:  # python-hcl2 raises more than LarkError on malformed text
        raise BadInput(f"{where}: cannot parse the value of variable {name} as HCL") from None
    return _literal(parsed, where, name, variable)


def _literal(value: Any, where: str, name: str, variable: _Variable) -> Any:
    try:
        resolved = evaluate(value, {})
    except Unresolvable as exc:
        raise BadInput(
            f"{where}: variable {name}: value must be a literal ({exc.reason})"
        ) from None
    return _convert(resolved, where, name, variable)


def _convert(value: Any, where: str, name: str, variable: _Variable) -> Any:
    """Terraform's conversion of a value to a primitive type constraint."""
    if value is None or variable.type not in _PRIMITIVE_TYPES:
        return value
    if variable.type == "string" and not isinstance(value, (list, dict)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if variable.type == "number" and not isinstance(value, (bool, list, dict)):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
    if variable.type == "bool" and value in ("true", "false", True, False):
        return value in ("true", True)
    raise BadInput(f"{where}: variable {name}: a {variable.type} is required, got {value!r}")


def _type_text(constraint: Any) -> str | None:
    if not isinstance(constraint, str):
        return None
    text = constraint.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    return text


def _load_tfvars(path: Path) -> dict[str, Any]:
    text = _read(path)
    if path.name.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{exc.lineno}: cannot parse JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise BadInput(f"{path}: a variables file must hold a JSON object")
        return data
    return _parse_hcl(path, text)


def _load_hcl(path: Path) -> tuple[str, dict[str, Any]]:
    text = _read(path)
    if not _DECLARES.search(text):
        return text, {}  # resources, outputs, providers: nothing discovery reads
    return text, _parse_hcl(path, text)


def _parse_hcl(path: Path, text: str) -> dict[str, Any]:
    size = len(text.encode())
    if size > MAX_PARSED_HCL_BYTES:
        raise BadInput(
            f"{path}: {size // 1024} KiB of HCL declaring modules or variables; tfbake parses "
            f"at most {MAX_PARSED_HCL_BYTES // 1024} KiB a file (move generated configuration "
            "to files of its own)"
        )
    try:
        return hcl2.loads(text, serialization_options=_HCL_OPTIONS)
    except LarkError as exc:
        line = getattr(exc, "line", None)
        where = f"{path}:{line}" if isinstance(line, int) and line > 0 else str(path)
        raise BadInput(f"{where}: cannot parse HCL: {_parse_problem(exc)}") from None
    except Exception as exc:  # python-hcl2 also raises plain errors for malformed input
        raise BadInput(f"{path}: cannot parse HCL: {exc}") from None


def _parse_problem(exc: LarkError) -> str:
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        return "unexpected end of file"
    if isinstance(exc, UnexpectedToken):
        snippet = str(exc.token.value).strip().split("\n")[0][:30]
        return f"unexpected token {snippet!r}" if snippet else "unexpected token"
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}"
    return str(exc).split("\n")[0]


def _read(path: Path) -> str:
    try:
        return read_text_file(path, MAX_TERRAFORM_FILE_BYTES)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BadInput(f"{path}: {exc}") from None


def _line_of(text: str, header: str) -> int | None:
    match = re.search(rf"^[ \t]*{header}", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _render(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw)
