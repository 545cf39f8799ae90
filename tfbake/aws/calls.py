"""AWS clients from one place, and AWS failures turned into messages a user can act on.

boto3 is imported lazily: commands that need no AWS call (a fingerprint of pinned references)
must not pay its start-up cost. Endpoints follow boto3's own `AWS_ENDPOINT_URL` handling, so a
local sandbox needs nothing from tfbake.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from types_boto3_autoscaling import AutoScalingClient
    from types_boto3_ec2 import EC2Client
    from types_boto3_ecr import ECRClient
    from types_boto3_logs import CloudWatchLogsClient
    from types_boto3_ssm import SSMClient

from tfbake.model.errors import AwsError, BadInput
from tfbake.model.patterns import REGION_RE

# One retry policy for every client: the standard mode backs off on throttling and 5xx and gives
# up quickly on calls the endpoint does not implement. Long waits (polling a bake) add their own
# tolerance on top, so this stays short enough that an unreachable endpoint fails in seconds.
RETRY_MODE: Literal["standard"] = "standard"
RETRY_ATTEMPTS = 4
CONNECT_TIMEOUT_SECONDS = 10


# Where a region comes from, after one given explicitly: AWS's newer SDKs, the AWS CLI v2 and
# Terraform's AWS provider read AWS_REGION first; botocore reads only AWS_DEFAULT_REGION, so the
# first is read here. Then the profile's region (botocore).
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def _region_variable() -> str | None:
    value = os.environ.get(REGION_VARIABLES[0], "").strip()
    return check_region(value) if value else None


def check_region(region: str) -> str:
    if not REGION_RE.fullmatch(region):
        raise BadInput(f"{region!r} is not an AWS region name (like eu-west-1)")
    return region


@dataclass
class AwsContext:
    """Region and profile chosen by the user; creates and caches one client per service/region."""

    region: str | None = None
    profile: str | None = None
    # How the adapter that made this context takes a region ("pass --region"), for the error
    # when none is found; the core names no adapter's options itself.
    region_hint: str = ""
    _session: Any = field(default=None, init=False, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                import boto3

                try:
                    self._session = boto3.session.Session(
                        profile_name=self.profile, region_name=self.region or _region_variable()
                    )
                except Exception as err:  # ProfileNotFound and friends
                    raise AwsError(f"cannot open AWS profile {self.profile!r}: {err}") from err
            return self._session

    def __post_init__(self) -> None:
        if self.region is not None:
            check_region(self.region)

    @property
    def effective_region(self) -> str:
        region = self.region or self.session().region_name
        if not region:
            # Never a silent default: a bake in the wrong region is a bake in the wrong place.
            ways = [self.region_hint] if self.region_hint else []
            ways += [
                f"set {REGION_VARIABLES[0]} (or {REGION_VARIABLES[1]})",
                "set the profile's region",
            ]
            raise BadInput(f"no AWS region: {', '.join(ways[:-1])}, or {ways[-1]}")
        return check_region(region)

    # Typed clients for the services tfbake calls (types-boto3): mypy then checks every call's
    # name and parameters. Any other service is untyped.
    @overload
    def client(self, service: Literal["ec2"], region: str | None = None) -> EC2Client: ...
    @overload
    def client(self, service: Literal["ssm"], region: str | None = None) -> SSMClient: ...
    @overload
    def client(self, service: Literal["ecr"], region: str | None = None) -> ECRClient: ...
    @overload
    def client(
        self, service: Literal["logs"], region: str | None = None
    ) -> CloudWatchLogsClient: ...
    @overload
    def client(
        self, service: Literal["autoscaling"], region: str | None = None
    ) -> AutoScalingClient: ...
    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.effective_region
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            from botocore.config import Config

            client = self.session().client(
                service,
                region_name=region,
                config=Config(
                    retries={"mode": RETRY_MODE, "max_attempts": RETRY_ATTEMPTS},
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                ),
            )
            self._clients[key] = client
        return client


def paginate(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[Any]:
    """Every item of a list/describe call, across all pages."""
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(result_key, [])


@contextmanager
def aws_errors(action: str, region: str) -> Iterator[None]:
    """Translate botocore failures raised inside the block into one-line AwsErrors."""
    try:
        yield
    except AwsError:
        raise
    except Exception as err:
        translated = translate(err, action, region)
        if translated is None:
            raise
        translated.status = _http_status(err)
        raise translated from err


def _http_status(err: Exception) -> int:
    """The HTTP status of AWS's answer to the failed call; 0 when no answer came."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return 0
    return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)


def translate(err: Exception, action: str, region: str) -> AwsError | None:
    from botocore import exceptions as bx

    if isinstance(err, bx.NoCredentialsError):
        return AwsError(
            f"no AWS credentials found for {action} in {region}: set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        )
    if isinstance(err, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return AwsError(f"cannot reach the AWS endpoint for {action} in {region}: {err}")
    if isinstance(err, bx.ClientError):
        code = error_code(err) or "Unknown"
        message = err.response.get("Error", {}).get("Message", "")
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            return AwsError(
                f"access denied: {action} in {region} ({code}); grant the caller this "
                f"permission{': ' + _first_line(message) if message else ''}",
                code=code,
            )
        # The one place a message is read: AWS answers a request signed for a region that does
        # not exist with a signature error (SignatureDoesNotMatch, InvalidSignatureException),
        # the code of bad credentials too; only the message tells the two apart.
        if "valid region" in message:
            return AwsError(
                f"AWS does not know the region {region!r} ({action}: {code}); "
                "check the region given, AWS_REGION, AWS_DEFAULT_REGION or the profile's region",
                code=code,
            )
        if code in {
            "AuthFailure",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "UnrecognizedClientException",
        }:
            return AwsError(
                f"AWS rejected the credentials for {action} in {region} ({code})", code=code
            )
        return AwsError(f"{action} failed in {region}: {code}: {_first_line(message)}", code=code)
    if isinstance(err, bx.BotoCoreError):
        return AwsError(f"{action} failed in {region}: {err}")
    return None


def _first_line(text: str) -> str:
    text = text.strip()
    if text.startswith("<"):
        # Not an AWS error document: a proxy's or a local endpoint's HTML page.
        return "the endpoint answered with an HTML page, not an AWS error"
    return text.splitlines()[0] if text else ""


THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


def error_code(err: BaseException) -> str:
    """The AWS error code of a failure, "" when it is not an AWS error answer.

    The one way tfbake reads a code: from an AwsError that aws_errors translated, or from a
    botocore ClientError (the modelled exceptions of a client are ClientErrors too) caught
    inside an aws_errors block. Never from a message's text.
    """
    if isinstance(err, AwsError):
        return err.code
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_throttling(err: BaseException) -> bool:
    return error_code(err) in THROTTLING_CODES


def was_refused(err: BaseException) -> bool:
    """True when AWS answered that it did not do the request: a 4xx answer, throttling aside
    (botocore retries only 5xx, throttling and lost connections, so a 4xx that ends the call
    follows no attempt AWS carried out, or an idempotent retry would have been answered with
    its result). A 5xx, or no answer at all, leaves open whether AWS did it."""
    status = err.status if isinstance(err, AwsError) else 0
    return 400 <= status < 500 and status != 429 and not is_throttling(err)
