"""Spec files and queries for tests: pinned references, so no registry is needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

NGINX = "nginx:1.27@sha256:" + "a" * 64
REDIS = "redis:7@sha256:" + "b" * 64
BASE_AMI = "ami-0123456789abcdef0"
# Without an instance profile a builder never registers with SSM, so tfbake refuses the bake;
# the sandbox fixture creates this one in each fresh account.
BUILDER_PROFILE = "tfbake-builder"
BUILDER = {"instance_profile": BUILDER_PROFILE}


def spec_data(**changes: Any) -> dict[str, Any]:
    data = {
        "name": "web",
        "images": [NGINX, REDIS],
        "base_ami": BASE_AMI,
        "architecture": "x86_64",
        "builder": BUILDER,
        **changes,
    }
    return {key: value for key, value in data.items() if value is not None}


def write_spec(directory: Path, **changes: Any) -> Path:
    path = directory / "web.json"
    path.write_text(json.dumps(spec_data(**changes)))
    return path


def query(**changes: Any) -> dict[str, str]:
    """A Terraform external query: every value a string, lists and maps JSON-encoded."""
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in {"protocol": "1", **spec_data(**changes)}.items()
    }


def module_versions() -> dict[str, str]:
    """The version keys modules/baked-ami sends, read from the module itself."""
    main_tf = (Path(__file__).resolve().parents[2] / "modules/baked-ami/main.tf").read_text()
    return {
        key: re.search(rf'^\s*{key}\s*=\s*"([^"]*)"', main_tf, re.MULTILINE).group(1)  # type: ignore[union-attr]
        for key in ("module_version", "tfbake_versions")
    }


def planned_query(**changes: Any) -> dict[str, str]:
    """A protocol 2 query, as modules/baked-ami sends it (the plan's lookup)."""
    return {**query(**changes), "protocol": "2", **module_versions()}
