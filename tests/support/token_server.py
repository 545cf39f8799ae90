"""A token service for `docker-registry`'s `auth: token:` mode, on loopback.

It issues ES256 JWTs carrying their certificate in `x5c`; the same certificate is the
registry's `rootcertbundle`, so the registry verifies them exactly as it would a real
issuer's. Basic credentials, when sent, must match; anonymous callers get pull on the public
repositories only, as Docker Hub does.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    service = "tfbake-test-registry"
    issuer = "tfbake-test-issuer"

    def __init__(
        self, root: Path, users: dict[str, str], public_repositories: frozenset[str]
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = users
        self.public_repositories = public_repositories
        self.requests: list[str] = []  # subject of each token request ("" = anonymous)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER))
        self.certificate_path = root / "token-cert.pem"
        self.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, subject: str, repository: str, actions: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c.decode()]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [{"type": "repository", "name": repository, "actions": actions}]
            if actions
            else [],
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants the raw r||s pair, not the DER sequence cryptography produces.
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _grant(self, subject: str, scope: str) -> tuple[str, list[str]]:
        kind, _, rest = scope.partition(":")
        repository, _, wanted = rest.rpartition(":")
        if kind != "repository" or not repository:
            return "", []
        if subject:
            return repository, [a for a in wanted.split(",") if a in ("pull", "push")]
        if repository in self.public_repositories and "pull" in wanted.split(","):
            return repository, ["pull"]
        return repository, []

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                subject = ""
                authorization = self.headers.get("Authorization", "")
                if authorization.startswith("Basic "):
                    decoded = base64.b64decode(authorization[6:]).decode()
                    user, _, password = decoded.partition(":")
                    if server.users.get(user) != password:
                        self._reply(401, {"details": "incorrect username or password"})
                        return
                    subject = user
                server.requests.append(subject)
                scope = (query.get("scope") or [""])[0]
                repository, actions = server._grant(subject, scope)
                token = server.issue(subject, repository, actions)
                self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
