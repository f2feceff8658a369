"""Per-call latency for the sandbox (`SANDBOX_LATENCY_MS`), and counting calls in flight.

moto answers in about a millisecond; ECS answers RunTask in 100-300 ms from
inside a region. A controller that makes its calls one after another looks
fine on the first and crawls on the second, so the sandbox can add the
second's latency to every request it serves:

    SANDBOX_LATENCY_MS=150                              every call: 150 ms
    SANDBOX_LATENCY_MS=150,ecs:RunTask:300,DescribeTasks:80
    SANDBOX_LATENCY_MS=ecs:150                          ECS calls only

A comma list of entries: a bare number is the default for every call, and
`SCOPE:MS` sets the calls of one scope (`scopes.py`: `ecs`, `RunTask`,
`ecs:RunTask`; the most specific wins). Milliseconds, fractions allowed;
`0` or an empty value: none.

The latency is spent in real time (`time.sleep`, whatever the sandbox's
clock: it is what a client waits on the wire, and it never moves the
sandbox's clock) and *outside* the sandbox's request lock, before the call
is handled, so requests in flight overlap as they do against AWS: a client
that makes 8 calls at once waits about one latency, not 8. The sandbox's own
setup calls (`INTERNAL_MARKER`) wait for nothing.

`InFlight` counts the calls being served, per (service, operation) and in
all, and keeps the peak of each: a test asserts that calls overlapped by
counting (`Sandbox.in_flight_peak`), never by timing.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from controller.sandbox.scopes import ScopedTable, parse_scope

#: The environment variable `Sandbox` and `python -m controller.sandbox` read.
LATENCY_VARIABLE = "SANDBOX_LATENCY_MS"


class Latency:
    """How long each call waits before it is served."""

    def __init__(self, default_ms: float = 0.0, table: ScopedTable[float] | None = None) -> None:
        self.default_ms = default_ms
        self._table: ScopedTable[float] = table if table is not None else ScopedTable()

    @classmethod
    def parse(cls, spec: str) -> Latency:
        """Read a `SANDBOX_LATENCY_MS` value (see the module's docstring); ValueError if bad."""
        default_ms = 0.0
        table: ScopedTable[float] = ScopedTable()
        for entry in (part.strip() for part in spec.split(",")):
            if not entry:
                continue
            scope_text, colon, milliseconds = entry.rpartition(":")
            value = _milliseconds(milliseconds, entry)
            if colon:
                try:
                    table.set(parse_scope(scope_text), value)
                except ValueError as error:
                    raise ValueError(f"{LATENCY_VARIABLE}: {entry!r}: {error}") from None
            else:
                default_ms = value
        return cls(default_ms, table)

    def seconds(self, service: str, operation: str) -> float:
        """The latency of one call of service/operation, in seconds."""
        milliseconds = self._table.lookup(service, operation)
        return (self.default_ms if milliseconds is None else milliseconds) / 1000

    def __bool__(self) -> bool:
        return self.default_ms > 0 or any(value > 0 for _, value in self._table.items())

    def __str__(self) -> str:
        entries = [f"{_number(self.default_ms)}"] if self.default_ms else []
        entries += [f"{scope}:{_number(value)}" for scope, value in self._table.items()]
        return ",".join(entries) or "0"


def _milliseconds(text: str, entry: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{LATENCY_VARIABLE}: {entry!r} is neither MS nor SCOPE:MS (e.g. 150, ecs:RunTask:300)"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{LATENCY_VARIABLE}: {entry!r}: milliseconds must be >= 0")
    return value


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


class InFlight:
    """Calls being served now, and the most there ever were at once."""

    def __init__(self) -> None:
        # Its own lock: counting must never wait for a request holding the sandbox's.
        self._lock = threading.Lock()
        self._now: Counter[tuple[str, str]] = Counter()
        self._peaks: Counter[tuple[str, str]] = Counter()
        self._total = 0
        self._total_peak = 0

    @contextmanager
    def track(self, key: tuple[str, str]) -> Iterator[None]:
        """Count the call `key` (service, operation) as in flight while the block runs."""
        with self._lock:
            self._now[key] += 1
            self._total += 1
            self._peaks[key] = max(self._peaks[key], self._now[key])
            self._total_peak = max(self._total_peak, self._total)
        try:
            yield
        finally:
            with self._lock:
                self._now[key] -= 1
                self._total -= 1

    def peak(self, key: tuple[str, str] | None = None) -> int:
        """The most calls of `key` in flight at once (of any operation, without `key`)."""
        with self._lock:
            return self._total_peak if key is None else self._peaks[key]

    def peaks(self) -> Counter[tuple[str, str]]:
        """The peak of every (service, operation) seen (a snapshot)."""
        with self._lock:
            return +self._peaks

    def reset(self) -> None:
        """Start the peaks again from the calls in flight now."""
        with self._lock:
            self._peaks = +self._now
            self._total_peak = self._total
