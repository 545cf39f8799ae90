"""A link with a bandwidth and a delay between the host and a server in its own network namespace.

The namespace gets one end of a veth pair; traffic leaving it (what a client downloads) passes a
`tc tbf` queue for the bandwidth. The kernel here has no netem, so the delay is added in
userspace: `DelayProxy` listens on loopback and relays each TCP connection to the namespace,
holding every chunk for half the round trip in each direction. Its port stays the same when the
link changes, so image references naming it stay valid across the benchmark's links.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

_CHUNK = 256 * 1024
# Enough chunks in flight for 200 Mbit/s at 10 ms each way; more only when the reader is slow.
_QUEUED_CHUNKS = 64


@dataclass(frozen=True)
class Link:
    name: str
    mbit: float | None  # None: no bandwidth limit
    rtt_ms: float

    def describe(self) -> str:
        if self.mbit is None and not self.rtt_ms:
            return "unshaped"
        return f"{self.mbit:g} Mbit/s, {self.rtt_ms:g} ms"


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")


class Namespace:
    """A network namespace of this process's own, joined to the host by a veth pair."""

    def __init__(self, tag: int | None = None) -> None:
        tag = os.getpid() if tag is None else tag
        self.name = f"tfbake-bench{tag}"
        self._host_end = f"tfbh{tag % 100000}"
        self._inner_end = f"tfbn{tag % 100000}"
        subnet = f"10.213.{tag % 250}"
        self.host_address, self.address = f"{subnet}.1", f"{subnet}.2"
        self.created = False

    def create(self) -> Namespace:
        _run("ip", "netns", "add", self.name)
        self.created = True
        _run("ip", "link", "add", self._host_end, "type", "veth", "peer", "name", self._inner_end)
        _run("ip", "link", "set", self._inner_end, "netns", self.name)
        _run("ip", "addr", "add", f"{self.host_address}/30", "dev", self._host_end)
        _run("ip", "link", "set", self._host_end, "up")
        self.exec("ip", "addr", "add", f"{self.address}/30", "dev", self._inner_end)
        self.exec("ip", "link", "set", self._inner_end, "up")
        self.exec("ip", "link", "set", "lo", "up")
        return self

    def launcher(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)

    def exec(self, *command: str) -> None:
        _run(*self.launcher(), *command)

    def limit(self, mbit: float | None) -> None:
        """Bandwidth of what leaves the namespace; None removes the limit."""
        if mbit is None:
            with contextlib.suppress(RuntimeError):  # no qdisc yet
                self.exec("tc", "qdisc", "del", "dev", self._inner_end, "root")
            return
        # burst holds one GSO segment (64 KiB) and then some; latency bounds the queue.
        self.exec(
            "tc", "qdisc", "replace", "dev", self._inner_end, "root", "tbf",
            "rate", f"{mbit:g}mbit", "burst", "256kb", "latency", "50ms",
        )  # fmt: skip

    def remove(self) -> None:
        # Deleting the namespace deletes its veth end, and with it the host's end.
        if self.created:
            with contextlib.suppress(RuntimeError):
                _run("ip", "netns", "del", self.name)
            with contextlib.suppress(RuntimeError):
                _run("ip", "link", "del", self._host_end)
            self.created = False


@dataclass
class DelayProxy:
    """TCP on 127.0.0.1 relayed to `upstream`, each direction delayed by `rtt_ms` / 2."""

    upstream: tuple[str, int]
    rtt_ms: float = 0.0
    _listener: socket.socket | None = None
    _sockets: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        assert self._listener is not None
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> DelayProxy:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        threading.Thread(target=self._accept, name="delay-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            ends = threading.Semaphore(0)
            for source, target in ((client, server), (server, client)):
                self._pump(source, target, ends)
            threading.Thread(target=self._close, args=(client, server, ends), daemon=True).start()

    def _close(
        self, client: socket.socket, server: socket.socket, ends: threading.Semaphore
    ) -> None:
        for _ in range(2):
            ends.acquire()
        with self._lock:
            self._sockets -= {client, server}
        client.close()
        server.close()

    def _pump(
        self, source: socket.socket, target: socket.socket, ends: threading.Semaphore
    ) -> None:
        # A reader stamps each chunk with when it may leave; a writer holds it until then, so
        # the delay adds latency without cutting throughput (many chunks are in flight).
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue(_QUEUED_CHUNKS)

        def read() -> None:
            while True:
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    data = b""
                chunks.put((time.monotonic() + self.rtt_ms / 2000, data))
                if not data:
                    return

        def write() -> None:
            try:
                relay()
            finally:
                ends.release()

        def relay() -> None:
            while True:
                due, data = chunks.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    if not data:
                        target.shutdown(socket.SHUT_WR)
                        return
                    target.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()
