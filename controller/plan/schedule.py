"""When a CronJob's occurrences come due, and what to do about them (DESIGN.md §3).

Batch teams leave cron hosts because a cron host that is down silently skips
runs. Kubernetes CronJob, our reference, has three well-known failure modes:
runs skipped without a trace after downtime, a hard stop after 100 missed
schedules, and doubled or lost runs across daylight-saving changes. This
module is where we avoid all three.

Pure: no I/O, no wall clock (`now` is an argument), no ledger access. The
planner asks `decide` once per CronJob per pass and turns the returned
`ScheduleDecision` into ledger records and actions.

**Occurrences and run ids.** An occurrence is a scheduled instant; its run is
`NAME/<instant in UTC as YYYYMMDDTHHMMZ>` (`occurrence_run_id`). Cron matching
is cronsim's; this module never parses cron fields itself, except to look at
the first character of the hour field (below).

**Time zones and DST.** The schedule is read in the CronJob's IANA `timeZone`.
cronsim 2.8 handles DST like Debian cron, which we verified for
America/New_York (2026-03-08 gap 02:00-03:00, 2026-11-01 overlap 01:00-02:00)
and Europe/Berlin (2026-03-29 gap 02:00-03:00, 2026-10-25 overlap
02:00-03:00):

* a schedule with a fixed minute *and* hour ("30 2 * * *") is wall-clock: a
  time in a gap fires once at the end of the gap (02:30 -> 03:00 EDT, and
  "0 2,3 * * *" fires once at 03:00), a time in an overlap fires once, at its
  first instant (01:30 EDT, not 01:30 EST);
* a schedule whose minute or hour starts with `*` is run on elapsed time: it
  fires at every real instant whose local reading matches ("0 * * * *" fires
  at 01:00 EDT *and* 01:00 EST, 25 runs on a fall-back day and 23 on a
  spring-forward day: every real hour runs once, nothing is skipped, nothing
  doubled);
* but a fixed hour with a wildcard minute ("*/15 2 * * *") is skipped entirely
  in a gap and runs twice in an overlap; and cronsim's zone-aware iteration
  misses occurrences where clocks change by half an hour (Australia/Lord_Howe:
  "30 * * * *" loses the second 01:30 on 2026-04-05) and loops forever
  walking backwards across Pacific/Chatham's change at 03:45 (2026-04-05,
  "15 */2 * * *").

So we use cronsim only on naive local readings (pure calendar arithmetic,
exact in both directions) and map readings to instants ourselves, with the
PEP 495 `fold` rules of zoneinfo. The rule, decided by the hour field as
written (after macro expansion):

* hour field starting with `*` (every minute, @hourly, "*/10 * * * *"): the
  schedule measures elapsed time, every real instant whose reading matches is
  an occurrence, as in cronsim and Debian cron;
* any other hour field (a daily job, "*/15 2 * * *", "0 9-17 * * 1-5"): the
  schedule names wall-clock times, each matching reading is one occurrence:
  in an overlap at its first instant, in a gap at the instant the clocks
  jumped (several gap readings collapse into that one run). This agrees with
  cronsim wherever cronsim is right, and the tests cross-check it. Checked
  for every offset change of 2026 in every zone of the tz database: forward
  and backward walks agree with each other and with a minute-by-minute
  brute force (or, for fixed times, with cronsim).

Readings are mapped in one merge pass (`_walk`) that is exact as long as a
zone's clock does not jump forward and then back over the same readings
within a few hours (no zone's offset changes twice within two days between
1970 and 2040 in the tz database).

**Bounded work after downtime.** `decide` never walks the whole downtime.
It walks backwards from `now` through at most `max_listed_missed + 2`
occurrences (the latest, the ones to list, and one to know whether there are
more), so its cost does not depend on how long the controller was down. When
more occurrences were missed than `max_listed_missed` (default 100, the
number at which Kubernetes gives up; we do not), the newest ones are listed
one by one (they become Missed runs in the ledger and show in `status`) and
the older ones are summarised in one `MissedSummary` (count, first, last),
which the caller records as one event: a year of every-minute downtime does
not become half a million ledger rows. The summary's count is exact up to
`COUNT_BUDGET` occurrences and a flagged lower bound beyond. Measured on
a shared 2-core box (Python 3.11, cronsim 2.8), `decide` for "* * * * *" in
America/New_York after one year down (525,599 missed): about 50 ms, of which
about 0.8 ms is the backward walk and the rest the summary's count to 10,000;
after ten years down, the same. One occurrence costs about 5 µs.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from controller.model.build import cron_expression
from controller.model.manifest import ConcurrencyPolicy, CronJob, Kind
from controller.model.run import Phase, RunRecord

#: Missed occurrences listed one by one per decision; older ones are summarised.
MAX_LISTED_MISSED = 100

#: Occurrences counted, at most, for a MissedSummary (bounds the work of a
#: very long downtime; beyond it the count is a lower bound).
COUNT_BUDGET = 10_000

_RUN_ID_FORMAT = "%Y%m%dT%H%MZ"
_RUN_ID_PATTERN = re.compile(r"\d{8}T\d{4}Z")
_SECOND = timedelta(seconds=1)


def occurrence_run_id(at: datetime) -> str:
    """The run id of the occurrence scheduled at `at`: its UTC time as YYYYMMDDTHHMMZ."""
    return _utc(at, "at").strftime(_RUN_ID_FORMAT)


def parse_occurrence_run_id(run_id: str) -> datetime | None:
    """The UTC instant an occurrence run id names, or None if it is not one."""
    if not _RUN_ID_PATTERN.fullmatch(run_id):
        return None
    try:
        return datetime.strptime(run_id, _RUN_ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # well-formed but not a date, e.g. 20260230T0000Z
        return None


def occurrences(cron: CronJob, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """The first `limit` scheduled times t with after < t <= until, in UTC, ascending."""
    if limit <= 0:
        return []
    end = _utc(until, "until")
    upto = _takewhile_le(_walk(_Schedule.of(cron), _utc(after, "after"), forward=True), end)
    return list(islice(upto, limit))


def next_occurrence(cron: CronJob, after: datetime) -> datetime | None:
    """The first scheduled time after `after`, in UTC (None if none in 50 years)."""
    return next(_walk(_Schedule.of(cron), _utc(after, "after"), forward=True), None)


@dataclass(frozen=True)
class Occurrence:
    """One scheduled time of a CronJob and the run id it becomes."""

    run_id: str
    scheduled: datetime

    @classmethod
    def at(cls, scheduled: datetime) -> Occurrence:
        """The occurrence scheduled at `scheduled`."""
        return cls(occurrence_run_id(scheduled), scheduled)


@dataclass(frozen=True)
class MissedOccurrence:
    """An occurrence that will never run: becomes a Failed/Missed run in the ledger."""

    run_id: str
    scheduled: datetime
    message: str


@dataclass(frozen=True)
class MissedSummary:
    """Older missed occurrences, too many to record one by one: one event."""

    #: how many; a lower bound when `exact` is False (more than COUNT_BUDGET)
    count: int
    exact: bool
    first: datetime
    last: datetime
    message: str


@dataclass(frozen=True)
class ScheduleDecision:
    """What one evaluation of a CronJob decided; plain data for the planner.

    Everything is keyed by run id, so applying the same decision twice is
    harmless when the caller creates run records only where none exists.
    Record `last_scheduled` in the same ledger write as the runs it covers.
    """

    #: the occurrence to start now (at most one per evaluation)
    start: Occurrence | None
    #: run ids of this CronJob's active runs to stop (concurrencyPolicy Replace)
    stop: tuple[str, ...]
    #: why `stop` (for StopTask's reason and the run's message); "" when empty
    stop_reason: str
    #: missed occurrences to record as Missed runs, oldest first
    missed: tuple[MissedOccurrence, ...]
    #: missed occurrences older than `missed`, not listed one by one
    missed_summary: MissedSummary | None
    #: the watermark to record: every occurrence at or before it is dealt with
    #: (started, Missed, or passed while suspended); `created` until one came due
    last_scheduled: datetime
    #: when the next occurrence comes due: the loop should reconcile then
    next_wake: datetime | None
    #: one line for `diff` and the logs
    message: str

    @classmethod
    def idle(
        cls, last_scheduled: datetime, next_wake: datetime | None, message: str
    ) -> ScheduleDecision:
        """A decision that starts, stops and misses nothing (only moves the watermark)."""
        return cls(
            start=None,
            stop=(),
            stop_reason="",
            missed=(),
            missed_summary=None,
            last_scheduled=last_scheduled,
            next_wake=next_wake,
            message=message,
        )

    @property
    def missed_count(self) -> int:
        """How many occurrences this decision reports as missed (for the metric)."""
        summarised = self.missed_summary.count if self.missed_summary else 0
        return len(self.missed) + summarised


def decide(
    cron: CronJob,
    last_scheduled: datetime | None,
    created: datetime,
    now: datetime,
    active_run_ids: Collection[str],
    *,
    max_listed_missed: int = MAX_LISTED_MISSED,
) -> ScheduleDecision:
    """Which occurrence to start now, which are Missed, and what to remember.

    `last_scheduled` is the watermark a previous decision returned (None the
    first time: then nothing at or before `created`, when the controller
    first saw the CronJob, counts). Should the ledger hold an occurrence run
    newer than the recorded watermark (a crash between two writes), pass the
    newer time (`parse_occurrence_run_id` reads it from the run id).
    `active_run_ids` are the run ids of this CronJob's runs that are not
    finished, started or not. Rules (DESIGN.md §3):

    * only the latest due occurrence may start, and only if it is at most
      startingDeadlineSeconds old (no deadline when unset); every other due
      occurrence is Missed, so downtime never causes a burst of catch-up runs
      and never a silent skip;
    * suspend: nothing starts and nothing is Missed; occurrences passed while
      suspended are skipped on purpose (the watermark still advances, so
      resuming does not start them late);
    * concurrencyPolicy Allow starts regardless of active runs; Forbid records
      the due occurrence as Missed while another run is active (it is not
      retried later); Replace starts it and lists the active runs to stop.
    """
    schedule = _Schedule.of(cron)
    cap = max(max_listed_missed, 0)
    now = _utc(now, "now")
    window_start = _utc(last_scheduled if last_scheduled is not None else created, "watermark")
    # The common case, almost every pass of almost every CronJob: the first
    # occurrence after the watermark is still ahead. It is remembered per
    # (schedule, watermark), so such a pass costs a lookup, not a cron walk.
    upcoming = _first_after(schedule, window_start)
    if upcoming is None or upcoming > now:
        return ScheduleDecision.idle(
            window_start, upcoming, f"nothing due; next at {_show(upcoming)}"
        )
    # Newest first and bounded: the latest, up to max_listed_missed more to
    # list, and one more to know whether a summary is needed.
    recent = list(
        islice(
            _takewhile_gt(_walk(schedule, now, forward=False), window_start),
            cap + 2,
        )
    )
    watermark = recent[0] if recent else window_start
    # Also while suspended: waking at each occurrence keeps the watermark up
    # to date, so that resuming starts nothing that passed while suspended.
    next_wake = next(_walk(schedule, max(now, watermark), forward=True), None)
    if not recent:
        return ScheduleDecision.idle(
            watermark, next_wake, f"nothing due; next at {_show(next_wake)}"
        )
    latest = Occurrence.at(recent[0])
    if cron.suspend:
        message = f"suspended: {latest.run_id} and earlier skipped, not started"
        return ScheduleDecision.idle(watermark, next_wake, message)

    start: Occurrence | None = latest
    stop: tuple[str, ...] = ()
    stop_reason = ""
    latest_missed: str | None = None  # why the latest itself did not start
    # The due run itself may already exist (a crash between recording it and
    # recording the watermark): it is no conflict with itself.
    others = sorted(r for r in active_run_ids if r != latest.run_id)
    deadline = cron.starting_deadline_seconds
    late = (now - latest.scheduled).total_seconds()
    if deadline is not None and late > deadline:
        start = None
        latest_missed = (
            f"not started within startingDeadlineSeconds ({deadline}s): "
            f"{int(late)}s late (no pass ran in time: was the controller down?)"
        )
    elif others and cron.concurrency_policy is ConcurrencyPolicy.FORBID:
        start = None
        running = ", ".join(f"{cron.name}/{r}" for r in others)
        latest_missed = f"concurrencyPolicy Forbid: {running} still running"
    elif others and cron.concurrency_policy is ConcurrencyPolicy.REPLACE:
        stop = tuple(others)
        stop_reason = f"concurrencyPolicy Replace: replaced by {cron.name}/{latest.run_id}"

    superseded = (
        f"superseded: {latest.run_id} came due before this occurrence was started "
        "(no pass ran in between: was the controller down?); only the latest due "
        "occurrence may start"
    )
    missed_newest_first: list[MissedOccurrence] = []
    if latest_missed is not None:
        missed_newest_first.append(MissedOccurrence(latest.run_id, latest.scheduled, latest_missed))
    missed_newest_first.extend(
        MissedOccurrence(occurrence_run_id(t), t, superseded) for t in recent[1:]
    )
    listed = missed_newest_first[:cap]
    summary = None
    if len(missed_newest_first) > len(listed):
        summary = _summarise(
            schedule,
            window_start,
            last=missed_newest_first[len(listed)].scheduled,
            complete=len(recent) < cap + 2,
            known=len(missed_newest_first) - len(listed),
        )

    parts = [f"start {latest.run_id}" if start else f"{latest.run_id} not started"]
    if stop:
        parts.append(f"stop {', '.join(stop)}")
    missed_total = len(listed) + (summary.count if summary else 0)
    if missed_total:
        more = "" if summary is None or summary.exact else "more than "
        parts.append(f"{more}{missed_total} missed")
    return ScheduleDecision(
        start=start,
        stop=stop,
        stop_reason=stop_reason,
        missed=tuple(reversed(listed)),
        missed_summary=summary,
        last_scheduled=watermark,
        next_wake=next_wake,
        message="; ".join(parts),
    )


def history(
    cron: CronJob, runs: Iterable[RunRecord]
) -> tuple[tuple[RunRecord, ...], tuple[RunRecord, ...]]:
    """Split a CronJob's runs into those `status` shows and those it hides.

    The newest successfulRunsHistoryLimit Succeeded and the newest
    failedRunsHistoryLimit Failed runs are kept (Missed runs are Failed and
    count as such: after downtime, "missed" is what status should say);
    unfinished runs are always kept. The ledger keeps everything; this only
    decides what is shown. Runs of other manifests are ignored. Both tuples
    are oldest first, by scheduled time.
    """
    mine = sorted(
        (
            r
            for r in runs
            if r.key.name == cron.name and r.key.index is None and r.kind is Kind.CRON_JOB
        ),
        key=_run_order,
    )
    shown: set[str] = set()
    for phase, limit in (
        (Phase.SUCCEEDED, cron.successful_runs_history_limit),
        (Phase.FAILED, cron.failed_runs_history_limit),
    ):
        of_phase = [r.key.run_id for r in mine if r.phase is phase]
        shown.update(of_phase[max(len(of_phase) - limit, 0) :] if limit > 0 else [])
    kept = tuple(r for r in mine if not r.phase.terminal or r.key.run_id in shown)
    hidden = tuple(r for r in mine if r.phase.terminal and r.key.run_id not in shown)
    return kept, hidden


# --- internals ---------------------------------------------------------------


@dataclass(frozen=True)
class _Schedule:
    """A CronJob's schedule, compiled once per call: expression, zone, mode."""

    expression: str
    zone: ZoneInfo
    #: True: readings name wall-clock times (one occurrence each); False:
    #: every real instant whose reading matches is an occurrence
    wall_clock: bool

    @classmethod
    def of(cls, cron: CronJob) -> _Schedule:
        try:
            return _compiled(cron.schedule, cron.time_zone)
        except ValueError as exc:
            # The loader rejects these; reaching here is a caller's bug.
            raise ValueError(f"CronJob {cron.name}: {exc}") from exc

    def instants(self, reading: datetime) -> list[datetime]:
        """The UTC instants that the naive local `reading` stands for, ascending."""
        # PEP 495: fold=0 takes the offset before a transition, fold=1 the one
        # after; they differ only in a gap (fold 0 smaller) or an overlap.
        first, second = self._offsets(reading)
        if first == second:
            return [(reading - first).replace(tzinfo=UTC)]
        if first > second:  # overlap: the reading happens twice
            both = [(reading - first).replace(tzinfo=UTC), (reading - second).replace(tzinfo=UTC)]
            return both[:1] if self.wall_clock else both
        if not self.wall_clock:  # gap: the reading never happened
            return []
        # A wall-clock time in a gap runs when the clocks jumped.
        return [self._gap_end((reading - second).replace(tzinfo=UTC), first)]

    def _gap_end(self, before: datetime, offset_before: timedelta) -> datetime:
        """The first instant after `before` whose offset is no longer `offset_before`."""
        # `before` is in the gap's lead-in and the jump is less than a day
        # ahead (the largest ever, Samoa 2011, was one day): bisect on seconds.
        low, high = 0, 86_400
        while high - low > 1:
            middle = (low + high) // 2
            if (before + timedelta(seconds=middle)).astimezone(self.zone).utcoffset() == (
                offset_before
            ):
                low = middle
            else:
                high = middle
        return before + timedelta(seconds=high)

    def reading(self, instant: datetime) -> datetime:
        """The naive local clock reading at `instant`."""
        return instant.astimezone(self.zone).replace(tzinfo=None)

    def overlap(self, instant: datetime) -> timedelta:
        """How long the overlap is that `instant`'s reading falls in (zero if none)."""
        first, second = self._offsets(self.reading(instant))
        return abs(first - second)

    def _offsets(self, reading: datetime) -> tuple[timedelta, timedelta]:
        """The UTC offsets of a naive reading with fold=0 and fold=1."""
        local = reading.replace(tzinfo=self.zone, fold=0)
        first, second = local.utcoffset(), local.replace(fold=1).utcoffset()
        if first is None or second is None:  # a ZoneInfo always answers
            raise AssertionError(f"{self.zone} has no offset at {reading}")
        return first, second


@lru_cache(maxsize=4096)
def _compiled(schedule: str, time_zone: str) -> _Schedule:
    """A schedule compiled and checked once (pure: the same text, the same result)."""
    expression = cron_expression(schedule)
    try:
        zone = ZoneInfo(time_zone)
        CronSim(expression, datetime(2026, 1, 1))  # validates the expression
    except (ZoneInfoNotFoundError, ValueError, CronSimError) as exc:
        raise ValueError(f"bad schedule or time zone: {exc}") from exc
    fields = expression.split()
    if len(fields) != 5:
        # cronsim also takes a seconds field; run ids have minute precision,
        # so two occurrences in one minute would share a run.
        raise ValueError(f"schedule needs five fields: {schedule!r}")
    # cronsim and Debian cron decide by this same first character.
    return _Schedule(expression, zone, wall_clock=not fields[1].startswith("*"))


#: Enough for every CronJob of a very large source to hit between two of its
#: occurrences (an entry is ~200 bytes); a pure function's memo, so the
#: planner stays a function of its inputs.
_FIRST_AFTER_ENTRIES = 1 << 17


@lru_cache(maxsize=_FIRST_AFTER_ENTRIES)
def _first_after(schedule: _Schedule, instant: datetime) -> datetime | None:
    """The first occurrence strictly after `instant`, or None when there is none."""
    return next(_walk(schedule, instant, forward=True), None)


def _walk(schedule: _Schedule, origin: datetime, *, forward: bool) -> Iterator[datetime]:
    """Occurrences strictly after (forward) or at/before (backward) `origin`, in order.

    cronsim iterates naive readings; each maps to 0-2 instants. Readings'
    earliest instants grow with the reading (and so do their latest ones),
    but the second instant of an overlap reading comes after the first
    instants of the readings that follow it: a small heap holds those until
    the walk has passed them. Infinite for any schedule cronsim can match
    (cronsim stops after 50 years without a match); callers bound it.
    """
    if forward:
        # Start before the overlap `origin` may be in: its readings' second
        # instants can lie after `origin`. Readings are whole seconds.
        start = schedule.reading(origin) - schedule.overlap(origin)
        readings = CronSim(schedule.expression, start.replace(microsecond=0) - _SECOND)
    else:
        # Readings up to the end of an overlap may still have an instant
        # before `origin`. cronsim's reverse walk yields <= (start - 1 s).
        start = schedule.reading(origin) + schedule.overlap(origin)
        readings = CronSim(schedule.expression, start.replace(microsecond=0) + _SECOND, True)
    sign = 1 if forward else -1
    pending: list[tuple[float, datetime]] = []
    last: datetime | None = None

    def emit(upto: float) -> Iterator[datetime]:
        nonlocal last
        while pending and pending[0][0] <= upto:
            _, instant = heapq.heappop(pending)
            beyond = instant > origin if forward else instant <= origin
            fresh = last is None or (instant > last if forward else instant < last)
            if beyond and fresh:  # gap readings may collapse into one instant
                last = instant
                yield instant

    for reading in readings:
        found = schedule.instants(reading)
        if not found:
            continue
        for instant in found:
            heapq.heappush(pending, (sign * instant.timestamp(), instant))
        # Nothing from later readings can come before this reading's nearest
        # instant, so everything up to it is final.
        yield from emit(sign * (found[0] if forward else found[-1]).timestamp())
    yield from emit(float("inf"))


def _takewhile_le(instants: Iterator[datetime], bound: datetime) -> Iterator[datetime]:
    for instant in instants:
        if instant > bound:
            return
        yield instant


def _takewhile_gt(instants: Iterator[datetime], bound: datetime) -> Iterator[datetime]:
    for instant in instants:
        if instant <= bound:
            return
        yield instant


def _summarise(
    schedule: _Schedule, window_start: datetime, last: datetime, *, complete: bool, known: int
) -> MissedSummary:
    """Count the missed occurrences in (window_start, last], within COUNT_BUDGET."""
    upto = _takewhile_le(_walk(schedule, window_start, forward=True), last)
    first = next(upto)  # `last` itself is one, so there is a first
    if complete:  # the backward walk already reached window_start
        count, exact = known, True
    else:
        counted = 1 + sum(1 for _ in islice(upto, COUNT_BUDGET - 1))
        exact = counted < COUNT_BUDGET or next(upto, None) is None
        count = counted
    how_many = f"{count}" if exact else f"more than {count}"
    message = (
        f"{how_many} occurrences from {_show(first)} to {_show(last)} missed "
        "(no pass ran in time: was the controller down?); summarised, not recorded "
        "one by one"
    )
    return MissedSummary(count=count, exact=exact, first=first, last=last, message=message)


def _run_order(run: RunRecord) -> tuple[datetime, str]:
    scheduled = parse_occurrence_run_id(run.key.run_id)
    return (scheduled if scheduled is not None else run.created_at, run.key.run_id)


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


def _show(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%dT%H:%MZ")
