"""The loop's scheduling, driven step by step with a FakeClock: nothing sleeps.

Each test scripts what the pass does (succeed, raise, ask for a requeue) and
reads back when the loop ran it and why.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from controller.apply.executor import ActionOutcome, ApplyResult, Outcome
from controller.clock import FakeClock
from controller.errors import TerminalError, TransientError
from controller.model.loader import LoadResult
from controller.model.manifest import DesiredSet, RunKey
from controller.plan.actions import Plan
from controller.runtime.log_format import configure_logging
from controller.runtime.loop import Loop, LoopSettings, PassReport
from controller.runtime.reconcile_pass import PassResult
from controller.sources.snapshot import Snapshot


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The `controller` loggers writing JSON lines into a buffer (restored afterwards)."""
    logger = logging.getLogger("controller")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()
    configure_logging("json", stream)
    yield stream
    logger.handlers[:], logger.level, logger.propagate = saved


def result(
    *,
    unplaced: int = 0,
    requeue_at: datetime | None = None,
    observe_errors: list[str] | None = None,
    stale: str | None = None,
    conflicts: list[str] | None = None,
    registrations: int = 0,
) -> PassResult:
    applied = ApplyResult(
        [ActionOutcome(c, Outcome.CONFLICT) for c in conflicts or []], counts=Counter()
    )
    if registrations:
        applied.counts["RegisterTaskDefinition"] = registrations
    applied.unplaced.extend(RunKey(f"job-{i}", "1") for i in range(unplaced))
    return PassResult(
        snapshot=Snapshot(revision="r1", stale=stale),
        loaded=LoadResult(desired=DesiredSet(), errors=()),
        plan=Plan(requeue_at=requeue_at),
        applied=applied,
        observe_errors=observe_errors or [],
    )


@dataclass
class FakeActivity:
    """Runs in flight while `in_flight`; a look reports the next scripted change (or none)."""

    clock: FakeClock
    period: float = 5.0
    in_flight: bool = True
    changes: dict[float, str] = field(default_factory=dict)
    looks: list[float] = field(default_factory=list)
    start: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.clock.now()

    def next_look_in(self) -> float | None:
        return self.period if self.in_flight else None

    def look(self) -> str | None:
        at = (self.clock.now() - self.start).total_seconds()
        self.looks.append(at)
        due = [t for t in self.changes if t <= at]
        return self.changes.pop(min(due)) if due else None


class FakeWaiter:
    """Waiting just moves the fake clock on."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)

    def wake(self) -> None:
        pass


@dataclass
class Harness:
    """A loop whose pass follows a script; records when each pass ran and why."""

    clock: FakeClock = field(default_factory=FakeClock)
    script: list[Callable[[], PassResult]] = field(default_factory=list)
    settings: LoopSettings = field(default_factory=lambda: LoopSettings(resync_seconds=60))
    reports: list[PassReport] = field(default_factory=list)
    poll: Callable[[], bool] | None = None
    activity: FakeActivity | None = None

    def __post_init__(self) -> None:
        self.start = self.clock.now()
        self.waiter = FakeWaiter(self.clock)
        self.loop = Loop(
            self._pass,
            clock=self.clock,
            settings=self.settings,
            waiter=self.waiter,
            poll=self.poll,
            on_pass=self.reports.append,
            rng=random.Random(7),
            id_prefix="t",
            activity=self.activity,
        )

    def _pass(self, pass_id: str) -> PassResult:
        return self.script.pop(0)() if self.script else result()

    def at(self) -> float:
        """Seconds since the harness started."""
        return (self.clock.now() - self.start).total_seconds()

    def until_pass(self, limit: int = 100) -> PassReport:
        """Step until the next pass runs; return its report."""
        for _ in range(limit):
            report = self.loop.run_once_or_wait()
            if report is not None:
                return report
        raise AssertionError("no pass within the step limit")

    def pass_times(self, count: int) -> list[float]:
        times = []
        for _ in range(count):
            self.until_pass()
            times.append(round(self.at(), 3))
        return times


def raise_(error: BaseException) -> Callable[[], PassResult]:
    def run() -> PassResult:
        raise error

    return run


class TickingClock(FakeClock):
    """A clock that moves on by a microsecond at every read, as a real one does."""

    def now(self) -> datetime:
        self.advance(1e-6)
        return super().now()


def test_the_start_pass_is_due_however_fast_the_clock_moves() -> None:
    h = Harness(clock=TickingClock())
    report = h.loop.run_once_or_wait()  # the very first step runs it: no spinning
    assert report is not None
    assert report.trigger == "start"


def test_the_first_pass_runs_at_once_then_every_resync_period() -> None:
    h = Harness()
    first = h.until_pass()
    assert (first.trigger, h.at(), first.pass_id, first.ok) == ("start", 0, "t-1", True)
    assert h.pass_times(3) == [60, 120, 180]
    assert [r.trigger for r in h.reports[1:]] == ["resync"] * 3


def test_a_burst_of_source_events_is_debounced_into_one_pass() -> None:
    h = Harness()
    h.until_pass()
    for _ in range(5):  # five events 100 ms apart: a `git pull` touching five files
        h.loop.notify("changed: a.yaml")
        h.clock.advance(0.1)
    report = h.until_pass()
    assert report.trigger == "changed: a.yaml"
    assert h.at() == pytest.approx(0.4 + 0.5)  # 500 ms after the last event
    assert h.loop.passes == 2
    # Nothing else is pending: the next pass is the resync.
    assert h.until_pass().trigger == "resync"
    assert h.loop.passes == 3


def test_constant_churn_cannot_postpone_a_pass_beyond_the_debounce_limit() -> None:
    h = Harness()
    h.until_pass()
    ran_at = []
    for _ in range(40):  # an event every 0.4 s for 16 s: never quiet for 0.5 s
        h.loop.notify("changed")
        h.clock.advance(0.4)
        if h.loop.run_once_or_wait() is not None:
            ran_at.append(round(h.at(), 1))
    assert ran_at, "the loop starved under constant churn"
    assert all(later - earlier <= 5.4 for earlier, later in pairwise([0.0, *ran_at]))


def test_events_during_a_pass_cause_exactly_one_more_pass() -> None:
    h = Harness()
    h.until_pass()

    def pass_with_events() -> PassResult:
        h.loop.notify("changed during the pass")
        h.loop.notify("changed during the pass")
        return result()

    h.loop.notify("first")
    h.script.append(pass_with_events)
    assert h.until_pass().trigger == "first"
    assert h.until_pass().trigger == "changed during the pass"
    assert h.until_pass().trigger == "resync"


def test_transient_errors_are_retried_with_growing_capped_delays() -> None:
    settings = LoopSettings(resync_seconds=60, backoff_initial_seconds=1, backoff_max_seconds=20)
    h = Harness(settings=settings)
    h.script = [raise_(TransientError("ECS throttled"))] * 7
    times = h.pass_times(8)
    delays = [b - a for a, b in pairwise(times)]
    assert all(later > earlier for earlier, later in pairwise(delays[:5])), delays
    assert all(0.8 * 2**n <= d <= 2**n for n, d in enumerate(delays[:5])), delays
    assert all(16 <= d <= 20 for d in delays[5:]), delays  # capped
    assert [r.ok for r in h.reports] == [False] * 7 + [True]
    assert h.reports[0].retry_in == pytest.approx(delays[0], abs=1e-3)
    assert "TransientError: ECS throttled" in h.reports[0].problems[0]
    # Success resets the backoff: the next pass is the resync.
    assert h.loop.failures == 0
    assert h.until_pass().trigger == "resync"
    assert h.at() - times[-1] == pytest.approx(60, abs=1e-2)


def test_the_backoff_never_exceeds_the_resync_period() -> None:
    settings = LoopSettings(resync_seconds=10, backoff_max_seconds=300)
    rng = random.Random(1)
    assert max(settings.backoff(n, rng) for n in range(1, 30)) <= 10


def test_a_terminal_error_is_reported_and_not_retried() -> None:
    h = Harness()
    h.script = [raise_(TerminalError("ledger schema is newer than this controller"))]
    report = h.until_pass()
    assert not report.ok
    assert report.retry_in is None
    assert isinstance(report.error, TerminalError)
    assert h.until_pass().trigger == "resync"
    assert h.at() == 60


def test_an_unexpected_exception_is_logged_with_the_pass_id_counted_and_retried(
    json_log: io.StringIO,
) -> None:
    h = Harness()
    h.script = [raise_(KeyError("bug"))]
    report = h.until_pass()
    assert not report.ok
    assert report.retry_in is not None
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    [line] = [x for x in lines if "unexpected KeyError" in x["message"]]
    assert line["pass"] == "t-1"
    assert line["level"] == "error"
    assert "KeyError: 'bug'" in line["exception"]
    retry = h.until_pass()
    assert retry.trigger.startswith("retry")
    assert retry.ok


def test_a_completed_pass_with_observe_errors_or_a_stale_source_is_retried() -> None:
    h = Harness()
    h.script = [
        lambda: result(observe_errors=["cluster batch: ThrottlingException"]),
        lambda: result(stale="manifests/: not readable"),
    ]
    first = h.until_pass()
    assert first.problems == ("observe: cluster batch: ThrottlingException",)
    second = h.until_pass()
    assert second.trigger.startswith("retry")
    assert "last good snapshot" in second.problems[0]
    assert h.until_pass().ok


def test_the_plans_requeue_time_is_honoured() -> None:
    h = Harness()
    h.script = [lambda: result(requeue_at=h.clock.now() + timedelta(seconds=7))]
    h.until_pass()
    report = h.until_pass()
    assert (report.trigger, h.at()) == ("requeue requested by the plan", 7)
    # No requeue asked this time: back to the resync period.
    assert h.until_pass().trigger == "resync"
    assert h.at() == 67


def test_a_requeue_time_in_the_past_waits_the_minimum_delay() -> None:
    h = Harness()
    h.script = [lambda: result(requeue_at=h.clock.now() - timedelta(seconds=30))]
    h.until_pass()
    assert h.until_pass().trigger == "requeue requested by the plan"
    assert h.at() == 1


def test_a_ledger_conflict_re_plans_soon() -> None:
    h = Harness()
    h.script = [lambda: result(conflicts=["RunTask a/1: version moved"])]
    assert h.until_pass().ok
    h.until_pass()
    assert h.at() == 1


def test_a_polled_source_that_changed_triggers_a_pass() -> None:
    answers = [False, False, True]
    polls: list[float] = []
    settings = LoopSettings(resync_seconds=60, poll_seconds=5)

    def poll() -> bool:
        polls.append(h.at())
        return answers.pop(0) if answers else False

    h = Harness(settings=settings, poll=poll)
    h.until_pass()
    report = h.until_pass()
    assert report.trigger == "source changed (poll)"
    assert h.at() == pytest.approx(10.5)  # the third poll at 10 s, then the debounce
    assert polls == [0, 5, 10]


def test_stop_lets_the_pass_in_flight_finish_and_then_run_returns() -> None:
    h = Harness()

    def pass_that_gets_a_sigterm() -> PassResult:
        h.loop.request_stop()
        return result(registrations=1)

    h.script = [pass_that_gets_a_sigterm]
    h.loop.run()  # returns: the stop was requested during the first pass
    assert len(h.reports) == 1
    assert h.reports[0].ok
    assert h.reports[0].result is not None
    assert h.loop.run_once_or_wait() is None


def test_terminal_action_failures_are_not_retried_but_transient_ones_are() -> None:
    from controller.apply.executor import ActionOutcome, ApplyResult, Outcome
    from controller.model.loader import LoadResult
    from controller.model.manifest import DesiredSet
    from controller.plan.actions import Plan
    from controller.runtime.loop import retryable_problems
    from controller.runtime.reconcile_pass import PassResult
    from controller.sources.snapshot import Snapshot

    applied = ApplyResult(
        [
            ActionOutcome("RunTask a", Outcome.TERMINAL, "bad"),
            ActionOutcome("RunTask b", Outcome.FAILED, "throttled"),
        ]
    )
    result = PassResult(Snapshot("r"), LoadResult(DesiredSet(), ()), Plan(), applied)
    assert retryable_problems(result) == ("action failed: RunTask b: throttled",)


# -- between passes: the cheap look at runs in flight ----------------------------------------


def test_runs_in_flight_are_looked_at_every_period_and_a_change_runs_a_pass_at_once() -> None:
    clock = FakeClock()
    activity = FakeActivity(clock, period=5.0, changes={12.0: "task abc STOPPED"})
    harness = Harness(clock=clock, activity=activity, settings=LoopSettings(resync_seconds=3600))
    assert harness.until_pass().trigger == "start"
    report = harness.until_pass()
    # Looks at 5 and 10 saw nothing; the one at 15 saw the stop and ran the pass then.
    assert activity.looks == [5.0, 10.0, 15.0]
    assert (report.trigger, harness.at()) == ("task abc STOPPED", 15.0)
    assert harness.loop.looks == 3


def test_a_slow_look_does_not_stretch_the_period() -> None:
    # A look at 1,000 runs takes about a second (ten DescribeTasks pages): the
    # next one still comes a period after this one began, not after it ended.
    clock = FakeClock()

    class Slow(FakeActivity):
        def look(self) -> str | None:
            change = super().look()
            clock.advance(1.0)
            return change

    activity = Slow(clock, period=5.0, changes={12.0: "task abc STOPPED"})
    harness = Harness(clock=clock, activity=activity, settings=LoopSettings(resync_seconds=3600))
    harness.until_pass()
    report = harness.until_pass()
    assert activity.looks == [5.0, 10.0, 15.0]
    assert (report.trigger, harness.at()) == ("task abc STOPPED", 16.0)


def test_nothing_in_flight_means_no_look_until_the_resync() -> None:
    clock = FakeClock()
    activity = FakeActivity(clock, in_flight=False)
    harness = Harness(clock=clock, activity=activity, settings=LoopSettings(resync_seconds=600))
    harness.until_pass()
    report = harness.until_pass()
    assert (report.trigger, harness.at(), activity.looks) == ("resync", 600.0, [])
    assert harness.loop.next_look is None


def test_look_now_looks_at_once_without_waiting_for_the_period() -> None:
    clock = FakeClock()
    activity = FakeActivity(clock, period=60.0, changes={0.0: "event: task abc STOPPED"})
    harness = Harness(clock=clock, activity=activity, settings=LoopSettings(resync_seconds=3600))
    harness.until_pass()
    clock.advance(2)
    harness.loop.look_now()
    report = harness.until_pass()
    assert (report.trigger, harness.at(), activity.looks) == ("event: task abc STOPPED", 2.0, [2.0])


def test_a_failing_loop_does_not_look_its_backoff_decides() -> None:
    clock = FakeClock()
    activity = FakeActivity(clock, period=1.0, changes={0.0: "task abc STOPPED"})
    harness = Harness(
        clock=clock,
        activity=activity,
        settings=LoopSettings(resync_seconds=3600, backoff_initial_seconds=8.0, backoff_jitter=0),
        script=[lambda: result(observe_errors=["cluster batch: throttled"])],
    )
    assert harness.until_pass().problems
    report = harness.until_pass()
    assert (report.trigger, harness.at(), activity.looks) == ("retry 1 after failure", 8.0, [])


def test_a_look_that_raises_is_logged_and_the_next_one_still_comes() -> None:
    clock = FakeClock()

    class Broken(FakeActivity):
        def look(self) -> str | None:
            super().look()
            if len(self.looks) == 1:
                raise RuntimeError("boom")
            return "task abc STOPPED"

    activity = Broken(clock, period=5.0)
    harness = Harness(clock=clock, activity=activity, settings=LoopSettings(resync_seconds=3600))
    harness.until_pass()
    report = harness.until_pass()
    assert (report.trigger, activity.looks) == ("task abc STOPPED", [5.0, 10.0])


def test_a_placement_failure_is_followed_by_a_pass_at_once() -> None:
    harness = Harness(
        settings=LoopSettings(resync_seconds=3600, min_requeue_seconds=1.0),
        script=[lambda: result(unplaced=2, requeue_at=None)],
    )
    harness.until_pass()
    report = harness.until_pass()
    assert (report.trigger, harness.at()) == ("requeue requested by the plan", 0.0)
