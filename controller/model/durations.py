"""Instants plus user-given durations, saturating instead of overflowing.

A manifest's durations (`activeDeadlineSeconds`, `backoff.*Seconds`,
`capacity.maxPendingSeconds`) are integers of any size, and
`datetime + timedelta` raises OverflowError past the year 9999 (timedelta
itself past about 2.7 million years). One such number must never crash a
pass, so every user duration is added to a time through `plus_seconds`,
which caps the sum at FAR_FUTURE: an instant no deadline or backoff can
reach in practice, read as "never". It lies a thousand years short of
`datetime.max`, so code that adds a fixed offset to it (a timer, a lease)
or converts it to a time zone cannot overflow either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Later than any time a run will see: a deadline or a retry capped here never comes.
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)
#: The same bound in the other direction, for a negative duration.
FAR_PAST = datetime(1000, 1, 1, tzinfo=UTC)


def plus_seconds(at: datetime, seconds: int | float) -> datetime:
    """`at` plus `seconds`, held within [FAR_PAST, FAR_FUTURE]: never an OverflowError."""
    # Compare before building a timedelta: the timedelta alone can overflow.
    if seconds >= (FAR_FUTURE - at).total_seconds():
        return FAR_FUTURE
    if seconds <= (FAR_PAST - at).total_seconds():
        return FAR_PAST
    return at + timedelta(seconds=seconds)


def is_never(at: datetime) -> bool:
    """True for a time capped at FAR_FUTURE: nothing should wait for it."""
    return at >= FAR_FUTURE
