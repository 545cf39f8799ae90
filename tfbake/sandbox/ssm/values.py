"""A parameter value as SSM hands it to a document: text, whatever type it was given as."""

from __future__ import annotations

import json
from typing import Any


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
