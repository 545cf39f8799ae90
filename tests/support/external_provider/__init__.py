"""Install the stand-in `hashicorp/external` provider (provider.py) into a filesystem mirror."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

PROVIDER_SCRIPT = Path(__file__).resolve().parent / "provider.py"
# Any version satisfying the modules' ">= 2.3"; named after the real release it imitates.
VERSION = "2.3.5"
PLATFORM = "linux_amd64"


def install(mirror: Path, version: str = VERSION) -> Path:
    """Write the provider's executable into `mirror` (unpacked layout) and return its path.

    The executable is a shell wrapper that runs provider.py with this interpreter, so the
    provider finds the `tf` package that this Python has installed.
    """
    directory = mirror / "registry.terraform.io/hashicorp/external" / version / PLATFORM
    directory.mkdir(parents=True, exist_ok=True)
    executable = directory / f"terraform-provider-external_v{version}"
    command = shlex.join([sys.executable, str(PROVIDER_SCRIPT)])
    executable.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    executable.chmod(0o755)
    return executable


def missing_dependency() -> str | None:
    """Why the stand-in cannot run with this interpreter, or None when it can."""
    try:
        import tf.runner  # noqa: F401
    except ImportError as err:
        return f"the stand-in external provider needs {err.name}: pip install tf 'protobuf<6'"
    return None
