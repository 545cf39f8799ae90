"""The one exception family of tfbake.

Every expected failure is a TfbakeError subclass whose class carries the process exit code,
so the CLI and the Terraform adapter turn any of them into one line and a documented code.
Anything else that escapes is a bug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug: an exception tfbake did not expect
    BAD_INPUT = 2  # usage, spec, image reference, protocol, base AMI not found
    AMI_MISSING = 3  # `check` found no ready AMI for the fingerprint
    BAKE_FAILED = 4
    BAKE_TIMED_OUT = 5
    REGISTRY = 6  # tag or repository not found, auth denied, registry unreachable
    AWS = 7  # credentials, permissions, endpoint unreachable, other AWS API errors
    CANCELLED = 8


class TfbakeError(Exception):
    """An expected failure with a message a user can act on."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        # Multi-line context (a bake's command output) shown in full by the CLI, never by
        # `external`, whose error must stay on one line.
        self.details = details
        # One line per item of a failure with several (every image that failed to resolve),
        # printed by the CLI under -v before the summary line.
        self.lines: tuple[str, ...] = ()
        # A failed bake's time by step (bake/timing.py), shown after its output.
        self.breakdown: tuple[str, ...] = ()

    def one_line(self) -> str:
        return " ".join(self.message.split())


class BadInput(TfbakeError):
    exit_code = ExitCode.BAD_INPUT


class SpecError(BadInput):
    """An image-set spec that does not validate; names the source and field."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        where = source or ""
        if where and line is not None:
            where += f":{line}"
        prefix = ": ".join(part for part in (where, field) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source = source
        self.field = field
        self.line = line


class InvalidReference(BadInput):
    """An image reference outside Docker's grammar."""


class AmiMissing(TfbakeError):
    exit_code = ExitCode.AMI_MISSING


class BakeFailed(TfbakeError):
    exit_code = ExitCode.BAKE_FAILED


class BakeTimedOut(TfbakeError):
    exit_code = ExitCode.BAKE_TIMED_OUT


class BakeCancelled(TfbakeError):
    exit_code = ExitCode.CANCELLED


class BakeInterrupted(TfbakeError):
    """The client was interrupted; the bake itself goes on in AWS."""

    exit_code = ExitCode.CANCELLED


class RegistryError(TfbakeError):
    exit_code = ExitCode.REGISTRY


class AwsError(TfbakeError):
    exit_code = ExitCode.AWS

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code  # the AWS error code, e.g. ThrottlingException; "" when not from AWS
        # The HTTP status of AWS's answer; 0 when none came (a connection lost, a timeout).
        self.status = status
