"""A stand-in for the `hashicorp/external` Terraform provider, for machines that cannot download it.

It serves the one data source `external` over plugin protocol 6 (PyPI package `tf`) and keeps
the real provider's contract (terraform-provider-external 2.3, internal/provider/data_source.go):
the same schema; empty and null `program` elements dropped; the program run directly, without a
shell, with Terraform's environment and an optional `working_dir`; `query` written to stdin as
one JSON object with null values dropped; stdout accepted only as a JSON object of strings; the
same error titles and details. One difference: a program that is not found fails with "External
Program Lookup Failed" instead of being retried through `$SHELL -i -c`, a legacy fallback that
tfbake's module never relies on.

Run as a script (Terraform starts it through the wrapper that `install` writes); it imports
nothing from this repository, only `tf`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

from tf import iface, schema, types
from tf.iface import Config, DataSource, ReadDataContext, State
from tf.utils import Diagnostics

PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/external"

EXECUTION_FAILED = "External Program Execution Failed"
UNEXPECTED_RESULTS = "Unexpected External Program Results"
PROGRAM_MISSING = "External Program Missing"
LOOKUP_FAILED = "External Program Lookup Failed"
_EXECUTE_PREAMBLE = (
    "The data source received an unexpected error while attempting to execute the program."
)
_RESULTS_PREAMBLE = (
    "The data source received unexpected results after executing the program.\n\n"
    "Program output must be a JSON encoded map of string keys and string values.\n\n"
    "If the error is unclear, the output can be viewed by enabling Terraform's logging at "
    "TRACE level. Terraform documentation on logging: "
    "https://www.terraform.io/internals/debugging\n"
)


class ExternalDataSource(DataSource):
    def __init__(self, provider: ExternalProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return "external"

    @classmethod
    def get_schema(cls) -> schema.Schema:
        return schema.Schema(
            attributes=[
                schema.Attribute("program", types.List(types.String()), required=True),
                schema.Attribute("working_dir", types.String(), optional=True),
                schema.Attribute("query", types.Map(types.String()), optional=True),
                schema.Attribute("result", types.Map(types.String()), computed=True),
                schema.Attribute("id", types.String(), computed=True),
            ]
        )

    def validate(self, diags: Diagnostics, type_name: str, config: Config) -> None:
        super().validate(diags, type_name, config)
        program = config.get("program")
        # The real schema's SizeAtLeast(1) validator; unknown lists are checked at read time.
        if isinstance(program, list) and not program:
            diags.add_error(
                "Invalid Attribute Value",
                "Attribute program list must contain at least 1 elements, got: 0",
                path=["program"],
            )

    def read(self, ctx: ReadDataContext, config: Config) -> State | None:
        diags = ctx.diagnostics
        program = [arg for arg in config.get("program") or [] if arg]
        if not program:
            diags.add_error(
                PROGRAM_MISSING,
                "The data source was configured without a program to execute. Verify the "
                "configuration contains at least one non-empty value.",
                path=["program"],
            )
            return None
        query = {k: v for k, v in (config.get("query") or {}).items() if v is not None}
        executable = shutil.which(program[0])
        if executable is None:
            diags.add_error(
                LOOKUP_FAILED,
                "The data source received an unexpected error while attempting to find the "
                f"program.\n\nProgram: {program[0]}\nError: executable file not found in $PATH",
                path=["program"],
            )
            return None
        try:
            completed = subprocess.run(
                [executable, *program[1:]],
                input=_go_json(query).encode(),
                capture_output=True,
                cwd=config.get("working_dir") or None,
                check=False,
            )
        except OSError as err:
            diags.add_error(
                EXECUTION_FAILED,
                f"{_EXECUTE_PREAMBLE}\n\nProgram: {executable}\nState: {err}",
                path=["program"],
            )
            return None
        if completed.returncode != 0:
            diags.add_error(EXECUTION_FAILED, _failure_detail(executable, completed), ["program"])
            return None
        result, problem = _string_map(completed.stdout)
        if result is None:
            diags.add_error(
                UNEXPECTED_RESULTS,
                f"{_RESULTS_PREAMBLE}\nProgram: {executable}\nResult Error: {problem}",
                path=["program"],
            )
            return None
        return {
            "program": config.get("program"),
            "working_dir": config.get("working_dir"),
            "query": config.get("query"),
            "result": result,
            "id": "-",
        }


def _go_json(query: dict[str, str]) -> str:
    """The query as Go's json.Marshal writes a map: sorted keys, UTF-8, <>& escaped."""
    text = json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _failure_detail(executable: str, completed: subprocess.CompletedProcess[bytes]) -> str:
    code = completed.returncode
    state = f"signal: {-code}" if code < 0 else f"exit status {code}"
    stderr = completed.stderr.decode("utf-8", "replace")
    if stderr:
        return (
            f"{_EXECUTE_PREAMBLE}\n\nProgram: {executable}\nError Message: {stderr}\nState: {state}"
        )
    return (
        f"{_EXECUTE_PREAMBLE}\n\nThe program was executed, however it returned no additional "
        f"error messaging.\n\nProgram: {executable}\nState: {state}"
    )


def _string_map(stdout: bytes) -> tuple[dict[str, str] | None, str]:
    """Decode stdout as Go decodes it into map[string]string, or say why that fails."""
    try:
        data: Any = json.loads(stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, str(err)
    if data is None:  # Go leaves the map empty for a JSON null.
        return {}, ""
    if not isinstance(data, dict):
        return None, f"json: cannot unmarshal {type(data).__name__} into map[string]string"
    result = {}
    for key, value in data.items():
        if value is None:  # Go stores the zero value for a null element.
            value = ""
        if not isinstance(value, str):
            return None, f"json: cannot unmarshal {_json_kind(value)} into string value"
        result[key] = value
    return result, ""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "array" if isinstance(value, list) else "object"


class ExternalProvider(iface.Provider):
    def get_model_prefix(self) -> str:
        return ""

    def full_name(self) -> str:
        return PROVIDER_ADDRESS

    def get_provider_schema(self, diags: Diagnostics) -> schema.Schema:
        return schema.Schema()

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        pass

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        pass

    def get_data_sources(self) -> list[type[DataSource]]:
        return [ExternalDataSource]

    def get_resources(self) -> list[type[iface.Resource]]:
        return []


def main() -> None:
    from tf.runner import run_provider

    run_provider(ExternalProvider(), sys.argv)


if __name__ == "__main__":
    main()
