"""A real Docker registry on loopback for tests and benchmarks, and ways to fill and observe it.

`start_registry` runs Debian's `docker-registry` (distribution 2.8) with filesystem storage in a
temporary directory and no TLS, optionally behind htpasswd Basic auth or token auth served by a
small JWT issuer in this process. Images are pushed with plain HTTP, as a client would.
The `proxy_to` fixture puts a `LoopbackProxy` (tests/support/proxy.py) in front of one.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.support.proxy import LoopbackProxy
from tests.support.token_server import TokenServer

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_CONFIG_TYPES = {
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
}
_LAYER_TYPES = {
    OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip",
    DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
USERNAME, PASSWORD = "tfbake", "s3cret-pass"


def require_prerequisites(auth: str) -> None:
    """Fail, never skip: a missing prerequisite must not look like a passing suite."""
    if not Path(REGISTRY_BINARY).exists():
        pytest.fail(f"{REGISTRY_BINARY} missing: apt-get install docker-registry", pytrace=False)
    if auth == "basic" and shutil.which("htpasswd") is None:
        pytest.fail("htpasswd missing: apt-get install apache2-utils", pytrace=False)
    if auth == "token":
        try:
            import cryptography  # noqa: F401
        except ImportError:
            pytest.fail("cryptography missing: pip install cryptography", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RegistryServer:
    host: str  # 127.0.0.1:PORT, what image references name
    root: Path
    process: subprocess.Popen[bytes]
    auth: str = "none"  # none, basic or token
    token_server: TokenServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def push_headers(self, repository: str) -> dict[str, str]:
        if self.auth == "basic":
            raw = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        if self.token_server is not None:
            token = self.token_server.issue(USERNAME, repository, ["pull", "push"])
            return {"Authorization": f"Bearer {token}"}
        return {}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.token_server is not None:
            self.token_server.stop()


def start_registry(
    root: Path,
    auth: str = "none",
    public_repositories: frozenset[str] = frozenset(),
    *,
    host: str | None = None,
    launcher: tuple[str, ...] = (),
) -> RegistryServer:
    """A running registry; with auth="token", anonymous pull is granted on public repos only.

    `host` (ADDRESS:PORT) defaults to a free loopback port; `launcher` prefixes the command,
    e.g. `ip netns exec NAME` to serve from another network namespace.
    """
    require_prerequisites(auth)
    root.mkdir(parents=True, exist_ok=True)
    host = host or f"127.0.0.1:{free_port()}"
    token_server = None
    auth_config = ""
    if auth == "basic":
        line = subprocess.run(
            ["htpasswd", "-Bbn", USERNAME, PASSWORD], capture_output=True, text=True, check=True
        ).stdout.strip()
        (root / "htpasswd").write_text(line + "\n")
        auth_config = f"auth:\n  htpasswd:\n    realm: tfbake-test\n    path: {root / 'htpasswd'}\n"
    elif auth == "token":
        token_server = TokenServer(root, {USERNAME: PASSWORD}, public_repositories)
        auth_config = (
            f"auth:\n  token:\n    realm: {token_server.realm}\n"
            f"    service: {token_server.service}\n    issuer: {token_server.issuer}\n"
            f"    rootcertbundle: {token_server.certificate_path}\n"
        )
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {host}\n{auth_config}"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen(
        [*launcher, REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    server = RegistryServer(host, root, process, auth, token_server)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            log_text = (root / "registry.log").read_text()[-2000:]
            pytest.fail(f"docker-registry exited at start-up:\n{log_text}", pytrace=False)
        try:
            connection = http.client.HTTPConnection(host, timeout=1)
            connection.request("GET", "/v2/")
            status = connection.getresponse().status
            connection.close()
            if status in (200, 401):
                return server
        except OSError:
            pass
        time.sleep(0.02)
    server.stop()
    pytest.fail(f"docker-registry on {host} not ready after 10 s", pytrace=False)


def _call(
    server: RegistryServer, method: str, url: str, body: bytes, headers: dict[str, str]
) -> Any:
    request = urllib.request.Request(
        urljoin(server.url, url), data=body, method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response


def push_blob(server: RegistryServer, repository: str, data: bytes) -> dict[str, Any]:
    """Upload a blob in one monolithic PUT; returns its descriptor fields."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    auth = server.push_headers(repository)
    started = _call(server, "POST", f"/v2/{repository}/blobs/uploads/", b"", auth)
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    _call(
        server,
        "PUT",
        f"{location}{separator}digest={digest}",
        data,
        {**auth, "Content-Type": "application/octet-stream"},
    )
    return {"digest": digest, "size": len(data)}


def push_manifest(
    server: RegistryServer, repository: str, tag: str, body: bytes, media_type: str
) -> str:
    """PUT a manifest under `tag`; returns the digest the registry computed (sha256 of body)."""
    headers = {**server.push_headers(repository), "Content-Type": media_type}
    response = _call(server, "PUT", f"/v2/{repository}/manifests/{tag}", body, headers)
    digest = response.headers["Docker-Content-Digest"]
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()
    return str(digest)


def image_manifest(
    server: RegistryServer,
    repository: str,
    *,
    media_type: str = DOCKER_MANIFEST,
    architecture: str = "amd64",
    content: str = "",
) -> bytes:
    """Push the blobs of a one-layer image and return its manifest bytes (not yet tagged)."""
    layer = push_blob(server, repository, f"layer {architecture} {content}".encode())
    rootfs = {"type": "layers", "diff_ids": [layer["digest"]]}
    config = {"architecture": architecture, "os": "linux", "rootfs": rootfs}
    config_blob = push_blob(server, repository, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": _CONFIG_TYPES[media_type], **config_blob},
        "layers": [{"mediaType": _LAYER_TYPES[media_type], **layer}],
    }
    return json.dumps(manifest, indent=3).encode()


def push_image(
    server: RegistryServer,
    repository: str,
    tag: str,
    *,
    media_type: str = DOCKER_MANIFEST,
    content: str = "",
) -> str:
    """Push a single-platform image under `tag`; different `content` gives a new digest."""
    body = image_manifest(server, repository, media_type=media_type, content=content)
    return push_manifest(server, repository, tag, body, media_type)


@dataclass(frozen=True)
class PushedIndex:
    digest: str
    manifests: dict[str, str]  # architecture -> platform manifest digest


def push_index(
    server: RegistryServer, repository: str, tag: str, contents: dict[str, str]
) -> PushedIndex:
    """Push a multi-arch OCI index under `tag`, one image per architecture -> content."""
    entries = []
    manifests = {}
    for architecture, content in contents.items():
        body = image_manifest(
            server, repository, media_type=OCI_MANIFEST, architecture=architecture, content=content
        )
        digest = push_manifest(server, repository, digest_of(body), body, OCI_MANIFEST)
        manifests[architecture] = digest
        platform = {"architecture": architecture, "os": "linux"}
        if architecture == "arm64":
            platform["variant"] = "v8"
        entries.append(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": platform}
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    return PushedIndex(push_manifest(server, repository, tag, index.encode(), OCI_INDEX), manifests)


def digest_of(body: bytes) -> str:
    # An index's children are pushed by digest, untagged, as `docker buildx` does.
    return "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """An anonymous registry on loopback."""
    server = start_registry(tmp_path / "registry")
    yield server
    server.stop()


@pytest.fixture
def basic_auth_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry behind htpasswd Basic auth (user USERNAME, password PASSWORD)."""
    server = start_registry(tmp_path / "registry", auth="basic")
    yield server
    server.stop()


@pytest.fixture
def token_auth_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry behind token auth; anonymous pull only on the repository "public/app"."""
    server = start_registry(tmp_path / "registry", "token", frozenset({"public/app"}))
    yield server
    server.stop()


@pytest.fixture
def proxy_to() -> Iterator[Any]:
    """A factory of LoopbackProxy instances in front of a host, all stopped at teardown."""
    started: list[LoopbackProxy] = []

    def start(upstream: str, **kwargs: Any) -> LoopbackProxy:
        proxy = LoopbackProxy(upstream, **kwargs).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
