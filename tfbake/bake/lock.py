"""Single flight: at most one bake per region and fingerprint, with no extra infrastructure.

The lock is an SSM parameter, `/tfbake/locks/<fingerprint>`, created with Overwrite=False so
exactly one creator wins. Its value records the idempotency token the winner starts the
Automation execution with, and then the execution id. Every other client reads the lock and
attaches to that execution. A client that dies between creating the lock and recording the id
leaves the token behind; whoever comes next starts the execution with the same token, and SSM's
idempotency returns the one execution instead of starting a second.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from tfbake.aws import aws_errors

LOCK_PREFIX = "/tfbake/locks/"


@dataclass(frozen=True)
class LockRecord:
    token: str  # ClientToken for StartAutomationExecution (UUID format, as SSM requires)
    execution_id: str = ""
    holder: str = ""
    created: str = ""

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str) -> LockRecord:
        try:
            data = json.loads(value)
            fields = ("token", "execution_id", "holder", "created")
            return cls(**{key: str(data.get(key, "")) for key in fields})
        except (ValueError, TypeError, AttributeError):
            # Not ours or damaged: treat as a lock with nothing to attach to, so it is taken over.
            return cls(token="")


@dataclass(frozen=True)
class Lock:
    name: str
    record: LockRecord
    owned: bool  # True when this client created it


class BakeLock:
    """Create, read, update and release the lock parameter of one fingerprint."""

    def __init__(self, ssm: Any, fingerprint: str, region: str) -> None:
        self.ssm = ssm
        self.name = LOCK_PREFIX + fingerprint
        self.region = region

    def acquire_or_read(self) -> Lock:
        record = LockRecord(token=str(uuid.uuid4()), holder=_holder(), created=_now())
        with aws_errors(f"ssm:PutParameter {self.name}", self.region):
            try:
                self.ssm.put_parameter(
                    Name=self.name, Value=record.encode(), Type="String", Overwrite=False,
                    Description="tfbake bake in progress; deleted when the bake ends",
                )  # fmt: skip
                return Lock(self.name, record, owned=True)
            except self.ssm.exceptions.ParameterAlreadyExists:
                pass
        current = self.read()
        if current is None:  # released between our put and our read: try again
            return self.acquire_or_read()
        return Lock(self.name, current, owned=False)

    def read(self) -> LockRecord | None:
        with aws_errors(f"ssm:GetParameter {self.name}", self.region):
            try:
                value = self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"]
            except self.ssm.exceptions.ParameterNotFound:
                return None
        return LockRecord.decode(value)

    def record_execution(self, lock: Lock, execution_id: str) -> Lock:
        record = LockRecord(lock.record.token, execution_id, lock.record.holder,
                            lock.record.created)  # fmt: skip
        with aws_errors(f"ssm:PutParameter {self.name}", self.region):
            self.ssm.put_parameter(
                Name=self.name, Value=record.encode(), Type="String", Overwrite=True
            )
        return Lock(self.name, record, lock.owned)

    def release(self, expected: LockRecord) -> bool:
        """Delete the lock if it still describes the same bake; True when deleted."""
        current = self.read()
        if current is None or current.token != expected.token:
            return False  # gone already, or a newer bake holds it now
        with aws_errors(f"ssm:DeleteParameter {self.name}", self.region):
            try:
                self.ssm.delete_parameter(Name=self.name)
            except self.ssm.exceptions.ParameterNotFound:
                return False
        return True


def _holder() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def _now() -> str:
    return datetime.fromtimestamp(time.time(), timezone.utc).isoformat(timespec="seconds")
