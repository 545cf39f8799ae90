"""An HTTP proxy on loopback that records, slows down or answers requests for its upstream.

Tests put it in front of a registry to observe what the registry would see (how many requests,
how many at once) and to inject answers a healthy registry never gives (429, odd challenges).
In front of the AWS sandbox it loses answers: the request reaches AWS and is carried out, and
the client is told 500, as when a connection drops after the server acted.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# An AWS JSON error a server answers when it fails after (or while) doing the work.
_LOST_ANSWER = b'{"__type":"InternalServerError","message":"the answer was lost"}'


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when many clients connect at once, and a
    # dropped SYN costs a one-second retransmit that would swamp any latency measurement.
    request_queue_size = 128


@dataclass
class LoopbackProxy:
    """An HTTP proxy on loopback in front of `upstream` that records and shapes requests."""

    upstream: str
    latency: float = 0.0  # seconds added to every request
    injected: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # next answers
    requests: list[tuple[str, str]] = field(default_factory=list)
    max_in_flight: int = 0
    # Requests (method, X-Amz-Target, body) whose answer is lost after the upstream acted.
    lose_answer: Callable[[str, str, bytes], bool] | None = None
    lost: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LoopbackProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                proxy._forward(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _relay

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((handler.command, handler.path))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            answer = self.injected.pop(0) if self.injected else None
        try:
            time.sleep(self.latency)
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length) if length else None
            if answer is not None:
                status, headers, data = answer[0], answer[1], b""
            else:
                status, headers, data = self._upstream(handler, body)
                if self._loses(handler, body):
                    status, data = 500, _LOST_ANSWER
                    headers = {"Content-Type": "application/x-amz-json-1.1"}
            # Only the upstream's headers: a second Date or Server would not be the upstream's.
            handler.send_response_only(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            if "Content-Length" not in headers:
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _loses(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> bool:
        if self.lose_answer is None:
            return False
        target = handler.headers.get("X-Amz-Target", "")
        if not self.lose_answer(handler.command, target, body or b""):
            return False
        with self._lock:
            self.lost += 1
        return True

    def _upstream(
        self, handler: BaseHTTPRequestHandler, body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.upstream, timeout=10)
        try:
            skip = {"host", "connection"}
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            relayed = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in {"connection", "transfer-encoding", "keep-alive"}
            }
            return response.status, relayed, data
        finally:
            connection.close()
