"""Digest resolution against a real registry on loopback, one test per behaviour."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import (
    OCI_MANIFEST,
    PASSWORD,
    USERNAME,
    RegistryServer,
    free_port,
    push_image,
    push_index,
)
from tfbake.aws.calls import AwsContext
from tfbake.model.errors import RegistryError
from tfbake.model.reference import ImageReference, parse_reference
from tfbake.resolve.credentials import CredentialStore
from tfbake.resolve.registry import RegistryOptions, resolve_images
from tfbake.sandbox import Sandbox


def options(tmp_path: Path, config: dict[str, Any] | None = None, **kwargs: Any) -> RegistryOptions:
    """Options reading a Docker config of the test's own, never the user's."""
    path = tmp_path / "docker-config.json"
    if config is not None:
        path.write_text(json.dumps(config))
    return RegistryOptions(docker_config=path, **kwargs)


def login(server: RegistryServer, password: str = PASSWORD) -> dict[str, Any]:
    auth = base64.b64encode(f"{USERNAME}:{password}".encode()).decode()
    return {"auths": {server.host: {"auth": auth}}}


def ref(host: str, name: str) -> ImageReference:
    return parse_reference(f"{host}/{name}")


def resolve_one(reference: ImageReference, opts: RegistryOptions, arch: str = "x86_64") -> str:
    [resolved] = resolve_images([reference], arch, opts)
    assert resolved.reference == reference
    return resolved.digest


def test_tag_resolves_to_sha256_of_the_pushed_manifest(
    registry: RegistryServer, tmp_path: Path
) -> None:
    pushed = push_image(registry, "team/app", "1.0")
    assert resolve_one(ref(registry.host, "team/app:1.0"), options(tmp_path)) == pushed


def test_oci_manifest_resolves(registry: RegistryServer, tmp_path: Path) -> None:
    pushed = push_image(registry, "team/oci", "v1", media_type=OCI_MANIFEST)
    assert resolve_one(ref(registry.host, "team/oci:v1"), options(tmp_path)) == pushed


@pytest.mark.parametrize(("architecture", "platform"), [("x86_64", "amd64"), ("arm64", "arm64")])
def test_index_pins_the_platform_manifest(
    registry: RegistryServer, tmp_path: Path, architecture: str, platform: str
) -> None:
    pushed = push_index(registry, "team/multi", "latest", {"amd64": "a1", "arm64": "b1"})
    digest = resolve_one(ref(registry.host, "team/multi"), options(tmp_path), architecture)
    assert digest == pushed.manifests[platform]
    assert digest != pushed.digest


def test_repushing_only_arm64_keeps_the_x86_64_pin(
    registry: RegistryServer, tmp_path: Path
) -> None:
    image = ref(registry.host, "team/multi:2")
    first = push_index(registry, "team/multi", "2", {"amd64": "same", "arm64": "old"})
    before = resolve_images([image], "x86_64", options(tmp_path))
    second = push_index(registry, "team/multi", "2", {"amd64": "same", "arm64": "new"})
    assert second.digest != first.digest
    assert resolve_images([image], "x86_64", options(tmp_path)) == before
    assert resolve_one(image, options(tmp_path), "arm64") == second.manifests["arm64"]


def test_index_without_the_platform_names_the_ones_it_has(
    registry: RegistryServer, tmp_path: Path
) -> None:
    push_index(registry, "team/amd-only", "1", {"amd64": "a"})
    with pytest.raises(RegistryError, match=r"team/amd-only:1: no linux/arm64 .*linux/amd64"):
        resolve_one(ref(registry.host, "team/amd-only:1"), options(tmp_path), "arm64")


def test_pinned_reference_makes_no_request(
    registry: RegistryServer, proxy_to: Any, tmp_path: Path
) -> None:
    push_image(registry, "team/app", "1.0")
    proxy = proxy_to(registry.host)
    pinned = ref(proxy.host, "team/pinned@sha256:" + "ab" * 32)
    tagged = ref(proxy.host, "team/app:1.0")
    resolved = resolve_images([pinned, tagged], "x86_64", options(tmp_path))
    assert resolved[0].digest == pinned.digest
    assert [path for _, path in proxy.requests] == ["/v2/team/app/manifests/1.0"]


def test_tag_not_found(registry: RegistryServer, tmp_path: Path) -> None:
    push_image(registry, "team/app", "1.0")
    with pytest.raises(RegistryError, match=r"team/app:2.0: tag '2.0' not found"):
        resolve_one(ref(registry.host, "team/app:2.0"), options(tmp_path))


def test_repository_not_found(registry: RegistryServer, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"team/ghost:1: repository team/ghost not found"):
        resolve_one(ref(registry.host, "team/ghost:1"), options(tmp_path))


def test_several_failures_report_the_first_count_them_and_keep_each(
    registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(registry, "team/app", "1.0")
    images = [ref(registry.host, name) for name in ("team/app:1.0", "team/a:1", "team/b:1")]
    with pytest.raises(
        RegistryError, match=r"team/a:1: .*\(2 of 3 images failed; -v lists each\)$"
    ) as raised:
        resolve_images(images, "x86_64", options(tmp_path))
    assert [line.split(": ", 1)[0] for line in raised.value.lines] == [
        f"cannot resolve {registry.host}/team/a:1",
        f"cannot resolve {registry.host}/team/b:1",
    ]


def test_one_failure_still_gives_the_count(registry: RegistryServer, tmp_path: Path) -> None:
    push_image(registry, "team/app", "1.0")
    images = [ref(registry.host, name) for name in ("team/app:1.0", "team/a:1")]
    with pytest.raises(RegistryError, match=r"team/a:1: .*\(1 of 2 images failed\)$"):
        resolve_images(images, "x86_64", options(tmp_path))


def test_unreachable_registry_names_the_host(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=rf"registry {host} unreachable: connection refused"):
        resolve_one(ref(host, "team/app:1"), options(tmp_path))


def test_basic_auth_with_config_file_credentials(
    basic_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    pushed = push_image(basic_auth_registry, "team/app", "1.0")
    opts = options(tmp_path, login(basic_auth_registry))
    assert resolve_one(ref(basic_auth_registry.host, "team/app:1.0"), opts) == pushed


def test_basic_auth_denied_hints_docker_login(
    basic_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(basic_auth_registry, "team/app", "1.0")
    opts = options(tmp_path, login(basic_auth_registry, password="wrong-password"))
    with pytest.raises(RegistryError) as raised:
        resolve_one(ref(basic_auth_registry.host, "team/app:1.0"), opts)
    message = str(raised.value)
    assert "access denied" in message
    assert f"docker login {basic_auth_registry.host}" in message
    assert "wrong-password" not in message


def test_bearer_anonymous_pull_of_a_public_repository(
    token_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    pushed = push_image(token_auth_registry, "public/app", "1")
    assert resolve_one(ref(token_auth_registry.host, "public/app:1"), options(tmp_path)) == pushed
    assert token_auth_registry.token_server is not None
    assert token_auth_registry.token_server.requests == [""]


def test_bearer_with_credentials_fetches_one_token_per_scope(
    token_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    pushed = [push_image(token_auth_registry, "team/private", tag, content=tag) for tag in "ab"]
    images = [ref(token_auth_registry.host, f"team/private:{tag}") for tag in "ab"]
    resolved = resolve_images(images, "x86_64", options(tmp_path, login(token_auth_registry)))
    assert [r.digest for r in resolved] == pushed
    assert token_auth_registry.token_server is not None
    # Anonymous first (is it public?), then one token with the credentials for the scope.
    assert token_auth_registry.token_server.requests == ["", USERNAME]
    assert [r.needs_credentials for r in resolved] == [True, True]


@pytest.mark.parametrize(
    ("server", "repository", "needed"),
    [("token_auth_registry", "public/app", False), ("basic_auth_registry", "team/app", True)],
    ids=["public-while-logged-in", "basic-auth"],
)
def test_an_image_needs_credentials_only_when_anonymous_pull_is_refused(
    request: pytest.FixtureRequest, tmp_path: Path, server: str, repository: str, needed: bool
) -> None:
    registry = request.getfixturevalue(server)
    push_image(registry, repository, "1")
    opts = options(tmp_path, login(registry))
    [resolved] = resolve_images([ref(registry.host, f"{repository}:1")], "x86_64", opts)
    assert resolved.needs_credentials is needed


def test_access_denied_names_the_docker_config_in_use(
    basic_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(basic_auth_registry, "team/app", "1.0")
    opts = options(tmp_path, {})
    with pytest.raises(RegistryError, match=re.escape(str(tmp_path / "docker-config.json"))):
        resolve_one(ref(basic_auth_registry.host, "team/app:1.0"), opts)


def test_bearer_denied_without_credentials(
    token_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(token_auth_registry, "team/private", "1")
    with pytest.raises(RegistryError, match=r"team/private:1: access denied.*docker login"):
        resolve_one(ref(token_auth_registry.host, "team/private:1"), options(tmp_path))


def test_bearer_wrong_password_is_denied(
    token_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(token_auth_registry, "team/private", "1")
    opts = options(tmp_path, login(token_auth_registry, password="nope"))
    with pytest.raises(RegistryError, match=r"access denied.*token service .* refused"):
        resolve_one(ref(token_auth_registry.host, "team/private:1"), opts)


def test_creds_store_helper_supplies_credentials(
    basic_auth_registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    reply = {"ServerURL": basic_auth_registry.host, "Username": USERNAME, "Secret": PASSWORD}
    helper.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"if sys.argv[1:] == ['get'] and sys.stdin.read().strip() == {basic_auth_registry.host!r}:"
        f"\n    print({json.dumps(reply)!r})\n"
        "else:\n    print('credentials not found in native keychain')\n    sys.exit(1)\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    pushed = push_image(basic_auth_registry, "team/app", "1.0")
    opts = options(tmp_path, {"auths": {basic_auth_registry.host: {}}, "credsStore": "test"})
    assert resolve_one(ref(basic_auth_registry.host, "team/app:1.0"), opts) == pushed


def test_plain_http_to_a_non_loopback_host_is_refused(
    registry: RegistryServer, proxy_to: Any, tmp_path: Path
) -> None:
    # The challenge sends the token request to a plain-HTTP realm on another host; the
    # refusal happens before any connection, so the name need not exist.
    challenge = 'Bearer realm="http://registry.example.com/token",service="x"'
    proxy = proxy_to(registry.host, injected=[(401, {"WWW-Authenticate": challenge})])
    with pytest.raises(
        RegistryError, match=r"refusing plain HTTP .*registry.example.com.*insecure"
    ):
        resolve_one(ref(proxy.host, "team/app:1"), options(tmp_path))


def test_429_is_retried_after_the_retry_after_delay(
    registry: RegistryServer, proxy_to: Any, tmp_path: Path
) -> None:
    pushed = push_image(registry, "team/app", "1.0")
    proxy = proxy_to(registry.host, injected=[(429, {"Retry-After": "1"})])
    started = time.monotonic()
    assert resolve_one(ref(proxy.host, "team/app:1.0"), options(tmp_path)) == pushed
    assert time.monotonic() - started >= 1.0
    assert [method for method, _ in proxy.requests] == ["HEAD", "HEAD"]


def test_concurrency_is_bounded_by_max_workers(
    registry: RegistryServer, proxy_to: Any, tmp_path: Path
) -> None:
    for n in range(12):
        push_image(registry, "team/app", f"v{n}", content=str(n))
    proxy = proxy_to(registry.host, latency=0.05)
    images = [ref(proxy.host, f"team/app:v{n}") for n in range(12)]
    resolved = resolve_images(images, "x86_64", options(tmp_path, max_workers=3))
    assert [r.reference for r in resolved] == images
    assert proxy.max_in_flight == 3


def test_ecr_credentials_come_from_get_authorization_token(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # An ECR host is not reachable from here, so this asks the credential lookup directly.
    store = CredentialStore(tmp_path / "no-config.json", AwsContext())
    found = store.for_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert found is not None
    assert found.username == "AWS"
    assert found.password
    assert sandbox.log.actions("ecr") == ["GetAuthorizationToken"]


class _HostileRegistry:
    """A registry that names another registry's token realm and keeps what it is sent."""

    def __init__(self, challenge: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.authorizations = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                received.append(self.headers.get("Authorization", ""))
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()


def _token_subject(authorization: str) -> str:
    payload = authorization.removeprefix("Bearer ").split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def test_a_bearer_token_is_sent_only_to_the_registry_it_was_fetched_for(
    token_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    push_image(token_auth_registry, "team/private", "a")
    server = token_auth_registry.token_server
    assert server is not None
    challenge = (
        f'Bearer realm="{server.realm}",service="{server.service}",'
        'scope="repository:team/private:pull"'
    )
    hostile = _HostileRegistry(challenge)
    try:
        images = [ref(token_auth_registry.host, "team/private:a"), ref(hostile.host, "x/y:1")]
        with pytest.raises(RegistryError, match=hostile.host):
            resolve_images(
                images, "x86_64", options(tmp_path, login(token_auth_registry), max_workers=1)
            )
    finally:
        hostile.stop()
    bearer = [a for a in hostile.authorizations if a.startswith("Bearer ")]
    assert bearer, hostile.authorizations
    assert USERNAME not in {_token_subject(a) for a in bearer}
