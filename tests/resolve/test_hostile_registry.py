"""A registry on loopback that answers to hurt: slowly, without end, or ambiguously. Each ends
in one registry error, in bounded time and memory."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tfbake.model.errors import RegistryError
from tfbake.model.reference import parse_reference
from tfbake.resolve.registry import OCI_INDEX, OCI_MANIFEST, RegistryOptions, resolve_images

Answer = Callable[[BaseHTTPRequestHandler], None]


class HostileRegistry:
    """Answers every manifest GET with `answer`; a HEAD says "an index, read it"."""

    def __init__(self, answer: Answer) -> None:
        self.sent = 0  # body bytes written before the client hung up

        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", OCI_INDEX)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                with contextlib.suppress(OSError):  # the client hung up: what the test wants
                    answer(self)

            def count(self, data: bytes) -> None:
                self.wfile.write(data)
                registry.sent += len(data)

        self.handler = Handler
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Answer], HostileRegistry]]:
    started: list[HostileRegistry] = []

    def start(answer: Answer) -> HostileRegistry:
        started.append(HostileRegistry(answer))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def resolve(server: HostileRegistry, tmp_path: Path, **options: float) -> tuple[str, float]:
    """The one-line error of resolving an image there, and how long it took."""
    reference = parse_reference(f"{server.host}/app:1")
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        resolve_images(
            [reference],
            "x86_64",
            RegistryOptions(docker_config=tmp_path / "config.json", **options),  # type: ignore[arg-type]
        )
    return caught.value.one_line(), time.monotonic() - started


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", OCI_INDEX)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(100000):
        handler.count(b" ")  # type: ignore[attr-defined]
        handler.wfile.flush()
        time.sleep(0.5)


def test_a_registry_that_drips_its_answer_is_cut_at_the_deadline(
    hostile: Callable[[Answer], HostileRegistry], tmp_path: Path
) -> None:
    server = hostile(_drip)

    message, seconds = resolve(server, tmp_path, deadline=2.0)

    assert f"registry {server.host} did not answer GET /v2/app/manifests/1 within 2 s" in message
    assert seconds < 4


def _endless_chunks(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", OCI_INDEX)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"x" * (1024 * 1024)
    for _ in range(600):  # 600 MB, as the attack sent
        handler.count(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # type: ignore[attr-defined]
    handler.wfile.write(b"0\r\n\r\n")


def _declared_huge(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", OCI_INDEX)
    handler.send_header("Content-Length", str(600 * 1024 * 1024))
    handler.end_headers()
    chunk = b"x" * (1024 * 1024)
    for _ in range(600):
        handler.count(chunk)  # type: ignore[attr-defined]


@pytest.mark.parametrize("answer", [_endless_chunks, _declared_huge], ids=["chunked", "declared"])
def test_an_answer_over_4_mib_is_refused_without_reading_it(
    hostile: Callable[[Answer], HostileRegistry], tmp_path: Path, answer: Answer
) -> None:
    server = hostile(answer)

    message, _ = resolve(server, tmp_path)

    assert f"registry {server.host} sent an answer over 4096 KiB" in message
    # What the registry got to write before tfbake hung up: socket buffers, not 600 MB.
    assert server.sent < 64 * 1024 * 1024


def _token_challenge(handler: BaseHTTPRequestHandler) -> None:
    if handler.path.startswith("/token"):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * (1024 * 1024)
        for _ in range(600):
            handler.count(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # type: ignore[attr-defined]
        return
    host = handler.headers["Host"]
    handler.send_response(401)
    handler.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",service="x"')
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def test_a_token_answer_over_64_kib_is_refused(
    hostile: Callable[[Answer], HostileRegistry], tmp_path: Path
) -> None:
    server = hostile(_token_challenge)
    server.handler.do_HEAD = server.handler.do_GET  # type: ignore[method-assign]

    message, _ = resolve(server, tmp_path)

    assert f"registry {server.host} sent an answer over 64 KiB" in message
    assert server.sent < 64 * 1024 * 1024


TWICE = ["sha256:" + "a" * 64, "sha256:" + "b" * 64]


def _index_listing_amd64_twice(order: list[str]) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        platform = {"os": "linux", "architecture": "amd64"}
        entries = [
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": 100, "platform": platform}
            for digest in order
        ]
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        handler.send_response(200)
        handler.send_header("Content-Type", OCI_INDEX)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body.encode())

    return answer


@pytest.mark.parametrize("order", [TWICE, TWICE[::-1]], ids=["a-first", "b-first"])
def test_an_index_listing_the_platform_twice_is_refused_as_ambiguous(
    hostile: Callable[[Answer], HostileRegistry], tmp_path: Path, order: list[str]
) -> None:
    server = hostile(_index_listing_amd64_twice(order))

    message, _ = resolve(server, tmp_path)

    assert f"its index lists linux/amd64 more than once ({TWICE[0]}, {TWICE[1]})" in message
    assert "pin the manifest you mean by digest" in message
