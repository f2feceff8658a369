"""Leader election for several replicas on one shared ledger, as client-go's Lease does.

With the DynamoDB ledger several `controller run` replicas may run at once
(for availability); only one of them, the leader, should run passes. They
could not start a run twice anyway (the ledger's conditional writes and the
RunTask client token see to that), so the lease is about efficiency and calm
logs, not correctness: two replicas that briefly both believe they lead cost
some duplicate AWS reads and a LedgerConflict, never a second task.

The lease is one record (`LeaseRecord`): the holder's identity, when it
acquired the lease, when it last renewed it, and for how long a renewal
holds. A replica, every `retry_period_seconds`:

* **acquires** it when there is no record, or the record was released
  (empty holder);
* **renews** it while it is the holder;
* **steals** it when another holder has not renewed it for a whole lease
  duration;
* **stands by** otherwise.

Every write is conditional on the record as last read (create-if-absent, or
"holder and renew time unchanged"), so of two contenders exactly one wins.

Expiry follows client-go, not the holder's clock: a contender measures the
lease duration on its own clock from the moment it first *observed* the
current record (any renewal changes the record and restarts the count). Clock
skew between hosts therefore cannot make a lease expire early; the price is
that a replica that just started waits one full duration before it takes over
from a holder that crashed. A holder that shuts down cleanly releases the
lease, so its successor takes over at its next try.

A holder believes it leads only for `renew_deadline_seconds` after its last
successful write, which is shorter than the lease duration: it stops running
passes before anyone else can steal the lease from it.

`decide` is the pure part (tested as a table with a FakeClock); `LeaderElector`
reads and writes through a `LeaseStore` (the DynamoDB table's lease item);
`LeaseKeeper` runs the elector's tries on a thread: for `controller run`
all its life, and for `controller reconcile --once` during its one pass
(which first waits up to `--lock-timeout` to lead, as it waits for the
SQLite ledger's lock).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from controller.clock import Clock

log = logging.getLogger("controller.lease")


@dataclass(frozen=True)
class LeaseRecord:
    """The shared lease: who holds it, since when, last renewed when, for how long."""

    #: the holder's identity; empty once released
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    duration_seconds: float
    #: how many times the lease changed hands (client-go's leaseTransitions)
    transitions: int = 0


class LeaseStore(Protocol):
    """Where the lease record lives; writes are conditional and report whether they won."""

    def read(self) -> LeaseRecord | None:
        """The record, read strongly consistently; None when there is none."""
        ...

    def create(self, record: LeaseRecord) -> bool:
        """Write `record` only if there is no record; True if written."""
        ...

    def replace(self, expected: LeaseRecord, new: LeaseRecord) -> bool:
        """Write `new` only if the stored record still has `expected`'s holder and renew time."""
        ...


class Step(StrEnum):
    """What a replica does with the lease on one try."""

    ACQUIRE = "acquire"  # no record, or a released one
    RENEW = "renew"  # we hold it
    STEAL = "steal"  # another holder let it expire
    STANDBY = "standby"  # another holder has it


@dataclass(frozen=True)
class LeaseSettings:
    """Timings, as client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry."""

    duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0

    def __post_init__(self) -> None:
        """Refuse timings under which a holder could lead after its lease expired."""
        if not 0 < self.retry_period_seconds < self.renew_deadline_seconds < self.duration_seconds:
            raise ValueError(
                "lease timings need 0 < retry period < renew deadline < duration, got"
                f" {self.retry_period_seconds}, {self.renew_deadline_seconds},"
                f" {self.duration_seconds}"
            )


def decide(
    record: LeaseRecord | None, observed_at: datetime | None, identity: str, now: datetime
) -> Step:
    """What `identity` should do at `now`, given the record and when we first saw it."""
    if record is None or not record.holder:
        return Step.ACQUIRE
    if record.holder == identity:
        return Step.RENEW
    since = now if observed_at is None else observed_at
    if now >= since + timedelta(seconds=record.duration_seconds):
        return Step.STEAL
    return Step.STANDBY


def next_record(
    step: Step, record: LeaseRecord | None, identity: str, now: datetime, duration: float
) -> LeaseRecord:
    """The record `identity` writes to take `step` (not STANDBY)."""
    if step is Step.RENEW and record is not None:
        return replace(record, renewed_at=now, duration_seconds=duration)
    transitions = 0 if record is None else record.transitions + 1
    return LeaseRecord(identity, now, now, duration, transitions)


class LeaderElector:
    """One replica's side of the lease: try, renew, tell whether we lead, release."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        clock: Clock,
        settings: LeaseSettings | None = None,
    ) -> None:
        if not identity:
            raise ValueError("a lease holder needs a non-empty identity")
        self.store = store
        self.identity = identity
        self.settings = settings or LeaseSettings()
        self._clock = clock
        self._lock = threading.Lock()
        #: the record as last read or written, and when (our clock) it first looked so
        self._observed: LeaseRecord | None = None
        self._observed_at: datetime | None = None
        #: our last successful acquire or renew (None: we do not hold the lease)
        self._written_at: datetime | None = None

    @property
    def holder(self) -> str | None:
        """The holder as last seen (None: no record seen yet, "": released)."""
        return None if self._observed is None else self._observed.holder

    def is_leader(self) -> bool:
        """True while our last successful write is younger than the renew deadline."""
        with self._lock:
            return self._leads(self._clock.now())

    def _leads(self, now: datetime) -> bool:
        if self._written_at is None:
            return False
        deadline = timedelta(seconds=self.settings.renew_deadline_seconds)
        return now < self._written_at + deadline

    def try_acquire_or_renew(self) -> bool:
        """One try (client-go's tryAcquireOrRenew): read, decide, write; True if we lead."""
        with self._lock:
            now = self._clock.now()
            record = self.store.read()
            if record != self._observed:
                self._observed, self._observed_at = record, now
            step = decide(record, self._observed_at, self.identity, now)
            if step is Step.STANDBY:
                self._written_at = None
                return False
            new = next_record(step, record, self.identity, now, self.settings.duration_seconds)
            won = self.store.create(new) if record is None else self.store.replace(record, new)
            if not won:
                # Someone wrote in between; the next try reads what they wrote.
                self._written_at = None
                return False
            if step is not Step.RENEW:
                log.info(
                    "%s the lease as %s (previous holder: %s)",
                    "took over" if step is Step.STEAL else "acquired",
                    self.identity,
                    (record.holder if record is not None else "") or "none",
                )
            self._observed, self._observed_at, self._written_at = new, now, now
            return True

    def release(self) -> None:
        """Give the lease up (on shutdown) so a standby replica takes over at once."""
        with self._lock:
            held, self._written_at = self._observed, None
            if held is None or held.holder != self.identity:
                return
            now = self._clock.now()
            released = replace(held, holder="", renewed_at=now)
            if self.store.replace(held, released):
                self._observed, self._observed_at = released, now
                log.info("released the lease")


def replica_identity() -> str:
    """A lease holder's identity: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper:
    """Runs an elector's tries every retry period on a thread, reporting leadership changes.

    `step` is one try, callable directly in tests; `on_change(leading)` is
    called (on the keeper's thread) after the first try, then whenever
    leadership is gained or lost.
    """

    def __init__(self, elector: LeaderElector, on_change: Callable[[bool], None]) -> None:
        self.elector = elector
        self._on_change = on_change
        #: None until the first try, whose outcome is reported either way
        self._leading: bool | None = None
        self._stop = threading.Event()
        #: set while we lead, for `wait_leading`
        self._gained = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        """True while we hold the lease (within its renew deadline)."""
        return bool(self._leading) and self.elector.is_leader()

    def step(self) -> bool:
        """Try to acquire or renew once; report a change of leadership; True if leading."""
        try:
            self.elector.try_acquire_or_renew()
        except Exception as exc:
            # AWS unreachable, throttled: the renew deadline decides when we stop leading.
            log.warning("the lease could not be acquired or renewed: %s", exc)
        leading = self.elector.is_leader()
        if leading:
            self._gained.set()
        else:
            self._gained.clear()
        if leading != self._leading:
            self._leading = leading
            self._on_change(leading)
        return leading

    def start(self) -> LeaseKeeper:
        """Try at once, then every retry period, on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()
        return self

    def wait_leading(self, timeout: float) -> bool:
        """Block until we lead (True) or `timeout` seconds have passed (False)."""
        return self._gained.wait(timeout)

    def _run(self) -> None:
        period = self.elector.settings.retry_period_seconds
        self.step()
        while not self._stop.wait(period):
            self.step()

    def stop(self) -> None:
        """Stop trying and release the lease (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._leading = False
        self._gained.clear()
        try:
            self.elector.release()
        except Exception as exc:
            # It expires on its own; a standby takes over one duration later.
            log.warning("the lease could not be released: %s", exc)
