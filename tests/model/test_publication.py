"""What an image account publishes in an AMI's description, read back as a workload account
reads it."""

from __future__ import annotations

import fnmatch

import pytest

from tfbake.model import tags
from tfbake.model.fingerprint import SCHEME
from tfbake.model.publication import (
    description_filter,
    published_description,
    published_fingerprint,
    published_status,
    revoked_description,
)

FP = "ab" * 32


@pytest.mark.parametrize(
    ("description", "status"),
    [
        (published_description(FP), tags.STATUS_READY),
        (revoked_description(FP), tags.STATUS_REVOKED),
        (f"tfbake image set web, fingerprint {SCHEME} {FP}", ""),
        (f"tfbake ready tfbake.fingerprint/0 {FP}", ""),
        ("", ""),
    ],
    ids=["ready", "revoked", "as-baked", "other-scheme", "empty"],
)
def test_the_status_a_description_publishes(description: str, status: str) -> None:
    assert published_status(description) == status


def test_the_full_fingerprint_is_read_back() -> None:
    assert published_fingerprint(published_description(FP)) == FP
    assert published_fingerprint("web image") == ""


@pytest.mark.parametrize(
    "description",
    [
        published_description(FP),
        revoked_description(FP),
        f"tfbake image set web, fingerprint {SCHEME} {FP}",
    ],
)
def test_the_filter_matches_every_description_tfbake_gives_the_fingerprint(
    description: str,
) -> None:
    # EC2's filter wildcards are `*` and `?`, as fnmatch reads them.
    assert fnmatch.fnmatchcase(description, description_filter(FP))


def test_the_filter_matches_no_other_fingerprint() -> None:
    assert not fnmatch.fnmatchcase(published_description(FP + "0"), description_filter(FP))
    assert not fnmatch.fnmatchcase(published_description("cd" * 32), description_filter(FP))
