"""The Terraform `external` data source protocol, version 1.

Terraform writes the query to stdin as one JSON object of strings (the module jsonencodes lists
and maps) and accepts on stdout only a flat JSON object of strings. Any failure is one line on
stderr and a non-zero exit, with nothing on stdout; that part lives in the CLI command.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from tfbake.model.errors import BadInput
from tfbake.model.fingerprint import SCHEME
from tfbake.model.image_set import ImageSet
from tfbake.model.plan import ON_MISSING_BAKE, ON_MISSING_CHOICES, Result
from tfbake.spec.mapping import FIELDS, image_set_from_mapping
from tfbake.spec.untrusted import MAX_INPUT_BYTES, decode_bounded, loads_json

PROTOCOL_VERSION = "1"
ON_MISSING_ENV = "TFBAKE_ON_MISSING"
# Where on_missing comes from under Terraform, and the way out of a refusal it caused.
ON_MISSING_HINT = (
    f"(on_missing comes from {ON_MISSING_ENV} or the module): run "
    f"`{ON_MISSING_ENV}=bake terraform apply` or `tfbake ensure` to make it"
)
# Query keys that are not image-set fields.
CONTROL_KEYS = ("protocol", "region", "profile", "on_missing")
QUERY_KEYS = FIELDS + CONTROL_KEYS
# Fields whose value arrives JSON-encoded; base_ami only when it is an {owners, name} object.
JSON_FIELDS = frozenset(
    {"images", "volume", "provision", "tags", "builder", "ami_owners", "insecure_registries"}
    | {"ansible"}
    | {"regions", "region_kms_keys", "share", "fast_snapshot_restore"}
)
SOURCE = "terraform query"
# How a region reaches tfbake under Terraform, for the error when none does.
REGION_HINT = "give the query a region (modules/baked-ami passes the provider's)"


@dataclass(frozen=True)
class Query:
    image_set: ImageSet
    region: str | None
    profile: str | None
    on_missing: str


def parse_query(stdin_text: str, environ: Mapping[str, str]) -> Query:
    raw = _decode_object(stdin_text)
    _check_keys(raw)
    if raw.get("protocol") != PROTOCOL_VERSION:
        raise BadInput(
            f"{SOURCE}: protocol {raw.get('protocol')!r} is not supported; "
            f"this tfbake speaks protocol {PROTOCOL_VERSION!r} (upgrade the module or tfbake)"
        )
    # The module sends "" for a value not given, and a JSON field given as null arrives as
    # jsonencode(null), "null". A plain string field keeps "null": it is what the user wrote.
    values = {key: value for key, value in raw.items() if value != ""}
    decoded = {key: _decode_field(key, value) for key, value in values.items() if key in FIELDS}
    fields = {key: value for key, value in decoded.items() if value is not None}
    return Query(
        image_set=image_set_from_mapping(fields, SOURCE),
        region=values.get("region"),
        profile=values.get("profile"),
        on_missing=_on_missing(values.get("on_missing"), environ),
    )


def _decode_object(text: str) -> dict[str, str]:
    if not text.strip():
        raise BadInput(f"{SOURCE}: stdin is empty; expected one JSON object of strings")
    try:
        data = loads_json(text)
    except json.JSONDecodeError as err:
        raise BadInput(
            f"{SOURCE}: stdin is not valid JSON: {err.msg} (line {err.lineno} column {err.colno})"
        ) from None
    except ValueError as err:
        raise BadInput(f"{SOURCE}: stdin: {err}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{SOURCE}: expected one JSON object, got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise BadInput(
                f"{SOURCE}: value of {key!r} must be a string, got {json.dumps(value)[:60]} "
                "(the external data source passes strings; jsonencode lists and maps)"
            )
    return data


def _check_keys(raw: Mapping[str, str]) -> None:
    for key in raw:
        if key not in QUERY_KEYS:
            close = difflib.get_close_matches(key, QUERY_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BadInput(f"{SOURCE}: unknown key {key!r}{hint}")


def _decode_field(key: str, value: str) -> Any:
    if key not in JSON_FIELDS and not (key == "base_ami" and value.lstrip().startswith("{")):
        return value
    try:
        return loads_json(value)
    except json.JSONDecodeError as err:
        raise BadInput(
            f"{SOURCE}: {key} is not valid JSON ({err.msg}); pass it with jsonencode(...)"
        ) from None
    except ValueError as err:
        raise BadInput(f"{SOURCE}: {key}: {err}") from None


def _on_missing(value: str | None, environ: Mapping[str, str]) -> str:
    # The environment wins so a pipeline can run `terraform plan` that never bakes.
    chosen, origin = (environ.get(ON_MISSING_ENV), ON_MISSING_ENV)
    if not chosen:
        chosen, origin = (value or ON_MISSING_BAKE, "on_missing")
    if chosen not in ON_MISSING_CHOICES:
        raise BadInput(
            f"{SOURCE}: {origin} {chosen!r} must be one of {', '.join(ON_MISSING_CHOICES)}"
        )
    return chosen


def read_query_text(stream: BinaryIO) -> str:
    """The query from stdin: bytes, and no more than the limit. A text read would fail on bad
    UTF-8 with a traceback, and an unbounded one would take whatever is piped in."""
    try:
        return decode_bounded(stream.read(MAX_INPUT_BYTES + 1))
    except ValueError as err:
        raise BadInput(f"{SOURCE}: stdin: {err}") from None


def reply(result: Result) -> dict[str, str]:
    """The flat string map Terraform's external data source requires."""
    plan = result.plan
    return {
        "ami_id": result.ami_id or "",
        "ami_ids": json.dumps(result.ami_ids, separators=(",", ":"), sort_keys=True),
        "ami_name": result.ami.ami_name if result.ami else "",
        "fingerprint": plan.fingerprint.value,
        "scheme": SCHEME,
        "status": result.status,
        "name": plan.image_set.name,
        "region": result.region,
        "base_ami": plan.base_ami_id,
        "architecture": plan.architecture,
        "images": json.dumps(plan.pinned_images, separators=(",", ":")),
    }
