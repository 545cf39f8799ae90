"""What modules/baked-ami sends tfbake: every image-set field, and every fingerprint input in the
plan-time lookup's query, read from the module's own source."""

from __future__ import annotations

from typing import Any

import hcl2

from tests.support.terraform import REPO_ROOT
from tfbake.model.fingerprint import INPUT_FIELDS
from tfbake.spec.mapping import FIELDS
from tfbake.terraform.protocol import CONTROL_KEYS, PROTOCOL_VERSION


def _module_locals() -> dict[str, Any]:
    with (REPO_ROOT / "modules/baked-ami/main.tf").open() as source:
        blocks = hcl2.load(source)["locals"]
    return {key: value for block in blocks for key, value in block.items()}


def test_the_lookup_carries_every_fingerprint_input() -> None:
    # An input missing here would be left out of the plan's fingerprint: a change to it would
    # never plan a bake.
    assert set(INPUT_FIELDS) <= set(_module_locals()["query"])


def test_the_module_sends_every_field_and_nothing_tfbake_does_not_know() -> None:
    local = _module_locals()
    sent = set(local["query"]) | set(local["bake_settings"])
    assert set(FIELDS) <= sent
    assert sent <= set(FIELDS) | set(CONTROL_KEYS[PROTOCOL_VERSION])
