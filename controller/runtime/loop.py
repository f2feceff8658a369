"""The sync loop: decides when the next pass runs, runs one at a time, stops cleanly.

Level-triggered (DESIGN.md §7): a trigger only means "reconcile soon"; every
pass recomputes everything, so triggers that pile up during a pass collapse
into the next one. The triggers:

* **start**: the first pass runs at once;
* **source change**: the directory watcher (or an S3 poll) calls `notify`;
  a burst of events is debounced — the pass runs `debounce_seconds` after
  the last event, but never later than `max_debounce_seconds` after the
  first, so constant churn cannot starve the loop;
* **resync**: `resync_seconds` after the previous pass, whatever happened
  (ECS changes nobody notifies us about: tasks stop, instances register);
* **requeue**: the plan's `requeue_at`, when a run needs a pass by itself (a
  backoff expiring, a deadline, a capacity retry), never sooner than
  `min_requeue_seconds` after the previous pass;
* **retry** after a failed pass, instead of resync and requeue;
* **activity**: while runs are in flight, the `Activity` (the cheap look of
  `controller.observe.activity`) is asked every `next_look_in()` seconds
  whether ECS changed (a task started, stopped or vanished, instances
  registered); a change runs a pass at once. `look_now()` asks at once (an
  ECS event arrived). Nothing in flight: no look, so an idle loop makes no
  AWS call between resyncs. While failing, the backoff decides: no looks;
* **placement failure**: a pass in which RunTask could not place a task is
  followed at once by another, which plans the scale-out (the plan that
  failed was made before ECS said there was no room);
* **deferred work**: a pass that spent its budget (`--pass-budget-seconds`)
  before applying everything is followed at once by another.

How a pass can fail, and what follows:

* a `TransientError` escaping it (the source unreadable with nothing to fall
  back on, the ledger busy), or a pass that completed with problems worth
  another try (ECS unreadable for a cluster, failed actions, a stale source
  snapshot): retried after a capped exponential backoff with jitter
  (`backoff_initial_seconds * 2^(n-1)`, capped at `backoff_max_seconds` and
  at the resync period, minus up to `backoff_jitter` of it);
* a `TerminalError` (bad configuration, a ledger of a newer schema):
  reported, not retried; the next source change or resync tries again;
* anything else is a bug: logged with the pass id and its traceback, counted,
  and retried with the same backoff. The loop itself never dies of it.

Time comes from the injected Clock and waiting from the injected Waiter, so a
test drives the loop step by step with `run_once_or_wait()` and a FakeClock
(see `tests/runtime/test_loop.py`); `controller run` uses the system clock
and a `threading.Event`. `request_stop()` (from a signal handler) lets the
pass in flight finish; `run()` then returns.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from controller.clock import Clock
from controller.errors import TerminalError, TransientError
from controller.runtime.log_format import current_pass
from controller.runtime.reconcile_pass import PassResult

log = logging.getLogger(__name__)

#: One pass; its argument is the pass id (for logs). The production pass is
#: `reconcile_once` over a PassContext built once, so the loader (with its
#: last-known-good manifests) and the revision cache live across passes.
PassFunction = Callable[[str], PassResult]


@dataclass(frozen=True)
class LoopSettings:
    """When passes run and how failures are retried."""

    resync_seconds: float = 60.0
    debounce_seconds: float = 0.5
    max_debounce_seconds: float = 5.0
    #: how often `poll` (an S3 listing) is asked whether the source changed
    poll_seconds: float | None = None
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    #: the fraction of a backoff delay that is randomised away, so replicas
    #: and retries restarted together drift apart
    backoff_jitter: float = 0.2
    min_requeue_seconds: float = 1.0

    def backoff(self, failures: int, rng: random.Random) -> float:
        """The delay before retry number `failures` (1-based), jittered and capped."""
        cap = min(self.backoff_max_seconds, self.resync_seconds)
        delay = min(cap, self.backoff_initial_seconds * 2.0 ** max(0, failures - 1))
        return delay * (1.0 - self.backoff_jitter * rng.random())


class Activity(Protocol):
    """The cheap observation between passes (`controller.runtime.activity`)."""

    def next_look_in(self) -> float | None:
        """Seconds until the next look is worth its calls; None: nothing in flight."""
        ...

    def look(self) -> str | None:
        """Look at ECS now: why a pass is needed (a change), or None."""
        ...


class Waiter(Protocol):
    """How the loop waits for its next trigger."""

    def wait(self, seconds: float) -> None:
        """Block up to `seconds`, or until `wake` is called."""
        ...

    def wake(self) -> None:
        """End the current (or the next) wait early."""
        ...


class EventWaiter:
    """The production waiter: a threading.Event that watcher threads and signals set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, seconds: float) -> None:
        """Block up to `seconds` of real time, or until woken."""
        self._event.wait(max(0.0, seconds))
        # Clearing after the wait may drop a wake that raced with it; that is
        # harmless because `notify` changes the loop's state *before* waking
        # it, and the loop re-reads that state before it waits again.
        self._event.clear()

    def wake(self) -> None:
        """Wake the loop."""
        self._event.set()


@dataclass(frozen=True)
class PassReport:
    """One pass as the loop saw it: for metrics, logs and the sync record."""

    pass_id: str
    trigger: str
    started_at: datetime
    duration_seconds: float
    #: None when the pass raised
    result: PassResult | None
    #: what made the pass an error (empty: success)
    problems: tuple[str, ...]
    #: the exception that escaped the pass, if any
    error: BaseException | None = None
    #: seconds until the scheduled retry, or None (success, or terminal)
    retry_in: float | None = None

    @property
    def ok(self) -> bool:
        """True when the pass completed without problems worth reporting as an error."""
        return not self.problems


def retryable_problems(result: PassResult) -> tuple[str, ...]:
    """What in a completed pass is worth another pass soon.

    Invalid manifests, planner warnings and terminal action failures are
    not: the same input gives the same answer until someone changes it (a
    source change wakes us).
    """
    problems = [f"observe: {p}" for p in result.observe_errors]
    problems += [
        f"action failed: {f}" for f in result.applied.failed if f not in result.applied.terminal
    ]
    if result.snapshot.stale:
        problems.append(f"source unreadable, used the last good snapshot: {result.snapshot.stale}")
    return tuple(problems)


class Loop:
    """Runs passes on triggers, one at a time, until asked to stop."""

    def __init__(
        self,
        run_pass: PassFunction,
        *,
        clock: Clock,
        settings: LoopSettings | None = None,
        waiter: Waiter | None = None,
        pass_clock: Clock | None = None,
        poll: Callable[[], bool] | None = None,
        on_pass: Callable[[PassReport], None] | None = None,
        rng: random.Random | None = None,
        id_prefix: str | None = None,
        activity: Activity | None = None,
    ) -> None:
        self._run_pass = run_pass
        self._clock = clock
        self.settings = settings or LoopSettings()
        self._waiter = waiter or EventWaiter()
        #: the pass's own clock, in which `plan.requeue_at` is expressed
        #: (differs from `clock` only under the CONTROLLER_TEST_NOW hook)
        self._pass_clock = pass_clock or clock
        self._poll = poll
        self._on_pass = on_pass or (lambda _report: None)
        # Jitter only spreads retries apart; it needs no cryptographic quality.
        self._rng = rng or random.Random()  # noqa: S311
        self._id_prefix = id_prefix if id_prefix is not None else secrets.token_hex(2)
        self._lock = threading.Lock()
        self._stopping = False
        self._passes = 0
        self._start_pending = True
        self._changed_first: datetime | None = None
        self._changed_last: datetime | None = None
        self._change_reason = ""
        now = clock.now()
        self._created_at = now
        self._resync_at = now + timedelta(seconds=self.settings.resync_seconds)
        self._requeue_at: datetime | None = None
        self._retry_at: datetime | None = None
        self._failures = 0
        self._poll_at = now if poll is not None else None
        self._activity = activity
        self._look_at: datetime | None = None
        self._look_requested = False
        self._looks = 0

    # -- triggers from other threads ------------------------------------------------

    def notify(self, reason: str = "source changed") -> None:
        """Something in the source changed: reconcile soon (debounced). Thread-safe."""
        now = self._clock.now()
        with self._lock:
            if self._changed_first is None:
                self._changed_first = now
                self._change_reason = reason
            self._changed_last = now
        self._waiter.wake()

    def look_now(self) -> None:
        """Look at ECS at once (an event said something changed). Thread-safe."""
        with self._lock:
            self._look_requested = True
        self._waiter.wake()

    def request_stop(self) -> None:
        """Finish the pass in flight (if any), then stop. Safe from a signal handler."""
        self._stopping = True
        self._waiter.wake()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stopping

    @property
    def passes(self) -> int:
        """How many passes ran so far."""
        return self._passes

    @property
    def looks(self) -> int:
        """How many cheap looks ran so far."""
        return self._looks

    @property
    def next_look(self) -> datetime | None:
        """When the next cheap look is due (None: nothing in flight, or failing)."""
        return self._look_at

    @property
    def failures(self) -> int:
        """Consecutive failed passes that scheduled a retry."""
        return self._failures

    # -- the loop -------------------------------------------------------------------

    def run(self) -> None:
        """Run until `request_stop`."""
        while not self._stopping:
            self.run_once_or_wait()

    def next_pass(self) -> tuple[datetime, str]:
        """When the next pass is due, and why."""
        with self._lock:
            candidates: list[tuple[datetime, str]] = []
            if self._start_pending:
                # Due since the loop was made: a time read now would lie in the
                # future of the caller's `now`, and the start pass would wait for
                # two clock reads to fall into the same microsecond.
                candidates.append((self._created_at, "start"))
            if self._changed_first is not None and self._changed_last is not None:
                settle = self._changed_last + timedelta(seconds=self.settings.debounce_seconds)
                limit = self._changed_first + timedelta(seconds=self.settings.max_debounce_seconds)
                candidates.append((min(settle, limit), self._change_reason))
            if self._retry_at is not None:
                # While failing, the backoff decides; resync and requeue wait.
                candidates.append((self._retry_at, f"retry {self._failures} after failure"))
            else:
                candidates.append((self._resync_at, "resync"))
                if self._requeue_at is not None:
                    candidates.append((self._requeue_at, "requeue requested by the plan"))
        return min(candidates, key=lambda c: c[0])

    def run_once_or_wait(self) -> PassReport | None:
        """Run the pass if one is due (returning its report), else wait for the next trigger."""
        if self._stopping:
            return None
        now = self._clock.now()
        if self._poll_at is not None and self._poll_at <= now:
            self._poll_source(now)
        due, trigger = self.next_pass()
        if due <= now:
            return self._pass(trigger)
        if self._look_due(now):
            change = self._look(now)
            if change is not None:
                return self._pass(change)
            # The look took time (a second for 1,000 runs): wait from now, or
            # every period would stretch by the look's own duration.
            now = self._clock.now()
        wakes = [due] + [t for t in (self._poll_at, self._look_at) if t is not None]
        self._waiter.wait(max(0.0, (min(wakes) - now).total_seconds()))
        return None

    def _look_due(self, now: datetime) -> bool:
        if self._activity is None or self._retry_at is not None:
            return False  # while failing, the backoff decides
        with self._lock:
            requested = self._look_requested
        return requested or (self._look_at is not None and self._look_at <= now)

    def _look(self, now: datetime) -> str | None:
        """One cheap look; the reason for a pass, or None (and the next look scheduled)."""
        assert self._activity is not None
        with self._lock:
            self._look_requested = False
        self._looks += 1
        try:
            change = self._activity.look()
        except Exception:
            # A look is an optimisation: the resync still comes.
            log.exception("looking at ECS between passes failed")
            change = None
        if change is None:
            self._schedule_look(now)
        return change

    def _schedule_look(self, now: datetime) -> None:
        if self._retry_at is not None:
            self._look_at = None  # while failing, the backoff decides
            return
        delay = self._activity.next_look_in() if self._activity is not None else None
        self._look_at = None if delay is None else now + timedelta(seconds=max(0.0, delay))

    def _poll_source(self, now: datetime) -> None:
        assert self.settings.poll_seconds is not None
        assert self._poll is not None
        self._poll_at = now + timedelta(seconds=self.settings.poll_seconds)
        try:
            changed = self._poll()
        except Exception as exc:
            # The pass reads the source too and reports the problem properly;
            # a failed poll only means we learnt nothing this time.
            log.warning("polling the source failed: %s", exc)
            return
        if changed:
            self.notify("source changed (poll)")

    def _pass(self, trigger: str) -> PassReport:
        with self._lock:
            self._start_pending = False
            self._changed_first = self._changed_last = None
        self._passes += 1
        pass_id = f"{self._id_prefix}-{self._passes}"
        # Every log line of the pass, and of its reporting, carries its id.
        token = current_pass.set(pass_id)
        try:
            return self._run_and_report(pass_id, trigger)
        finally:
            current_pass.reset(token)

    def _run_and_report(self, pass_id: str, trigger: str) -> PassReport:
        started = self._clock.now()
        log.debug("pass started (%s)", trigger)
        result: PassResult | None = None
        error: BaseException | None = None
        try:
            result = self._run_pass(pass_id)
        except (TransientError, TerminalError) as exc:
            error = exc  # expected kinds: `on_pass` reports them with the pass's outcome
        except Exception as exc:
            error = exc
            log.exception("pass failed with an unexpected %s (a bug)", type(exc).__name__)
        finished = self._clock.now()
        report = self._schedule(pass_id, trigger, started, finished, result, error)
        try:
            self._on_pass(report)  # updates what the activity watches
        except Exception:
            log.exception("recording pass %s failed", pass_id)
        if self._activity is not None:
            self._schedule_look(finished)
        return report

    def _schedule(
        self,
        pass_id: str,
        trigger: str,
        started: datetime,
        finished: datetime,
        result: PassResult | None,
        error: BaseException | None,
    ) -> PassReport:
        """Set the next resync, requeue and retry times from how the pass went."""
        settings = self.settings
        self._resync_at = finished + timedelta(seconds=settings.resync_seconds)
        if result is not None:
            self._requeue_at = self._requeue_from(result, finished)
        if error is not None:
            problems: tuple[str, ...] = (f"{type(error).__name__}: {error}",)
        else:
            assert result is not None
            problems = retryable_problems(result)
        retry_in: float | None = None
        if isinstance(error, TerminalError):
            self._retry_at = None  # retrying cannot help; a change or resync may
        elif problems:
            self._failures += 1
            retry_in = settings.backoff(self._failures, self._rng)
            self._retry_at = finished + timedelta(seconds=retry_in)
        else:
            self._failures = 0
            self._retry_at = None
        return PassReport(
            pass_id=pass_id,
            trigger=trigger,
            started_at=started,
            duration_seconds=(finished - started).total_seconds(),
            result=result,
            problems=problems,
            error=error,
            retry_in=retry_in,
        )

    def _requeue_from(self, result: PassResult, finished: datetime) -> datetime | None:
        """The loop-clock time of the plan's requeue request (conflicts: re-plan soon)."""
        settings = self.settings
        soonest = finished + timedelta(seconds=settings.min_requeue_seconds)
        if result.applied.conflicts:
            return soonest  # someone else wrote a run we planned for: re-read and re-plan
        if result.applied.unplaced:
            return finished  # plan the room for them now, not after their backoff
        if result.applied.deferred:
            return finished  # the pass budget ran out: carry on with a fresh plan
        wanted = result.plan.requeue_at
        if wanted is None:
            return None
        # requeue_at is in the pass's clock; carry the delay over to ours.
        delay = wanted - self._pass_clock.now()
        return max(soonest, finished + delay)
