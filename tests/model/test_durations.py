"""A user duration added to a time saturates at FAR_FUTURE instead of overflowing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.model.durations import FAR_FUTURE, FAR_PAST, is_never, plus_seconds

T = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "want"),
    [
        (0, T),
        (600, T + timedelta(seconds=600)),
        (-600, T - timedelta(seconds=600)),
        (2**31 - 1, T + timedelta(seconds=2**31 - 1)),  # 68 years: still a real time
        (10**12, FAR_FUTURE),  # past the year 9999: datetime + timedelta overflows
        (10**20, FAR_FUTURE),  # past timedelta's own range
        (10**400, FAR_FUTURE),  # larger than any float
        (-(10**20), FAR_PAST),
        (1.5, T + timedelta(seconds=1.5)),
    ],
)
def test_plus_seconds_saturates(seconds: int | float, want: datetime) -> None:
    assert plus_seconds(T, seconds) == want


def test_the_far_future_leaves_room_for_offsets_and_time_zones() -> None:
    """Code that adds a fixed offset to a saturated time must not overflow either."""
    later = plus_seconds(T, 10**12) + timedelta(days=365 * 900)
    assert later.astimezone(ZoneInfo("Pacific/Kiritimati")) > FAR_FUTURE  # UTC+14
    assert plus_seconds(FAR_FUTURE, 10**12) == FAR_FUTURE


def test_only_a_saturated_time_is_never() -> None:
    assert is_never(plus_seconds(T, 10**12))
    assert not is_never(plus_seconds(T, 10**9))  # 31 years away: it will come
