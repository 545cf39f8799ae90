"""The bake lock's storage: an SSM parameter per fingerprint, and the only ways it changes.

The lock is `/tfbake/locks/<fingerprint>`, created with Overwrite=False so exactly one creator
wins. Its value records the idempotency token the bake is started with, then the execution id.
What a lock means, and when it may change, is decided in claim.py; this module only stores.

SSM has no conditional delete or update, so every change of a lock away from what a client saw
(releasing it, replacing a stale one) happens while holding the lock's guard: a second
parameter, `<lock>.guard`, also created with Overwrite=False, under which the change re-reads
the lock and goes ahead only if it still holds what was seen. A stale lock is replaced in
place, so there is never a moment without a lock in which another client could create one.
A guard left by a client that died is taken for abandoned once it is old on AWS's clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from tfbake.aws.calls import aws_errors, error_code
from tfbake.aws.clock import age_on_aws_clock
from tfbake.model.errors import AwsError
from tfbake.model.patterns import CLIENT_TOKEN_RE, EXECUTION_ID_RE

LOCK_PREFIX = "/tfbake/locks/"
GUARD_SUFFIX = ".guard"
# A guard is held for three API calls; one older than this belongs to a client that died.
GUARD_ABANDONED = timedelta(seconds=30)
_GUARD_WAIT_SECONDS = 0.1
_GUARD_ATTEMPTS = 300
_FIELDS = ("token", "execution_id", "holder", "created")


class LockBusy(AwsError):
    """The lock's guard stayed taken (another client is changing the lock)."""


@dataclass(frozen=True)
class LockRecord:
    """What a lock holds. A value tfbake did not write decodes to a record with `malformed`
    set (why), no token and no execution: nothing to start or attach to."""

    token: str  # ClientToken for StartAutomationExecution (UUID format, as SSM requires)
    execution_id: str = ""
    holder: str = ""
    created: str = ""
    malformed: str = ""
    # The stored value as read: what a change under the guard compares a malformed lock by.
    raw: str = field(default="", compare=False, repr=False)

    def encode(self) -> str:
        fields = {key: getattr(self, key) for key in _FIELDS}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @property
    def identity(self) -> str:
        """What stays the same while a lock stands for one bake: its token (a recorded
        execution does not change it), or the whole value of a malformed lock."""
        return f"token:{self.token}" if not self.malformed else f"raw:{self.raw}"

    @classmethod
    def decode(cls, value: str) -> LockRecord:
        try:
            data = json.loads(value)
        except ValueError:
            return cls.unreadable(value, "not JSON")
        if not isinstance(data, dict):
            return cls.unreadable(value, "not a JSON object")
        strings = {key: data.get(key, "") for key in _FIELDS}
        wrong = [key for key, item in strings.items() if not isinstance(item, str)]
        if wrong:
            return cls.unreadable(value, f"{wrong[0]} is {json.dumps(strings[wrong[0]])}")
        token, execution_id = strings["token"], strings["execution_id"]
        if not CLIENT_TOKEN_RE.fullmatch(token):
            return cls.unreadable(value, f"token {token!r} is not a UUID")
        if execution_id and not EXECUTION_ID_RE.fullmatch(execution_id):
            return cls.unreadable(value, f"execution_id {execution_id!r} is not an execution id")
        return cls(token, execution_id, strings["holder"], strings["created"], raw=value)

    @classmethod
    def unreadable(cls, value: str, why: str) -> LockRecord:
        return cls(token="", malformed=why, raw=value)

    def with_execution(self, execution_id: str) -> LockRecord:
        return LockRecord(self.token, execution_id, self.holder, self.created)


@dataclass(frozen=True)
class StoredLock:
    record: LockRecord
    age: timedelta | None  # since its last change, on AWS's clock; None when AWS did not say


class BakeLock:
    """Create, read, update and delete the lock parameter of one fingerprint."""

    def __init__(self, ssm: Any, fingerprint: str, region: str) -> None:
        self.ssm = ssm
        self.fingerprint = fingerprint
        self.name = LOCK_PREFIX + fingerprint
        self.region = region

    def create(self) -> LockRecord | None:
        """A new lock with a fresh token; None when a lock exists already."""
        record = new_record()
        with aws_errors(f"ssm:PutParameter {self.name}", self.region):
            try:
                self.ssm.put_parameter(
                    Name=self.name, Value=record.encode(), Type="String", Overwrite=False,
                    Description="tfbake bake in progress; deleted when the bake ends",
                )  # fmt: skip
            except Exception as err:
                if error_code(err) != "ParameterAlreadyExists":
                    raise
                return None
        return record

    def read(self) -> StoredLock | None:
        with aws_errors(f"ssm:GetParameter {self.name}", self.region):
            try:
                response = self.ssm.get_parameter(Name=self.name)
            except Exception as err:
                if error_code(err) != "ParameterNotFound":
                    raise
                return None
        parameter = response["Parameter"]
        age = age_on_aws_clock(response, parameter.get("LastModifiedDate"))
        return StoredLock(LockRecord.decode(parameter["Value"]), age)

    def write(self, record: LockRecord) -> None:
        """Overwrite the lock in place (recording the execution of the lock's own token needs
        no guard: a lock with a token is never taken over while that token's bake may run)."""
        with aws_errors(f"ssm:PutParameter {self.name}", self.region):
            self.ssm.put_parameter(
                Name=self.name, Value=record.encode(), Type="String", Overwrite=True
            )

    def delete_if_unchanged(self, seen: LockRecord) -> bool:
        """Delete the lock if it still stands for what `seen` stood for; True when deleted."""
        return self._change(seen, self._delete)

    def replace_if_unchanged(self, seen: LockRecord) -> LockRecord | None:
        """Replace the lock with a new one of this client; None when someone changed it first."""
        record = new_record()
        if self._change(seen, lambda: self.write(record)):
            return record
        return None

    def _change(self, seen: LockRecord, change: Callable[[], object]) -> bool:
        self._take_guard()
        try:
            current = self.read()
            if current is None or current.record.identity != seen.identity:
                return False  # gone already, or a newer bake holds it now
            change()
            return True
        finally:
            self._drop_guard()

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
        """True when the guard is older than GUARD_ABANDONED on AWS's clock: the time of
        GetParameter's answer minus the guard's LastModifiedDate, both written by AWS."""
        with aws_errors(f"ssm:GetParameter {self.guard_name}", self.region):
            try:
                response = self.ssm.get_parameter(Name=self.guard_name)
            except Exception as err:
                if error_code(err) != "ParameterNotFound":
                    raise
                return False
        age = age_on_aws_clock(response, response["Parameter"].get("LastModifiedDate"))
        return age is not None and age > GUARD_ABANDONED

    def _drop_guard(self) -> None:
        # Never fatal: the change it guarded is done, and a guard left behind is taken for
        # abandoned once it is older than GUARD_ABANDONED.
        with contextlib.suppress(AwsError):
            self._delete(self.guard_name)


def new_record() -> LockRecord:
    return LockRecord(token=str(uuid.uuid4()), holder=_holder(), created=_created())


def _holder() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def _created() -> str:
    # For people reading the lock only; every decision reads AWS's LastModifiedDate instead.
    return datetime.fromtimestamp(time.time(), timezone.utc).isoformat(timespec="seconds")
