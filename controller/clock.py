"""Time as an injected dependency.

The planner never reads the wall clock: `now` is an argument. The loop and
the sandbox take a Clock so tests can pass a FakeClock and never sleep.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from, and how to wait."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for `seconds` (a fake clock just advances)."""
        ...


class Timer(Protocol):
    """Elapsed time and waiting: what pacing and a pass's budget measure with."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for `seconds` (a fake clock just advances)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Seconds of time.monotonic()."""
        return time.monotonic()

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` of real time."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to; sleeping advances it instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._start = self._now
        # Workers of one pass sleep on it at once (pacing): advance atomically.
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Seconds the fake time moved since the clock was made."""
        return (self._now - self._start).total_seconds()

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the fake time by `seconds` without waiting."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the fake time forward."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
