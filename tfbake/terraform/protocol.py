"""The Terraform `external` data source protocol, versions 1 and 2.

Terraform writes the query to stdin as one JSON object of strings (the module jsonencodes lists
and maps) and accepts on stdout only a flat JSON object of strings. Any failure is one line on
stderr and a non-zero exit, with nothing on stdout; that part lives in the CLI command.

Version 2 (modules/baked-ami from 0.2.0): the data source only reads, at plan and at apply
alike; the bake is the apply of the module's `terraform_data` resource (`tfbake bake-planned`,
which takes the same query). The module states its version and the tfbake releases it works with
(terraform/compatibility.py). A query that names `planned_fingerprint` asks for the AMI of a
plan already made: its inputs are the pinned ones the plan showed, and they must still make that
fingerprint. Version 1 (modules/baked-ami 0.1) keeps working as it did: the data source bakes
when `on_missing` (or TFBAKE_ON_MISSING) says so.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from tfbake import __version__
from tfbake.model import tags
from tfbake.model.errors import BadInput
from tfbake.model.fingerprint import SCHEME
from tfbake.model.image_set import ImageSet
from tfbake.model.plan import ON_MISSING_BAKE, ON_MISSING_CHOICES, Result
from tfbake.spec.mapping import FIELDS, image_set_from_mapping
from tfbake.spec.untrusted import MAX_INPUT_BYTES, decode_bounded, loads_json
from tfbake.terraform.compatibility import require_compatible

LEGACY_PROTOCOL = "1"  # the data source bakes (modules/baked-ami 0.1)
PROTOCOL_VERSION = "2"  # the data source reads; the apply bakes
PROTOCOLS = (LEGACY_PROTOCOL, PROTOCOL_VERSION)
ON_MISSING_ENV = "TFBAKE_ON_MISSING"
# Where on_missing comes from under a protocol 1 module, and the way out of a refusal it caused.
ON_MISSING_HINT = (
    f"(on_missing comes from {ON_MISSING_ENV} or the module): run "
    f"`{ON_MISSING_ENV}=bake terraform apply` or `tfbake ensure` to make it"
)
# Query keys that are not image-set fields, per protocol.
CONTROL_KEYS = {
    LEGACY_PROTOCOL: ("protocol", "region", "profile", "on_missing"),
    PROTOCOL_VERSION: (
        "protocol", "region", "profile", "module_version", "tfbake_versions",
        "planned_fingerprint", "planned_ami",
    ),
}  # fmt: skip
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
    protocol: str
    on_missing: str  # protocol 1: what the data source does when the AMI is missing
    planned_fingerprint: str | None = None  # protocol 2: the fingerprint the plan showed
    planned_ami: str | None = None  # protocol 2: the AMI the plan found, if it found one

    @property
    def bakes_in_data_source(self) -> bool:
        return self.protocol == LEGACY_PROTOCOL


def parse_query(stdin_text: str, environ: Mapping[str, str]) -> Query:
    raw = _decode_object(stdin_text)
    protocol = raw.get("protocol")
    if protocol not in PROTOCOLS:
        raise BadInput(
            f"{SOURCE}: protocol {protocol!r} is not supported; this tfbake speaks protocols "
            f"{' and '.join(repr(p) for p in PROTOCOLS)} (upgrade the module or tfbake)"
        )
    if protocol == PROTOCOL_VERSION:
        # Before any other key: a key this tfbake does not know may be one a newer module added.
        require_compatible(raw.get("module_version"), raw.get("tfbake_versions"), SOURCE)
    _check_keys(raw, FIELDS + CONTROL_KEYS[protocol])
    # The module sends "" for a value not given, and a JSON field given as null arrives as
    # jsonencode(null), "null". A plain string field keeps "null": it is what the user wrote.
    values = {key: value for key, value in raw.items() if value != ""}
    decoded = {key: _decode_field(key, value) for key, value in values.items() if key in FIELDS}
    fields = {key: value for key, value in decoded.items() if value is not None}
    return Query(
        image_set=image_set_from_mapping(fields, SOURCE),
        region=values.get("region"),
        profile=values.get("profile"),
        protocol=protocol,
        on_missing=_on_missing(values.get("on_missing"), environ),
        planned_fingerprint=values.get("planned_fingerprint"),
        planned_ami=values.get("planned_ami"),
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


def _check_keys(raw: Mapping[str, str], known: tuple[str, ...]) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
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
        "bake_trigger": bake_trigger(result),
        "tfbake_version": __version__,
    }


def bake_trigger(result: Result) -> str:
    """What the module's bake resource is replaced on: the fingerprint, and how many of its AMIs
    were revoked. A moved tag changes the first; `tfbake invalidate` the second, so the plan
    after it shows the rebake. Neither changes when the bake it planned succeeds, so the plan
    after that is clean."""
    revoked = sum(1 for ami in result.unusable if ami.status == tags.STATUS_REVOKED)
    fingerprint = result.plan.fingerprint.value
    return f"{fingerprint}+{revoked}" if revoked else fingerprint
