"""HTTP for the Registry API v2: transport policy, kept-alive connections, retries and auth.

One client serves one resolve call and is shared by its threads: tokens are cached per
(registry, realm, service, scope) and the Authorization that worked for a repository is reused,
so an image costs one round trip once its repository's token is known. The registry that
challenged is part of the key: a registry may name any realm in its challenge, and a token
fetched for one registry is sent to that registry only, never to another naming the same realm.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tfbake.aws.calls import AwsContext
from tfbake.model.reference import ImageReference
from tfbake.resolve.credentials import Challenge, Credentials, CredentialStore, parse_challenge

_MAX_RETRY_AFTER = 30.0  # seconds; a longer wait is better reported than slept through
# Registries refuse manifests and indexes over 4 MiB (distribution's limit, and Docker Hub's);
# an answer larger than that is hostile or broken, and is not read on. A token is a few KB.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024
_BACKOFF_BASE = 0.25
_RESETS = (ConnectionResetError, BrokenPipeError, http.client.HTTPException)
_USER_AGENT = "tfbake"


class RegistryFailure(Exception):
    """Why one image could not be resolved; the caller adds the image's name."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def error(self) -> tuple[str, str]:
        """The first (code, message) of a registry error body, or empty strings."""
        try:
            first = json.loads(self.body)["errors"][0]
            return str(first.get("code", "")), str(first.get("message", ""))[:200]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return "", ""


def is_loopback(host: str) -> bool:
    name = host[1 : host.find("]")] if host.startswith("[") else host.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryClient:
    def __init__(
        self,
        *,
        insecure_registries: frozenset[str] = frozenset(),
        docker_config: Path | None = None,
        timeout: float = 10.0,
        deadline: float = 60.0,
        retries: int = 3,
        aws: AwsContext | None = None,
    ) -> None:
        self._insecure = insecure_registries
        self._timeout = timeout  # per read: a silent registry
        self._deadline = deadline  # per request, retries and the whole answer included
        self._retries = retries
        self._credentials = CredentialStore(docker_config, aws)
        self._ssl = ssl.create_default_context()
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        # (challenging registry host, realm, service, scope, with credentials) -> token
        self._tokens: dict[tuple[str, str, str, str, bool], str] = {}
        self._token_locks: dict[tuple[str, str, str, str, bool], threading.Lock] = {}
        self._authorization: dict[tuple[str, str], str] = {}
        self._private: set[tuple[str, str]] = set()

    def close(self) -> None:
        with self._lock:
            for pool in self._idle.values():
                for connection in pool:
                    connection.close()
            self._idle.clear()

    def scheme(self, host: str) -> str:
        return "http" if is_loopback(host) or host in self._insecure else "https"

    def request(
        self, ref: ImageReference, method: str, path: str, headers: dict[str, str]
    ) -> Response:
        """A request to `ref`'s registry, answering one auth challenge if the registry asks."""
        host = ref.api_host
        key = (host, ref.repository)
        known = self._authorization.get(key)
        auth = {"Authorization": known} if known else {}
        response = self._send(self.scheme(host), host, method, path, {**headers, **auth})
        if response.status == 401:
            challenge = parse_challenge(response.header("WWW-Authenticate") or "")
            response = self._answer(ref, challenge, method, path, headers)
        if response.status in (401, 403):
            # Registries answer this way for a missing repository too, to hide what exists.
            if self._credentials.for_registry(ref.registry) is None:
                reason = "anonymous pull refused (the repository may be private or missing)"
            else:
                reason = "the registry refused the credentials"
            raise self._denied(ref, reason)
        return response

    def needed_credentials(self, ref: ImageReference) -> bool:
        """Whether `ref` resolved only with the local credentials (anonymous pull refused)."""
        return (ref.api_host, ref.repository) in self._private

    def _answer(
        self,
        ref: ImageReference,
        challenge: Challenge | None,
        method: str,
        path: str,
        headers: dict[str, str],
    ) -> Response:
        host = ref.api_host
        key = (host, ref.repository)
        credentials = self._credentials.for_registry(ref.registry)
        if credentials is not None and challenge is not None and challenge.scheme == "bearer":
            # Anonymous first: a public repository must not count as private just because the
            # user is logged in (a builder without credentials pulls it as well).
            try:
                anonymous = self._authorize(ref, challenge, None)
            except RegistryFailure:
                anonymous = ""
            if anonymous:
                retry = {**headers, "Authorization": anonymous}
                response = self._send(self.scheme(host), host, method, path, retry)
                if response.status not in (401, 403):
                    self._authorization[key] = anonymous
                    return response
        authorization = self._authorize(ref, challenge, credentials)
        self._authorization[key] = authorization
        if credentials is not None:
            self._private.add(key)
        retry = {**headers, "Authorization": authorization}
        return self._send(self.scheme(host), host, method, path, retry)

    def _authorize(
        self, ref: ImageReference, challenge: Challenge | None, credentials: Credentials | None
    ) -> str:
        if challenge is not None and challenge.scheme == "bearer":
            realm = challenge.params.get("realm")
            if not realm:
                raise RegistryFailure(f"{ref.api_host} sent a Bearer challenge without a realm")
            service = challenge.params.get("service", "")
            scope = challenge.params.get("scope") or f"repository:{ref.repository}:pull"
            return "Bearer " + self._token(ref, realm, service, scope, credentials)
        if challenge is not None and challenge.scheme == "basic":
            if credentials is None:
                raise self._denied(ref, "the registry requires a login")
            return credentials.basic_header()
        raise RegistryFailure(f"{ref.api_host} asked for authentication it does not describe")

    def _token(
        self,
        ref: ImageReference,
        realm: str,
        service: str,
        scope: str,
        credentials: Credentials | None,
    ) -> str:
        key = (ref.api_host, realm, service, scope, credentials is not None)
        with self._lock:
            lock = self._token_locks.setdefault(key, threading.Lock())
        # One fetch per key even when several threads meet the same challenge at once.
        with lock:
            if key in self._tokens:
                return self._tokens[key]
            url = urlsplit(realm)
            host = url.netloc
            if url.scheme == "http" and not (is_loopback(host) or host in self._insecure):
                raise RegistryFailure(
                    f"refusing plain HTTP to non-loopback host {host} (token realm of "
                    f"{ref.api_host}); add {host} to insecure_registries if that is intended"
                )
            if url.scheme not in ("http", "https"):
                raise RegistryFailure(f"{ref.api_host} sent a token realm that is not a URL")
            query = urlencode({k: v for k, v in (("service", service), ("scope", scope)) if v})
            path = (url.path or "/") + "?" + "&".join(p for p in (url.query, query) if p)
            headers = {"Authorization": credentials.basic_header()} if credentials else {}
            response = self._send(url.scheme, host, "GET", path, headers, limit=MAX_TOKEN_BYTES)
            if response.status in (401, 403):
                raise self._denied(ref, f"the token service {host} refused the credentials")
            try:
                reply = json.loads(response.body)
                token = reply.get("token") or reply.get("access_token")
            except (ValueError, AttributeError):
                token = None
            if response.status != 200 or not isinstance(token, str) or not token:
                raise RegistryFailure(
                    f"the token service {host} answered HTTP {response.status} without a token"
                )
            self._tokens[key] = token
            return token

    def _denied(self, ref: ImageReference, reason: str) -> RegistryFailure:
        login = "docker login" if ref.registry == "docker.io" else f"docker login {ref.registry}"
        return RegistryFailure(
            f"access denied to {ref.registry}/{ref.repository}: {reason} "
            f"(run `{login}` or add credentials for it to {self._credentials.config_path})"
        )

    def _send(
        self,
        scheme: str,
        host: str,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        limit: int = MAX_MANIFEST_BYTES,
    ) -> Response:
        """One request, retried on resets, 429 and 5xx, and bounded: it ends by the deadline
        however slowly the registry answers, and reads at most `limit` bytes of the answer."""
        ends = time.monotonic() + self._deadline
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            left = ends - time.monotonic()
            if left <= 0:
                break
            connection = self._checkout(scheme, host)
            cut = _Deadline(connection, left)
            try:
                connection.request(method, path, headers={"User-Agent": _USER_AGENT, **headers})
                raw = connection.getresponse()
                body = _read_bounded(raw, host, limit)
            except _RESETS as err:
                # A kept-alive connection the server has since closed fails this way too.
                connection.close()
                if cut.expired:
                    break
                if last:
                    raise RegistryFailure(f"registry {host} unreachable: {_reason(err)}") from None
                time.sleep(min(_BACKOFF_BASE * 2**attempt, max(ends - time.monotonic(), 0)))
                continue
            except ssl.SSLError as err:
                connection.close()
                raise RegistryFailure(_tls_failure(host, err)) from None
            except OSError as err:
                connection.close()
                if cut.expired:
                    break
                raise RegistryFailure(f"registry {host} unreachable: {_reason(err)}") from None
            except RegistryFailure:
                connection.close()
                raise
            finally:
                cut.cancel()
            if cut.expired:  # the answer ended where the deadline cut it
                connection.close()
                break
            if raw.will_close:
                connection.close()
            else:
                self._checkin(scheme, host, connection)
            if not last and (raw.status == 429 or raw.status >= 500):
                delay = _retry_delay(raw.headers.get("Retry-After"), attempt)
                time.sleep(min(delay, max(ends - time.monotonic(), 0)))
                continue
            return Response(raw.status, raw.headers, body)
        raise RegistryFailure(
            f"registry {host} did not answer {method} {path.split('?')[0]} within "
            f"{self._deadline:g} s"
        )

    def _checkout(self, scheme: str, host: str) -> http.client.HTTPConnection:
        with self._lock:
            pool = self._idle.get((scheme, host))
            if pool:
                return pool.pop()
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self._timeout, context=self._ssl)
        return http.client.HTTPConnection(host, timeout=self._timeout)

    def _checkin(self, scheme: str, host: str, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault((scheme, host), []).append(connection)


class _Deadline:
    """Ends a request at its deadline: a registry that sends one byte at a time never lets a
    per-read timeout expire, so the socket is shut down under the reader instead."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.connection = connection
        self.expired = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.expired = True
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _read_bounded(raw: http.client.HTTPResponse, host: str, limit: int) -> bytes:
    """The answer's body, refused as soon as it is known to be over `limit` bytes."""
    declared = raw.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(host, limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := raw.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(host, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(host: str, limit: int) -> RegistryFailure:
    return RegistryFailure(
        f"registry {host} sent an answer over {limit // 1024} KiB, more than any registry "
        "serves for a manifest, index or token"
    )


def _retry_delay(retry_after: str | None, attempt: int) -> float:
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = _BACKOFF_BASE * 2**attempt
        return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
    return float(_BACKOFF_BASE * 2**attempt)


def _reason(err: BaseException) -> str:
    if isinstance(err, socket.gaierror):
        return "host name not found"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, _RESETS):
        return "connection reset"
    return getattr(err, "strerror", None) or type(err).__name__


def _tls_failure(host: str, err: ssl.SSLError) -> str:
    if "WRONG_VERSION_NUMBER" in str(err) or "record layer" in str(err):
        return (
            f"{host} does not speak HTTPS; refusing plain HTTP to a non-loopback host "
            "(add it to insecure_registries if that is intended)"
        )
    return f"TLS with {host} failed: {err.reason or err}"
