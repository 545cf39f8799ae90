"""The claim on a fingerprint's one bake: every rule about a bake lock, in one place.

A lock (lock.py stores it) stands for one bake: it holds the ClientToken the bake is started
with, then the execution. The rules:
- **acquire**: the client that creates the lock holds a new claim and may start the bake;
- **start**: a lock that names no execution is started with its own token, by whichever client
  reads it. SSM starts one execution per token and answers a repeated start with that same
  execution, so a start whose answer was lost is started again, never replaced by a second bake;
- **adopt**: a lock naming a running execution of this fingerprint is attached to;
- **take over**: a lock is stale when its execution has ended or is ending, is unknown to SSM,
  bakes another image set, or when its value is not a record tfbake wrote. A stale lock is
  replaced in place under the guard, so exactly one of the clients that see it takes it over;
- **release**: only when its execution has ended (or was stopped), or never started: AWS refused
  the start, or the client that created the lock found the AMI already there.
Everything else (a timeout, Ctrl-C, an answer lost on the way back) keeps the lock, and the next
client carries on from it. Ages are read on AWS's clock, never this machine's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from tfbake.aws.calls import AwsContext, error_code, was_refused
from tfbake.bake.execution import ACTIVE, EXECUTION_NOT_FOUND, Snapshot, find_active_execution
from tfbake.bake.lock import BakeLock, LockRecord, StoredLock
from tfbake.model.errors import AwsError, BakeFailed

# Clients that keep meeting a changed lock (stale ones taken over by others, bakes refused and
# released) give up after this many readings.
MAX_READINGS = 10
# What an execution that is being cancelled still runs: its cancel workflow, which AWS stops
# after two minutes and which cannot create an image.
CANCELLING = "Cancelling"

ReadExecution = Callable[[str], Snapshot]
NoteSink = Callable[[str], None]
Starter = Callable[[str], str]  # starts the bake with a token; the execution id


def makes_image(status: str) -> bool:
    """True while an execution may still create its AMI."""
    return status in ACTIVE and status != CANCELLING


@dataclass(frozen=True)
class Judgement:
    """What a lock stands for now."""

    stale: str = ""  # why it may be taken over or cleared; "" when it may not
    live: Snapshot | None = None  # the bake it names, when that bake may still make the AMI
    ended: Snapshot | None = None  # the bake it names, of this fingerprint, when it has ended


def judge(record: LockRecord, fingerprint: str, read: ReadExecution) -> Judgement:
    """The lock's verdict. A lock naming no execution is never stale here: its token starts,
    or has started, the one bake (judge_left_behind adds an age for locks nobody comes back to).
    """
    if record.malformed:
        return Judgement(stale=f"its value is not a lock tfbake wrote ({record.malformed})")
    if not record.execution_id:
        return Judgement()
    try:
        state = read(record.execution_id)
    except AwsError as err:
        if error_code(err) != EXECUTION_NOT_FOUND:
            raise
        return Judgement(stale=f"execution {record.execution_id} is unknown to SSM")
    if state.fingerprint != fingerprint:
        return Judgement(
            stale=f"execution {record.execution_id} bakes another image set "
            f"(fingerprint {state.fingerprint[:12] or 'none'})"
        )
    if not makes_image(state.status):
        return Judgement(stale=f"execution {record.execution_id} is {state.status}", ended=state)
    return Judgement(live=state)


def judge_left_behind(
    stored: StoredLock, fingerprint: str, read: ReadExecution, max_age: timedelta
) -> str:
    """Why a lock found by a sweep is stale, '' when it is not. A lock naming no execution is
    stale once older than `max_age` on AWS's clock: by then a starting client must have
    recorded its bake, and the next client would start it again from the token anyway."""
    if stored.record.malformed or stored.record.execution_id:
        return judge(stored.record, fingerprint, read).stale
    if stored.age is not None and stored.age > max_age:
        return f"names no bake after {int(stored.age.total_seconds() // 60)} min"
    return ""


class Claim:
    """One client's hold on a fingerprint's bake, from acquiring or adopting it to its release."""

    def __init__(self, lock: BakeLock, record: LockRecord, starter: Starter, aws: AwsContext, *,
                 is_new: bool, execution: Snapshot | None = None) -> None:  # fmt: skip
        self.lock = lock
        self.record = record
        self.starter = starter
        self.aws = aws
        self.is_new = is_new  # this client created the lock, or took it over
        self.execution = execution  # the live bake adopted, None when there is one to start
        self._start_attempted = False
        self._start_refused = False
        self._ended = False

    @property
    def releasable(self) -> bool:
        if self._ended:
            return True
        never_started = not self._start_attempted or self._start_refused
        return self.is_new and never_started and not self.record.execution_id

    def start(self) -> str:
        """Start the lock's bake with its token (idempotent) and record it; the execution id.

        A token already spent on other parameters (another spec of the same fingerprint, with
        other builder settings) is attached to while its bake runs, else replaced once.
        """
        for _ in range(MAX_READINGS):
            self._start_attempted = True
            try:
                execution_id = self.starter(self.record.token)
            except AwsError as err:
                if error_code(err) != "IdempotentParameterMismatch":
                    self._start_refused = was_refused(err)
                    raise
                execution_id = self._after_spent_token() or ""
            if execution_id:
                self._record(execution_id)
                return execution_id
        raise _kept_changing(self.lock)

    def ended(self) -> None:
        """The bake has ended, or was stopped: it will make no AMI, so the lock may go."""
        self._ended = True

    def _after_spent_token(self) -> str | None:
        found = find_active_execution(
            self.aws.client("ssm"), self.lock.fingerprint, self.aws.effective_region
        )
        if found is not None:
            return found
        replaced = self.lock.replace_if_unchanged(self.record)
        if replaced is None:
            raise _kept_changing(self.lock)
        self.record, self.is_new, self._start_attempted = replaced, True, False
        return None

    def _record(self, execution_id: str) -> None:
        self.record = self.record.with_execution(execution_id)
        # Best effort: a lock whose write is lost still holds the token, and whoever reads it
        # next starts with that token and so meets this very execution.
        with contextlib.suppress(AwsError):
            self.lock.write(self.record)


@contextlib.contextmanager
def claim_bake(
    lock: BakeLock, aws: AwsContext, *, starter: Starter, read: ReadExecution, note: NoteSink
) -> Iterator[Claim]:
    """Acquire the fingerprint's lock, adopt its live bake, or take a stale one over; on the
    way out, release it when the rules allow (see the module's docstring)."""
    claim = _settle(lock, aws, starter, read, note)
    try:
        yield claim
    finally:
        if claim.releasable:
            # A lock that cannot be deleted now is stale to the next client and listed by
            # `tfbake cleanup`; the bake's outcome is what the caller asked for.
            with contextlib.suppress(AwsError):
                lock.delete_if_unchanged(claim.record)


def _settle(
    lock: BakeLock, aws: AwsContext, starter: Starter, read: ReadExecution, note: NoteSink
) -> Claim:
    for _ in range(MAX_READINGS):
        created = lock.create()
        if created is not None:
            return Claim(lock, created, starter, aws, is_new=True)
        stored = lock.read()
        if stored is None:
            continue  # released between our create and our read
        record, verdict = stored.record, judge(stored.record, lock.fingerprint, read)
        if not verdict.stale and verdict.live is None:
            # It names no execution: its creator died before recording one, or lost the
            # answer to its start. Started with its token, it names the one bake of that token.
            claim = Claim(lock, record, starter, aws, is_new=False)
            claim.start()
            record, verdict = claim.record, judge(claim.record, lock.fingerprint, read)
        if verdict.live is not None:
            return Claim(lock, record, starter, aws, is_new=False, execution=verdict.live)
        replaced = lock.replace_if_unchanged(record)
        if replaced is not None:
            note(f"took over the stale bake lock {lock.name}: {verdict.stale}")
            return Claim(lock, replaced, starter, aws, is_new=True)
    raise _kept_changing(lock)


def _kept_changing(lock: BakeLock) -> BakeFailed:
    return BakeFailed(
        f"the bake lock {lock.name} kept changing while this client read it (bakes of the same "
        "image set keep failing to start); rerun, or see `tfbake cleanup`"
    )


# ---- the rules as cancel, cleanup and lookups apply them ----------------------------------


def release_if_names(lock: BakeLock, execution_id: str) -> bool:
    """Release the lock if it names `execution_id`, an execution that has ended or been
    stopped by the caller; True when released."""
    stored = lock.read()
    if stored is None or stored.record.execution_id != execution_id:
        return False
    return lock.delete_if_unchanged(stored.record)


def release_after_lookup(lock: BakeLock, execution_id: str, read: ReadExecution) -> bool:
    """Release the lock a killed client left once its bake's AMI was found, if it still names
    that bake and the bake no longer runs. Never fails the lookup that calls it."""
    try:
        stored = lock.read()
        if stored is None or stored.record.execution_id != execution_id:
            return False
        if judge(stored.record, lock.fingerprint, read).live is not None:
            return False  # its last step is ending right now; its client releases it
        return lock.delete_if_unchanged(stored.record)
    except AwsError:
        return False
