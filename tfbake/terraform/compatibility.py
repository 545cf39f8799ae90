"""Which releases of modules/baked-ami this tfbake serves, and the one line when it cannot.

From protocol 2 on, the module states its own version (`module_version`) and the tfbake releases
it works with (`tfbake_versions`, such as ">= 0.2.0, < 0.3.0"). tfbake checks that before it reads
any other key of the query, so a key that a later module added is a version mismatch that says
what to install, never an "unknown key".

The comparison is written out here rather than taken from `packaging`: importing that costs about
15 ms, and this check runs in every `terraform plan` (benchmarks/bench_noop.py). The module
writes the range, so the grammar is ours and small: comma-separated `>=`, `>`, `<=`, `<`, `==`
clauses over X.Y.Z release numbers.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

from tfbake import __version__
from tfbake.model.errors import BadInput

# How a pipeline runner gets tfbake: the README's "Install" section says the same.
INSTALL = "pipx install 'tfbake{wanted}' (or pip install a wheel of it; see the README's Install)"

_CLAUSE = re.compile(r"\s*(>=|<=|==|>|<)\s*([0-9]+)\.([0-9]+)\.([0-9]+)\s*")
_COMPARISONS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


def release(version: str) -> tuple[int, ...]:
    """X.Y.Z of a version string; anything after the release number (a local or dev part of a
    build from a checkout) does not change which range it is in."""
    match = re.match(r"([0-9]+)\.([0-9]+)\.([0-9]+)", version)
    if match is None:
        raise ValueError(f"{version!r} is not an X.Y.Z version")
    return tuple(int(part) for part in match.groups())


def satisfies(version: str, versions: str) -> bool:
    """Does `version` fall in the range `versions` (">= 0.2.0, < 0.3.0")?"""
    mine = release(version)
    clauses = [clause for clause in versions.split(",") if clause.strip()]
    if not clauses:
        raise ValueError("the range is empty")
    for clause in clauses:
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise ValueError(f"{clause.strip()!r} is not a comparison with an X.Y.Z version")
        bound = tuple(int(part) for part in match.groups()[1:])
        if not _COMPARISONS[match.group(1)](mine, bound):
            return False
    return True


def require_compatible(module_version: str | None, versions: str | None, source: str) -> None:
    """Refuse, in one line naming both versions and the install command, a module this tfbake
    is too old or too new for."""
    if not module_version or not versions:
        raise BadInput(
            f"{source}: protocol 2 needs module_version and tfbake_versions "
            "(modules/baked-ami sends both)"
        )
    try:
        fits = satisfies(__version__, versions)
    except ValueError as err:
        raise BadInput(f"{source}: tfbake_versions {versions!r}: {err}") from None
    if not fits:
        wanted = "".join(versions.split())
        raise BadInput(
            f"modules/baked-ami {module_version} works with tfbake {versions}, and this is "
            f"tfbake {__version__}: install a matching one: {INSTALL.format(wanted=wanted)}"
        )
