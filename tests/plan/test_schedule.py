"""CronJob schedules (DESIGN.md §3): occurrences, DST, downtime, concurrency, history.

Pure tables with fixed datetimes: no sleeping, no wall clock. The rows are
the complaints Kubernetes CronJob users have: runs silently skipped after
downtime, the 100-missed-schedules cliff, runs doubled or lost across DST.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from cronsim import CronSim
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from controller.model.manifest import (
    ConcurrencyPolicy,
    CronJob,
    JobSpec,
    Kind,
    Metadata,
    RunKey,
    SourceLocation,
)
from controller.model.run import Phase, Reason, RunRecord
from controller.plan import schedule
from controller.plan.schedule import (
    MAX_LISTED_MISSED,
    Occurrence,
    decide,
    history,
    next_occurrence,
    occurrence_run_id,
    occurrences,
    parse_occurrence_run_id,
)

NAME = "nightly"
NY = "America/New_York"
BERLIN = "Europe/Berlin"


def cron(schedule_: str = "* * * * *", time_zone: str = "UTC", **fields: Any) -> CronJob:
    """A CronJob with defaults as the loader fills them in; `fields` override."""
    job = CronJob(
        metadata=Metadata(NAME),
        schedule=schedule_,
        time_zone=time_zone,
        concurrency_policy=ConcurrencyPolicy.FORBID,
        starting_deadline_seconds=None,
        suspend=False,
        successful_runs_history_limit=3,
        failed_runs_history_limit=3,
        job_template=JobSpec(cluster="batch"),
        source=SourceLocation("cron.yaml", 1),
    )
    return replace(job, **fields)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def z(text: str) -> datetime:
    """`2026-11-01T05:30` (UTC) as a datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def zs(*texts: str) -> list[datetime]:
    """Several `z` times."""
    return [z(t) for t in texts]


# --- run ids -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "run_id"),
    [
        (utc(2026, 11, 28, 3, 30), "20261128T0330Z"),
        # the scheduled time in UTC, whatever zone it is expressed in
        (datetime(2026, 11, 28, 3, 30, tzinfo=ZoneInfo("Asia/Tokyo")), "20261127T1830Z"),
        (utc(2028, 2, 29, 0, 0), "20280229T0000Z"),
    ],
)
def test_occurrence_run_id_is_the_utc_time(at: datetime, run_id: str) -> None:
    assert occurrence_run_id(at) == run_id
    assert parse_occurrence_run_id(run_id) == at


@pytest.mark.parametrize(
    "run_id",
    ["1", "20261128T0330", "20261128t0330z", "20260230T0000Z", "20261128T2460Z", " 20261128T0330Z"],
)
def test_parse_rejects_what_is_not_an_occurrence_run_id(run_id: str) -> None:
    assert parse_occurrence_run_id(run_id) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        occurrence_run_id(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        occurrences(cron(), datetime(2026, 1, 1), utc(2026, 1, 2), 5)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_run_ids_round_trip(naive: datetime) -> None:
    at = naive.replace(second=0, microsecond=0, tzinfo=UTC)
    run_id = occurrence_run_id(at)
    assert parse_occurrence_run_id(run_id) == at
    assert occurrence_run_id(parse_occurrence_run_id(run_id) or at) == run_id


# --- occurrences -------------------------------------------------------------


def test_every_minute() -> None:
    job = cron("* * * * *")
    got = occurrences(job, z("2026-11-28T10:00"), z("2026-11-28T10:05"), 100)
    assert got == zs(*(f"2026-11-28T10:0{m}" for m in range(1, 6)))
    # bounds: after exclusive, until inclusive; limit keeps the first ones
    assert occurrences(job, z("2026-11-28T10:00"), z("2026-11-28T10:05"), 2) == got[:2]
    assert occurrences(job, z("2026-11-28T10:00:00.5"), z("2026-11-28T10:01"), 9) == got[:1]
    assert occurrences(job, z("2026-11-28T10:05"), z("2026-11-28T10:05"), 9) == []
    assert occurrences(job, z("2026-11-28T10:00"), z("2026-11-28T10:05"), 0) == []


@pytest.mark.parametrize(
    ("time_zone", "after", "until", "want"),
    [
        # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT. Hourly measures
        # elapsed time: every real hour runs, 00:00, 01:00, 03:00 local.
        (
            NY,
            "2026-03-08T04:00",
            "2026-03-08T09:00",
            [
                "2026-03-08T05:00",
                "2026-03-08T06:00",
                "2026-03-08T07:00",
                "2026-03-08T08:00",
                "2026-03-08T09:00",
            ],
        ),
        # New York, 2026-11-01: 01:00-02:00 happens twice; both real hours run
        # (01:00 EDT = 05:00Z and 01:00 EST = 06:00Z), each once.
        (
            NY,
            "2026-11-01T03:00",
            "2026-11-01T08:00",
            [
                "2026-11-01T04:00",
                "2026-11-01T05:00",
                "2026-11-01T06:00",
                "2026-11-01T07:00",
                "2026-11-01T08:00",
            ],
        ),
        # Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        (
            BERLIN,
            "2026-03-28T22:00",
            "2026-03-29T03:00",
            [
                "2026-03-28T23:00",
                "2026-03-29T00:00",
                "2026-03-29T01:00",
                "2026-03-29T02:00",
                "2026-03-29T03:00",
            ],
        ),
        # Berlin, 2026-10-25: 02:00-03:00 happens twice (CEST, then CET).
        (
            BERLIN,
            "2026-10-24T22:00",
            "2026-10-25T03:00",
            [
                "2026-10-24T23:00",
                "2026-10-25T00:00",
                "2026-10-25T01:00",
                "2026-10-25T02:00",
                "2026-10-25T03:00",
            ],
        ),
    ],
)
def test_hourly_runs_every_real_hour_across_dst(
    time_zone: str, after: str, until: str, want: list[str]
) -> None:
    assert occurrences(cron("@hourly", time_zone), z(after), z(until), 100) == zs(*want)


def test_hourly_counts_23_and_25_runs_on_the_dst_days() -> None:
    job = cron("0 * * * *", NY)
    spring = occurrences(job, z("2026-03-08T04:59"), z("2026-03-09T03:59"), 100)
    autumn = occurrences(job, z("2026-11-01T03:59"), z("2026-11-02T04:59"), 100)
    assert (len(spring), len(autumn)) == (23, 25)


@pytest.mark.parametrize(
    ("expression", "time_zone", "after", "want"),
    [
        # A daily time inside the spring-forward gap runs once, when the clocks
        # jumped (03:00 EDT), not skipped; the days around it run at 02:30.
        ("30 2 * * *", NY, "2026-03-07T00:00", ["2026-03-07T07:30", "2026-03-08T07:00"]),
        ("30 2 * * *", NY, "2026-03-08T12:00", ["2026-03-09T06:30"]),
        ("30 2 * * *", BERLIN, "2026-03-28T00:00", ["2026-03-28T01:30", "2026-03-29T01:00"]),
        # A daily time inside the fall-back overlap runs once, at its first
        # instant (01:30 EDT), not again an hour later (01:30 EST).
        ("30 1 * * *", NY, "2026-10-31T00:00", ["2026-10-31T05:30", "2026-11-01T05:30"]),
        ("30 1 * * *", NY, "2026-11-01T05:30", ["2026-11-02T06:30"]),
        ("30 2 * * *", BERLIN, "2026-10-24T00:00", ["2026-10-24T00:30", "2026-10-25T00:30"]),
        ("30 2 * * *", BERLIN, "2026-10-25T00:30", ["2026-10-26T01:30"]),
        # Two gap-adjacent times collapse into one run at the jump.
        ("0 2,3 * * *", NY, "2026-03-08T00:00", ["2026-03-08T07:00", "2026-03-09T06:00"]),
        # Fixed hour, wildcard minute: wall-clock times too (cronsim alone
        # would skip the whole gap hour and run the overlap hour twice).
        ("*/15 2 * * *", NY, "2026-03-08T00:00", ["2026-03-08T07:00", "2026-03-09T06:00"]),
        (
            "*/15 1 * * *",
            NY,
            "2026-11-01T00:00",
            [
                "2026-11-01T05:00",
                "2026-11-01T05:15",
                "2026-11-01T05:30",
                "2026-11-01T05:45",
                "2026-11-02T06:00",
            ],
        ),
        # Asia/Tokyo has no DST: 03:30 JST is 18:30Z the day before.
        ("30 3 * * *", "Asia/Tokyo", "2026-11-27T00:00", ["2026-11-27T18:30", "2026-11-28T18:30"]),
        # Feb 29 fires only in leap years.
        ("0 0 29 2 *", "UTC", "2026-03-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00"]),
    ],
)
def test_wall_clock_schedules(expression: str, time_zone: str, after: str, want: list[str]) -> None:
    job = cron(expression, time_zone)
    got = occurrences(job, z(after), z(after) + timedelta(days=3650), len(want))
    assert got == zs(*want)
    assert next_occurrence(job, z(after)) == got[0]


@pytest.mark.parametrize(
    ("expression", "after", "want"),
    [
        # from the first 01:30 (EDT) the next hourly run is the second 01:00 (EST)
        ("0 * * * *", "2026-11-01T05:30", "2026-11-01T06:00"),
        # from the second 01:10 (EST), 01:45 EDT is already past
        ("45 * * * *", "2026-11-01T06:10", "2026-11-01T06:45"),
        ("45 1 * * *", "2026-11-01T06:10", "2026-11-02T06:45"),
    ],
)
def test_walking_forward_from_inside_the_overlap(expression: str, after: str, want: str) -> None:
    assert next_occurrence(cron(expression, NY), z(after)) == z(want)


def test_half_hour_dst_in_lord_howe_runs_both_real_half_hours() -> None:
    # Australia/Lord_Howe falls back 30 minutes (02:00 +11 -> 01:30 +1030) on
    # 2026-04-05; cronsim's zone-aware iteration misses the second 01:30.
    job = cron("30 * * * *", "Australia/Lord_Howe")
    got = occurrences(job, z("2026-04-04T13:00"), z("2026-04-04T17:00"), 10)
    local = [t.astimezone(ZoneInfo("Australia/Lord_Howe")).strftime("%H:%M%z") for t in got]
    assert local == ["00:30+1100", "01:30+1100", "01:30+1030", "02:30+1030", "03:30+1030"]


def test_chatham_fall_back_does_not_hang_decide() -> None:
    # cronsim's reverse iteration loops forever here; decide walks backwards.
    job = cron("15 */2 * * *", "Pacific/Chatham", concurrency_policy=ConcurrencyPolicy.ALLOW)
    got = decide(job, z("2026-04-04T11:00"), z("2026-01-01T00:00"), z("2026-04-04T16:00"), [])
    due = occurrences(job, z("2026-04-04T11:00"), z("2026-04-04T16:00"), 100)
    assert got.start == Occurrence.at(due[-1])
    assert [m.scheduled for m in got.missed] == due[:-1]


@pytest.mark.parametrize(
    ("macro", "after", "want"),
    [
        ("@yearly", "2026-11-28T10:17", "2027-01-01T00:00"),
        ("@annually", "2026-11-28T10:17", "2027-01-01T00:00"),
        ("@monthly", "2026-11-28T10:17", "2026-12-01T00:00"),
        ("@weekly", "2026-11-28T10:17", "2026-11-29T00:00"),  # 2026-11-29 is a Sunday
        ("@daily", "2026-11-28T10:17", "2026-11-29T00:00"),
        ("@midnight", "2026-11-28T10:17", "2026-11-29T00:00"),
        ("@hourly", "2026-11-28T10:17", "2026-11-28T11:00"),
        ("@HOURLY", "2026-11-28T10:17", "2026-11-28T11:00"),
    ],
)
def test_macros(macro: str, after: str, want: str) -> None:
    assert next_occurrence(cron(macro), z(after)) == z(want)


def test_macros_in_a_time_zone() -> None:
    assert next_occurrence(cron("@daily", "Asia/Tokyo"), z("2026-11-28T10:17")) == z(
        "2026-11-28T15:00"
    )


@pytest.mark.parametrize(
    ("expression", "time_zone", "message"),
    [
        ("0 * * * * *", "UTC", "five fields"),  # cronsim takes seconds; run ids cannot
        ("61 * * * *", "UTC", "bad schedule"),
        ("* * * * *", "Mars/Olympus_Mons", "bad schedule or time zone"),
    ],
)
def test_bad_schedules_are_a_caller_bug(expression: str, time_zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_occurrence(cron(expression, time_zone), z("2026-01-01T00:00"))


# --- decide ------------------------------------------------------------------

CREATED = z("2026-01-01T00:00")


def test_nothing_due() -> None:
    got = decide(cron(), z("2026-11-28T10:00"), CREATED, z("2026-11-28T10:00:30"), [])
    assert got.start is None
    assert got.missed == ()
    assert got.missed_summary is None
    assert got.last_scheduled == z("2026-11-28T10:00")
    assert got.next_wake == z("2026-11-28T10:01")
    assert got.missed_count == 0


def test_one_occurrence_due_starts_it() -> None:
    got = decide(cron(), z("2026-11-28T10:00"), CREATED, z("2026-11-28T10:01:02"), [])
    assert got.start == Occurrence("20261128T1001Z", z("2026-11-28T10:01"))
    assert (got.missed, got.stop) == ((), ())
    assert got.last_scheduled == z("2026-11-28T10:01")
    assert got.next_wake == z("2026-11-28T10:02")
    # level-triggered: the same pass again, with the recorded watermark, does nothing
    again = decide(
        cron(), got.last_scheduled, CREATED, z("2026-11-28T10:01:02"), ["20261128T1001Z"]
    )
    assert (again.start, again.missed) == (None, ())


def test_three_hours_down_starts_only_the_latest_and_records_the_rest() -> None:
    job = cron("* * * * *", starting_deadline_seconds=600)
    got = decide(job, z("2026-11-28T10:00"), CREATED, z("2026-11-28T13:00:20"), [])
    assert got.start == Occurrence.at(z("2026-11-28T13:00"))
    assert got.missed_count == 179  # 10:01 .. 12:59
    # the newest 100 are listed one by one (they become Missed runs) ...
    assert len(got.missed) == MAX_LISTED_MISSED
    assert got.missed[0].scheduled == z("2026-11-28T11:20")
    assert got.missed[-1].scheduled == z("2026-11-28T12:59")
    assert got.missed[-1].run_id == "20261128T1259Z"
    assert "superseded: 20261128T1300Z" in got.missed[-1].message
    # ... and the 79 older ones are one summary (one event)
    summary = got.missed_summary
    assert summary is not None
    assert (summary.count, summary.exact) == (79, True)
    assert (summary.first, summary.last) == (z("2026-11-28T10:01"), z("2026-11-28T11:19"))
    assert got.last_scheduled == z("2026-11-28T13:00")
    assert got.next_wake == z("2026-11-28T13:01")


def test_a_larger_listing_cap_lists_every_missed_occurrence() -> None:
    job = cron("* * * * *", starting_deadline_seconds=600)
    now = z("2026-11-28T13:00:20")
    got = decide(job, z("2026-11-28T10:00"), CREATED, now, [], max_listed_missed=500)
    assert len(got.missed) == 179
    assert got.missed_summary is None
    assert len({m.run_id for m in got.missed}) == 179


def test_downtime_beyond_the_deadline_starts_nothing_and_misses_everything() -> None:
    job = cron("0 * * * *", starting_deadline_seconds=600)
    got = decide(job, z("2026-11-28T10:00"), CREATED, z("2026-11-28T13:20"), [])
    assert got.start is None
    assert [m.run_id for m in got.missed] == ["20261128T1100Z", "20261128T1200Z", "20261128T1300Z"]
    assert "startingDeadlineSeconds (600s): 1200s late" in got.missed[-1].message
    assert got.last_scheduled == z("2026-11-28T13:00")
    assert got.next_wake == z("2026-11-28T14:00")


@pytest.mark.parametrize(("late", "starts"), [(0, True), (600, True), (601, False)])
def test_the_starting_deadline_is_inclusive(late: int, starts: bool) -> None:
    job = cron("0 * * * *", starting_deadline_seconds=600)
    now = z("2026-11-28T11:00") + timedelta(seconds=late)
    got = decide(job, z("2026-11-28T10:00"), CREATED, now, [])
    assert (got.start is not None) is starts
    assert got.missed_count == (0 if starts else 1)


def test_without_a_deadline_a_year_of_downtime_still_starts_the_latest_once() -> None:
    job = cron("* * * * *", NY)
    got = decide(job, z("2025-11-28T00:00"), CREATED, z("2026-11-28T00:00:30"), [])
    assert got.start == Occurrence.at(z("2026-11-28T00:00"))
    assert len(got.missed) == MAX_LISTED_MISSED
    summary = got.missed_summary
    assert summary is not None
    # counting half a million occurrences is what we refuse to do: a lower bound
    assert (summary.count, summary.exact) == (schedule.COUNT_BUDGET, False)
    assert summary.first == z("2025-11-28T00:01")
    assert "more than 10000 occurrences" in summary.message
    assert got.last_scheduled == z("2026-11-28T00:00")


def test_the_summary_count_stops_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedule, "COUNT_BUDGET", 50)
    job = cron("* * * * *")
    over = decide(job, z("2026-11-28T10:00"), CREATED, z("2026-11-28T13:00"), [])
    assert over.missed_summary is not None
    assert (over.missed_summary.count, over.missed_summary.exact) == (50, False)
    # exactly the budget: still exact
    edge = decide(job, z("2026-11-28T10:00"), CREATED, z("2026-11-28T12:31"), [])
    assert edge.missed_summary is not None
    assert (edge.missed_summary.count, edge.missed_summary.exact) == (50, True)


@pytest.mark.parametrize(
    ("created", "now", "start", "missed"),
    [
        # first seen after 10:00: 10:00 is not missed, nothing is due yet
        ("2026-11-28T10:00:30", "2026-11-28T10:00:40", None, []),
        # first seen exactly at an occurrence: it does not count either
        ("2026-11-28T10:00", "2026-11-28T10:00:10", None, []),
        # first evaluated a while after being seen: counts from `created`
        (
            "2026-11-28T10:00:30",
            "2026-11-28T10:03:10",
            "20261128T1003Z",
            ["20261128T1001Z", "20261128T1002Z"],
        ),
    ],
)
def test_first_evaluation_counts_from_created(
    created: str, now: str, start: str | None, missed: list[str]
) -> None:
    got = decide(cron(), None, z(created), z(now), [])
    assert (got.start.run_id if got.start else None) == start
    assert [m.run_id for m in got.missed] == missed
    # the watermark is recorded even when nothing came due
    assert got.last_scheduled == (z(created) if start is None else parse_occurrence_run_id(start))


def test_forbid_skips_and_records_the_due_occurrence_while_a_run_is_active() -> None:
    job = cron("0 * * * *", concurrency_policy=ConcurrencyPolicy.FORBID)
    got = decide(job, z("2026-11-28T02:00"), CREATED, z("2026-11-28T03:00:05"), ["20261128T0200Z"])
    assert got.start is None
    assert got.stop == ()
    assert len(got.missed) == 1
    assert got.missed[0].run_id == "20261128T0300Z"
    assert got.missed[0].message == "concurrencyPolicy Forbid: nightly/20261128T0200Z still running"
    assert got.last_scheduled == z("2026-11-28T03:00")  # not retried later


def test_forbid_starts_when_nothing_is_active() -> None:
    job = cron("0 * * * *", concurrency_policy=ConcurrencyPolicy.FORBID)
    got = decide(job, z("2026-11-28T02:00"), CREATED, z("2026-11-28T03:00:05"), [])
    assert got.start == Occurrence.at(z("2026-11-28T03:00"))


def test_the_due_run_is_no_conflict_with_itself() -> None:
    # a crash after recording 03:00's run but before the watermark: same answer
    job = cron("0 * * * *", concurrency_policy=ConcurrencyPolicy.FORBID)
    got = decide(job, z("2026-11-28T02:00"), CREATED, z("2026-11-28T03:00:05"), ["20261128T0300Z"])
    assert got.start == Occurrence.at(z("2026-11-28T03:00"))
    assert got.missed == ()


def test_replace_starts_and_lists_the_active_runs_to_stop() -> None:
    job = cron("0 * * * *", concurrency_policy=ConcurrencyPolicy.REPLACE)
    active = ["20261128T0200Z", "20261128T0100Z"]
    got = decide(job, z("2026-11-28T02:00"), CREATED, z("2026-11-28T03:00:05"), active)
    assert got.start == Occurrence.at(z("2026-11-28T03:00"))
    assert got.stop == ("20261128T0100Z", "20261128T0200Z")
    assert got.stop_reason == "concurrencyPolicy Replace: replaced by nightly/20261128T0300Z"
    assert got.missed == ()


def test_replace_stops_nothing_when_the_occurrence_is_past_its_deadline() -> None:
    job = cron(
        "0 * * * *", concurrency_policy=ConcurrencyPolicy.REPLACE, starting_deadline_seconds=60
    )
    got = decide(job, z("2026-11-28T02:00"), CREATED, z("2026-11-28T03:05"), ["20261128T0200Z"])
    assert (got.start, got.stop) == (None, ())
    assert [m.run_id for m in got.missed] == ["20261128T0300Z"]


def test_allow_starts_regardless_of_active_runs() -> None:
    job = cron("0 * * * *", concurrency_policy=ConcurrencyPolicy.ALLOW)
    got = decide(job, z("2026-11-28T02:00"), CREATED, z("2026-11-28T03:00:05"), ["20261128T0200Z"])
    assert got.start == Occurrence.at(z("2026-11-28T03:00"))
    assert (got.stop, got.missed) == ((), ())


def test_suspended_starts_nothing_misses_nothing_and_advances_the_watermark() -> None:
    job = cron("0 * * * *", suspend=True, starting_deadline_seconds=600)
    got = decide(job, z("2026-11-28T00:00"), CREATED, z("2026-11-28T03:00:05"), [])
    assert (got.start, got.stop, got.missed, got.missed_summary) == (None, (), (), None)
    assert got.last_scheduled == z("2026-11-28T03:00")
    assert got.next_wake == z("2026-11-28T04:00")
    assert "suspended" in got.message
    # resumed at 03:30: the occurrences passed while suspended do not start late
    resumed = decide(
        replace(job, suspend=False), got.last_scheduled, CREATED, z("2026-11-28T03:30"), []
    )
    assert (resumed.start, resumed.missed) == (None, ())
    assert resumed.next_wake == z("2026-11-28T04:00")


def test_a_watermark_in_the_future_holds_everything_until_then() -> None:
    # clock skew between replicas: never start anything twice
    got = decide(cron(), z("2026-11-28T10:05"), CREATED, z("2026-11-28T10:02:30"), [])
    assert (got.start, got.missed) == (None, ())
    assert got.last_scheduled == z("2026-11-28T10:05")
    assert got.next_wake == z("2026-11-28T10:06")


def test_dst_gap_occurrence_is_started_once_at_the_jump() -> None:
    job = cron("30 2 * * *", NY)
    got = decide(job, z("2026-03-07T07:30"), CREATED, z("2026-03-08T07:00:10"), [])
    assert got.start == Occurrence("20260308T0700Z", z("2026-03-08T07:00"))
    assert got.next_wake == z("2026-03-09T06:30")


@pytest.mark.parametrize(
    ("expression", "last", "now"),
    [
        # now in the second pass of the overlap: the first pass's later
        # readings (01:15-01:45 EDT) are already past and must be accounted for
        ("*/15 * * * *", "2026-11-01T04:50", "2026-11-01T06:10"),
        ("*/15 * * * *", "2026-11-01T03:50", "2026-11-01T07:10"),
        ("45 1 * * *", "2026-10-31T05:45", "2026-11-01T06:10"),
        ("*/15 2 * * *", "2026-03-07T07:45", "2026-03-08T07:10"),
        ("* * * * *", "2026-03-08T06:50", "2026-03-08T07:10"),
    ],
)
def test_decide_around_dst_accounts_for_every_occurrence(
    expression: str, last: str, now: str
) -> None:
    job = cron(expression, NY, concurrency_policy=ConcurrencyPolicy.ALLOW)
    got = decide(job, z(last), CREATED, z(now), [], max_listed_missed=1000)
    due = occurrences(job, z(last), z(now), 1000)
    assert due
    assert got.start == Occurrence.at(due[-1])
    assert [m.scheduled for m in got.missed] == due[:-1]


def test_decide_a_year_down_is_bounded() -> None:
    # not a benchmark (see the module docstring for the timing): proves the
    # walk is bounded by the listing cap and the count budget, not the downtime
    job = cron("* * * * *", NY, starting_deadline_seconds=600)
    got = decide(job, z("2025-11-28T00:00"), CREATED, z("2026-11-28T00:00:30"), [])
    assert got.start is not None
    assert got.missed_count == MAX_LISTED_MISSED + schedule.COUNT_BUDGET


# --- history -----------------------------------------------------------------


def record(run_id: str, phase: Phase, *, name: str = NAME, kind: Kind = Kind.CRON_JOB) -> RunRecord:
    """A ledger record of one run of the CronJob."""
    when = parse_occurrence_run_id(run_id) or CREATED
    reason = {
        Phase.SUCCEEDED: Reason.COMPLETED,
        Phase.FAILED: Reason.BACKOFF_LIMIT_EXCEEDED,
    }.get(phase, Reason.RUNNING)
    return RunRecord(
        key=RunKey(name, run_id),
        kind=kind,
        phase=phase,
        reason=reason,
        message="",
        created_at=when,
        updated_at=when,
        spec_digest="d",
    )


def test_history_keeps_the_newest_of_each_outcome_and_every_unfinished_run() -> None:
    runs = [
        record("20261128T0100Z", Phase.SUCCEEDED),
        record("20261128T0200Z", Phase.FAILED),
        record("20261128T0300Z", Phase.SUCCEEDED),
        record("20261128T0400Z", Phase.FAILED),
        record("20261128T0500Z", Phase.SUCCEEDED),
        record("20261128T0600Z", Phase.RUNNING),
        record("20261128T0000Z", Phase.PENDING),
        record("20261128T0700Z", Phase.SUCCEEDED, name="other"),
        record("20261128T0800Z", Phase.SUCCEEDED, kind=Kind.JOB_RUN),
    ]
    job = cron(successful_runs_history_limit=2, failed_runs_history_limit=1)
    kept, hidden = history(job, reversed(runs))
    assert [r.key.run_id for r in kept] == [
        "20261128T0000Z",
        "20261128T0300Z",
        "20261128T0400Z",
        "20261128T0500Z",
        "20261128T0600Z",
    ]
    assert [r.key.run_id for r in hidden] == ["20261128T0100Z", "20261128T0200Z"]


@pytest.mark.parametrize(
    ("succeeded_limit", "failed_limit", "kept"),
    [
        (0, 0, []),
        (10, 10, ["20261128T0100Z", "20261128T0200Z", "20261128T0300Z"]),
        (1, 0, ["20261128T0300Z"]),
        (0, 1, ["20261128T0200Z"]),
    ],
)
def test_history_limits(succeeded_limit: int, failed_limit: int, kept: list[str]) -> None:
    runs = [
        record("20261128T0100Z", Phase.SUCCEEDED),
        record("20261128T0200Z", Phase.FAILED),
        record("20261128T0300Z", Phase.SUCCEEDED),
    ]
    job = cron(
        successful_runs_history_limit=succeeded_limit, failed_runs_history_limit=failed_limit
    )
    shown, hidden = history(job, runs)
    assert [r.key.run_id for r in shown] == kept
    assert len(shown) + len(hidden) == 3


# --- properties --------------------------------------------------------------

ZONES = sorted(available_timezones())

MINUTES = st.sampled_from(["*", "*", "*", "0", "30", "*/15", "5,35", "0-10/5", "59", "*/7"])
HOURS = st.sampled_from(["*", "*", "2", "1,2,3", "*/6", "0-23", "1-3", "*/2", "0"])
DAYS = st.sampled_from(["*", "1", "15", "29", "L", "1-7", "*/10"])
MONTHS = st.sampled_from(["*", "2", "3,10,11", "*/3", "1-6"])
WEEKDAYS = st.sampled_from(["*", "0", "1-5", "SUN", "6", "5L", "1#2"])
MACROS = st.sampled_from(["@yearly", "@monthly", "@weekly", "@daily", "@hourly"])


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """A schedule cronsim accepts: five fields or a macro."""
    if draw(st.integers(0, 9)) == 0:
        return draw(MACROS)
    text = " ".join(draw(f) for f in (MINUTES, HOURS, DAYS, MONTHS, WEEKDAYS))
    try:
        CronSim(text, datetime(2026, 1, 1))
    except Exception:  # any refusal means: not a schedule to test
        assume(False)
    return text


INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@cache
def transitions(time_zone: str, year: int) -> tuple[datetime, ...]:
    """The instants (to the hour) at which `time_zone` changed its offset in `year`."""
    zone = ZoneInfo(time_zone)
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    before = at.astimezone(zone).utcoffset()
    while at.year == year:
        at += timedelta(hours=1)
        offset = at.astimezone(zone).utcoffset()
        if offset != before:
            found.append(at)
            before = offset
    return tuple(found)


@st.composite
def zoned_instants(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and an instant, half of the time within hours of one of its DST changes."""
    time_zone = draw(st.sampled_from(ZONES))
    instant = draw(INSTANTS)
    changes = transitions(time_zone, instant.year) if draw(st.booleans()) else ()
    if changes:
        near = draw(st.sampled_from(changes))
        instant = near + timedelta(seconds=draw(st.integers(-4 * 3600, 4 * 3600)))
    return time_zone, instant


@settings(max_examples=150, deadline=None)
@given(
    expression=expressions(),
    where=zoned_instants(),
    span_minutes=st.integers(0, 3 * 24 * 60),
    limit=st.integers(1, 400),
)
def test_occurrences_are_increasing_unique_and_in_bounds(
    expression: str, where: tuple[str, datetime], span_minutes: int, limit: int
) -> None:
    time_zone, after = where
    job = cron(expression, time_zone)
    until = after + timedelta(minutes=span_minutes)
    got = occurrences(job, after, until, limit)
    assert len(got) <= limit
    assert all(after < t <= until for t in got)
    assert all(a < b for a, b in pairwise(got))
    assert all(t.tzinfo is UTC and t.second == 0 and t.microsecond == 0 for t in got)
    if got:
        assert next_occurrence(job, after) == got[0]
        # continuing from any occurrence gives the rest
        assert occurrences(job, got[0], until, limit - 1) == got[1:]


@settings(max_examples=150, deadline=None)
@given(
    expression=expressions(),
    where=zoned_instants(),
    down_minutes=st.integers(0, 36 * 60),
    deadline=st.none() | st.integers(1, 6 * 3600),
    policy=st.sampled_from(list(ConcurrencyPolicy)),
    active=st.booleans(),
    cap=st.integers(0, 5),
)
def test_decide_starts_at_most_the_latest_and_accounts_for_every_occurrence(
    expression: str,
    where: tuple[str, datetime],
    down_minutes: int,
    deadline: int | None,
    policy: ConcurrencyPolicy,
    active: bool,
    cap: int,
) -> None:
    time_zone, last = where
    job = cron(expression, time_zone, starting_deadline_seconds=deadline, concurrency_policy=policy)
    now = last + timedelta(minutes=down_minutes, seconds=17)
    running = ["19990101T0000Z"] if active else []
    got = decide(job, last, CREATED, now, running, max_listed_missed=cap)
    due = occurrences(job, last, now, 100_000)
    if got.start is not None:
        # only ever the latest, never one older than the deadline
        assert got.start.scheduled == due[-1]
        assert deadline is None or (now - got.start.scheduled).total_seconds() <= deadline
    # nothing is silently skipped: started + missed = due
    assert (1 if got.start else 0) + got.missed_count == len(due)
    assert len(got.missed) <= cap
    listed = [m.scheduled for m in got.missed]
    assert listed == sorted(set(listed))
    assert got.start is None or got.start.scheduled not in listed
    if got.missed_summary is not None:
        assert got.missed_summary.exact
        assert got.missed_summary.first == due[0]
        assert not listed or got.missed_summary.last < listed[0]
    assert got.last_scheduled == (due[-1] if due else last)
    assert got.next_wake is None or got.next_wake > now
    if policy is ConcurrencyPolicy.REPLACE and got.start is not None:
        assert got.stop == tuple(running)
    else:
        assert got.stop == ()


@settings(max_examples=100, deadline=None)
@given(
    minute=st.sampled_from(["0", "30", "15,45", "59"]),
    hour=st.sampled_from(["0", "1", "2", "3", "1,2", "0-4", "22,23"]),
    where=zoned_instants(),
)
def test_fixed_times_agree_with_cronsims_own_dst_handling(
    minute: str, hour: str, where: tuple[str, datetime]
) -> None:
    time_zone, after = where
    # For fixed minute and hour cronsim handles DST itself (Debian cron's
    # rules); our reading-by-reading mapping must give the same instants.
    expression = f"{minute} {hour} * * *"
    until = after + timedelta(days=3)
    theirs: list[datetime] = []
    for local in CronSim(expression, after.astimezone(ZoneInfo(time_zone))):
        instant = local.astimezone(UTC)
        if instant > until:
            break
        # cronsim resumes from the wall reading, so a start inside an overlap
        # can yield a time before `after`; and equal instants are one run
        if instant > after and (not theirs or instant > theirs[-1]):
            theirs.append(instant)
    assert occurrences(cron(expression, time_zone), after, until, 1000) == theirs
