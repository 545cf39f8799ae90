"""Single flight: at most one bake per region and fingerprint, with no extra infrastructure.

The lock is an SSM parameter, `/tfbake/locks/<fingerprint>`, created with Overwrite=False so
exactly one creator wins. Its value records the idempotency token the winner starts the
Automation execution with, and then the execution id. Every other client reads the lock and
attaches to that execution. A client that dies between creating the lock and recording the id
leaves the token behind; whoever comes next starts the execution with the same token and the
same parameters (the AMI's name derives from the token, not the clock), and SSM's idempotency
returns the one execution instead of starting a second.

SSM has no conditional delete or update, so every change of a lock away from its token T
(releasing it, replacing a stale one) happens while holding the lock's guard: a
second parameter, `<lock>.guard`, also created with Overwrite=False, under which the change
re-reads the lock and goes ahead only if it still holds T. A lock is therefore released only by
a client that saw it as it is, and a stale lock is taken over exactly once: by overwriting it in
place, so there is never a moment without a lock in which another client could create one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from tfbake.aws.calls import aws_errors, error_code
from tfbake.model.errors import AwsError

LOCK_PREFIX = "/tfbake/locks/"
GUARD_SUFFIX = ".guard"
# A guard is held for three API calls; one older than this belongs to a client that died.
GUARD_ABANDONED_SECONDS = 30.0
_GUARD_WAIT_SECONDS = 0.1
_GUARD_ATTEMPTS = 300


class LockBusy(AwsError):
    """The lock's guard stayed taken (another client is changing the lock)."""


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
            except Exception as err:
                if error_code(err) != "ParameterAlreadyExists":
                    raise
        current = self.read()
        if current is None:  # released between our put and our read: try again
            return self.acquire_or_read()
        return Lock(self.name, current, owned=False)

    def read(self) -> LockRecord | None:
        with aws_errors(f"ssm:GetParameter {self.name}", self.region):
            try:
                value = self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"]
            except Exception as err:
                if error_code(err) != "ParameterNotFound":
                    raise
                return None
        return LockRecord.decode(value)

    def record_execution(self, lock: Lock, execution_id: str) -> Lock:
        """Write the execution into the lock of its token (not under the guard: a lock with a
        token and no execution is never taken over while that token's bake may run)."""
        record = LockRecord(lock.record.token, execution_id, lock.record.holder,
                            lock.record.created)  # fmt: skip
        self._put(record, overwrite=True)
        return Lock(self.name, record, lock.owned)

    def release(self, expected: LockRecord) -> bool:
        """Delete the lock if it still describes the same bake; True when deleted."""
        return self._change(expected, self._delete)

    def take_over(self, stale: LockRecord) -> Lock | None:
        """Replace a stale lock with one of ours; None when someone else changed it first."""
        record = LockRecord(token=str(uuid.uuid4()), holder=_holder(), created=_now())
        if self._change(stale, lambda: self._put(record, overwrite=True)):
            return Lock(self.name, record, owned=True)
        return None

    def _change(self, expected: LockRecord, change: Callable[[], object]) -> bool:
        """Run `change` if the lock still holds `expected`'s token; True when it ran."""
        self._take_guard()
        try:
            current = self.read()
            if current is None or current.token != expected.token:
                return False  # gone already, or a newer bake holds it now
            change()
            return True
        finally:
            self._drop_guard()

    def _put(self, record: LockRecord, *, overwrite: bool) -> None:
        with aws_errors(f"ssm:PutParameter {self.name}", self.region):
            self.ssm.put_parameter(
                Name=self.name, Value=record.encode(), Type="String", Overwrite=overwrite
            )

    def _delete(self, name: str | None = None) -> None:
        name = name or self.name
        with aws_errors(f"ssm:DeleteParameter {name}", self.region):
            try:
                self.ssm.delete_parameter(Name=name)
            except Exception as err:
                if error_code(err) != "ParameterNotFound":  # gone already is what was wanted
                    raise

    @property
    def guard_name(self) -> str:
        return self.name + GUARD_SUFFIX

    def _take_guard(self) -> None:
        for _ in range(_GUARD_ATTEMPTS):
            with aws_errors(f"ssm:PutParameter {self.guard_name}", self.region):
                try:
                    self.ssm.put_parameter(
                        Name=self.guard_name, Value=_holder(), Type="String", Overwrite=False,
                        Description="tfbake: a client is changing the bake lock",
                    )  # fmt: skip
                    return
                except Exception as err:
                    if error_code(err) != "ParameterAlreadyExists":
                        raise
            if self._guard_abandoned():
                self._drop_guard()
                continue
            time.sleep(_GUARD_WAIT_SECONDS)
        raise LockBusy(f"the guard {self.guard_name} of the bake lock stayed taken")

    def _guard_abandoned(self) -> bool:
        with aws_errors(f"ssm:GetParameter {self.guard_name}", self.region):
            try:
                parameter = self.ssm.get_parameter(Name=self.guard_name)["Parameter"]
            except Exception as err:
                if error_code(err) != "ParameterNotFound":
                    raise
                return False
        modified = parameter.get("LastModifiedDate")
        if not isinstance(modified, datetime):
            return False
        return (datetime.now(timezone.utc) - modified).total_seconds() > GUARD_ABANDONED_SECONDS

    def _drop_guard(self) -> None:
        # Never fatal: the change it guarded is done, and a guard left behind is taken for
        # abandoned once it is older than GUARD_ABANDONED_SECONDS.
        with contextlib.suppress(AwsError):
            self._delete(self.guard_name)


def _holder() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def _now() -> str:
    return datetime.fromtimestamp(time.time(), timezone.utc).isoformat(timespec="seconds")
