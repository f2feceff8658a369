"""How a pass summary carries guards over: until a healthy pass, within a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.state.ledger import GUARD_WINDOW, GuardWarning, PassSummary

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def summary(hours: float, *messages: str) -> PassSummary:
    at = T0 + timedelta(hours=hours)
    return PassSummary(at=at, revision="r", warnings=tuple(GuardWarning(m, at) for m in messages))


def test_the_first_pass_keeps_its_own_guards() -> None:
    assert summary(0, "a").carrying_over(None) == summary(0, "a")


def test_a_healthy_pass_clears_every_guard() -> None:
    assert summary(1).carrying_over(summary(0, "a", "b")).warnings == ()


def test_an_unhealthy_pass_keeps_earlier_guards_each_once_at_its_newest_time() -> None:
    carried = summary(2, "b", "c").carrying_over(summary(1, "a", "b"))
    assert carried.warnings == (
        GuardWarning("a", T0 + timedelta(hours=1)),
        GuardWarning("b", T0 + timedelta(hours=2)),
        GuardWarning("c", T0 + timedelta(hours=2)),
    )


def test_guards_older_than_the_window_are_dropped() -> None:
    hours = GUARD_WINDOW / timedelta(hours=1)
    carried = summary(hours + 1, "new").carrying_over(summary(0, "old"))
    assert [w.message for w in carried.warnings] == ["new"]
