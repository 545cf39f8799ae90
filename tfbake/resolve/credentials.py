"""Registry credentials: the Docker config file, Docker credential helpers, and ECR via boto3.

Lookups happen only when a registry asks for authentication, and their results are cached per
host for one resolve call, so a public image costs no file read, subprocess or AWS call.
Secrets never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tfbake.aws.calls import AwsContext, aws_errors
from tfbake.model.errors import RegistryError
from tfbake.model.reference import ECR_HOST_RE

# Docker keeps Hub credentials under its legacy index URL, and passes that URL to helpers.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HELPER_TIMEOUT = 30.0
_NOT_FOUND = "credentials not found"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """A parsed WWW-Authenticate header: scheme ("bearer" or "basic") and its parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {k.lower(): v for k, v in re.findall(r'([A-Za-z0-9_]+)\s*=\s*"([^"]*)"', rest)}
    return Challenge(scheme.lower(), params)


def default_docker_config() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def ecr_region(host: str) -> str | None:
    match = ECR_HOST_RE.fullmatch(host)
    return match["region"] if match else None


class CredentialStore:
    """Credentials per registry host, looked up once and shared by the resolving threads."""

    def __init__(self, docker_config: Path | None = None, aws: AwsContext | None = None) -> None:
        self._config_path = docker_config or default_docker_config()
        self._aws = aws
        self._config: dict[str, object] | None = None
        self._cache: dict[str, Credentials | None] = {}
        self._lock = threading.Lock()

    @property
    def config_path(self) -> Path:
        return self._config_path

    def for_registry(self, registry: str) -> Credentials | None:
        """Credentials for a registry as users name it (docker.io, host:port), or None."""
        with self._lock:
            if registry not in self._cache:
                self._cache[registry] = self._lookup(registry)
            return self._cache[registry]

    def _lookup(self, registry: str) -> Credentials | None:
        region = ecr_region(registry)
        if region is not None:
            return self._ecr(region)
        config = self._load_config()
        server = DOCKER_HUB_SERVER if registry in _DOCKER_HUB_ALIASES else registry
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict) and isinstance(helpers.get(registry), str):
            return _from_helper(helpers[registry], server)
        found = _from_auths(config.get("auths"), registry)
        if found is not None:
            return found
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            return _from_helper(store, server)
        return None

    def _load_config(self) -> dict[str, object]:
        if self._config is None:
            try:
                loaded = json.loads(self._config_path.read_text())
            except FileNotFoundError:
                loaded = {}
            except (OSError, ValueError) as err:
                raise RegistryError(
                    f"cannot read Docker config {self._config_path}: {type(err).__name__}"
                ) from None
            self._config = loaded if isinstance(loaded, dict) else {}
        return self._config

    def _ecr(self, region: str) -> Credentials:
        aws = self._aws or AwsContext()
        with aws_errors("ecr:GetAuthorizationToken", region):
            reply = aws.client("ecr", region=region).get_authorization_token()
        token = reply["authorizationData"][0]["authorizationToken"]
        username, _, password = base64.b64decode(token).decode().partition(":")
        return Credentials(username, password)


def _from_auths(auths: object, registry: str) -> Credentials | None:
    if not isinstance(auths, dict):
        return None
    wanted = _DOCKER_HUB_ALIASES if registry in _DOCKER_HUB_ALIASES else {registry}
    for key, entry in auths.items():
        if _server_host(key) not in wanted or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"]).decode()
            except ValueError:
                raise RegistryError(
                    f"Docker config entry for {registry} has a malformed 'auth' value"
                ) from None
            username, _, password = decoded.partition(":")
            return Credentials(username, password)
        if entry.get("username") and entry.get("password"):
            return Credentials(entry["username"], entry["password"])
        # An empty entry is what `docker login` leaves when a credsStore holds the secret.
    return None


def _server_host(key: str) -> str:
    """The host of an `auths` key, which may be a bare host or a URL such as Hub's index."""
    host = re.sub(r"^[a-z]+://", "", key).split("/", 1)[0]
    return "docker.io" if host in _DOCKER_HUB_ALIASES else host


def _from_helper(name: str, server: str) -> Credentials | None:
    program = f"docker-credential-{name}"
    path = shutil.which(program)
    if path is None:
        raise RegistryError(
            f"Docker config names credential helper {name!r} for {server}, "
            f"but {program} is not on PATH"
        )
    try:
        done = subprocess.run(
            [path, "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RegistryError(f"credential helper {program} failed for {server}: {err}") from None
    if done.returncode != 0:
        # Helpers report a missing entry on stdout with a failing exit; that means anonymous.
        if _NOT_FOUND in (done.stdout + done.stderr).lower():
            return None
        raise RegistryError(
            f"credential helper {program} failed for {server} (exit {done.returncode})"
        )
    try:
        reply = json.loads(done.stdout)
        username, secret = reply["Username"], reply["Secret"]
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"credential helper {program} gave an unreadable reply") from None
    if username == "<token>":
        # An identity token is an OAuth refresh token; registries take it as the password
        # of the token request only through OAuth, which tfbake does not speak.
        raise RegistryError(
            f"credential helper {program} holds an identity token for {server}; "
            "log in with a username and password or access token instead"
        )
    return Credentials(username, secret)
