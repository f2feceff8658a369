"""The planner is total: one run's numbers or one bad input never blocks another.

A schema-valid manifest may carry `activeDeadlineSeconds: 1000000000000`;
`datetime + timedelta` overflows past the year 9999, and that one run used to
crash every pass, so no other manifest ever started. Two defences, each a
table here: user durations saturate (a deadline or backoff that far away
never comes), and whatever else one run, or one CronJob, makes the planner
raise is contained to it: named in `Plan.errors`, left as it was, and every
other run is planned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from controller.model.build import job_spec_from_raw
from controller.model.durations import FAR_FUTURE
from controller.model.manifest import (
    ConcurrencyPolicy,
    CronJob,
    Kind,
    Metadata,
    RunKey,
    SourceLocation,
)
from controller.model.observed import ObservedState
from controller.model.run import LedgerView, Phase, Reason, RevisionRecord, RunRecord
from controller.plan.actions import (
    Action,
    DeregisterTaskDefinition,
    Plan,
    RecordRun,
    RegisterTaskDefinition,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.cronjobs import schedule_cron_jobs
from controller.plan.planner import DesiredInput, make_plan, needs
from controller.plan.prune import PruneSettings
from controller.plan.records import DesiredRun, with_run_task_result
from tests.plan.builders import (
    CLUSTER,
    FAMILY,
    NOW,
    OWNER,
    at,
    desired_run,
    ending,
    kinds,
    observed,
    revision,
    running,
    start,
    task,
    task_definition,
    taskdef_arn,
)

HUGE = [10**12, 10**20]  # past datetime's year 9999; past timedelta's own range


def listed() -> ObservedState:
    """ECS lists FAMILY with revision 7, which every inline spec here reuses."""
    return observed(
        task("t1", "RUNNING"),
        task("n1", "RUNNING"),
        families={FAMILY: (revision(7, tagged=True),)},
    )


def plan_of(
    *runs: DesiredRun,
    view: LedgerView | None = None,
    obs: ObservedState | None = None,
    now: Any = NOW,
    cron_jobs: dict[str, CronJob] | None = None,
    **options: Any,
) -> Plan:
    """One pass as `reconcile_once` makes it: CronJobs scheduled, then make_plan."""
    view = view or LedgerView()
    scheduled = schedule_cron_jobs(cron_jobs or {}, view, now)
    desired = DesiredInput(
        runs={**{r.key: r for r in runs}, **scheduled.runs},
        names=frozenset({r.key.name for r in runs} | set(cron_jobs or {})),
        cron=scheduled,
    )
    return make_plan(desired, obs or listed(), view, now, OWNER, **options)


def about(plan: Plan, name: str, run_id: str = "1") -> list[Action]:
    """The plan's actions about one run."""
    key = RunKey(name, run_id)
    return [a for a in plan.actions if getattr(a, "run", None) == key]


def saved(actions: list[Action]) -> RunRecord:
    """The last run record the actions would save."""
    found = [
        a.record
        for a in actions
        if isinstance(a, StartAttempt | ResumeAttempt | StopTasks | RecordRun)
    ]
    assert found, actions
    return found[-1]


def views(*records: RunRecord) -> LedgerView:
    """A ledger holding `records`."""
    return LedgerView(runs={r.key: r for r in records})


# -- huge durations saturate ------------------------------------------------------


@pytest.mark.parametrize("seconds", HUGE)
def test_a_huge_active_deadline_never_expires(seconds: int) -> None:
    huge = desired_run("huge", activeDeadlineSeconds=seconds)
    normal = desired_run("normal")
    plan = plan_of(huge, normal, view=views(running(huge)), now=at(3600))
    assert plan.errors == ()
    assert (saved(about(plan, "huge")).phase, saved(about(plan, "huge")).reason) == (
        Phase.RUNNING,
        Reason.RUNNING,
    )
    assert kinds(about(plan, "normal")) == ["StartAttempt"]
    assert plan.requeue_at is None  # a deadline in the year 9000 is no reason to wake up


@pytest.mark.parametrize("seconds", HUGE)
def test_a_huge_backoff_waits_and_asks_for_no_wakeup(seconds: int) -> None:
    huge = desired_run(
        "huge", backoffLimit=3, backoff={"initialSeconds": seconds, "maxSeconds": seconds}
    )
    record = running(huge)
    plan = plan_of(huge, view=views(record), obs=ending(record, "exit 1", at(60)), now=at(60))
    assert plan.errors == ()
    waiting = saved(about(plan, "huge"))
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, Reason.BACKOFF)
    assert waiting.not_before == FAR_FUTURE
    assert plan.requeue_at is None


@pytest.mark.parametrize("seconds", HUGE)
def test_a_huge_max_pending_keeps_retrying_on_the_backoff(seconds: int) -> None:
    huge = desired_run("huge", capacity={"maxPendingSeconds": seconds})
    record = with_run_task_result(start(huge), 1, unplaceable=("RESOURCE:MEMORY",), now=NOW)
    plan = plan_of(huge, view=views(record), now=at(5))
    assert plan.errors == ()
    waiting = saved(about(plan, "huge"))
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, Reason.UNSCHEDULABLE)
    assert waiting.not_before == NOW + timedelta(seconds=10)  # backoff.initialSeconds
    assert plan.requeue_at == waiting.not_before


# -- a planner failure stays with its run -----------------------------------------


class Unserializable:
    """A value no JSON encoder takes: hashing a spec holding it raises TypeError."""


@dataclass(frozen=True)
class Fault:
    """A run the planner fails on: what the source asks for and what the ledger holds."""

    runs: tuple[DesiredRun, ...]
    ledger: tuple[RunRecord, ...] = ()


def _unhashable_spec() -> Fault:
    td = {**task_definition(), "ephemeralStorage": {"sizeInGiB": Unserializable()}}
    return Fault((desired_run("bad", taskDefinition=td),))


def _unreadable_frozen_spec() -> Fault:
    bad = desired_run("bad")
    record = running(bad)
    frozen = {**(record.frozen_spec or {}), "activeDeadlineSeconds": "soon"}
    return Fault((bad,), (replace(record, frozen_spec=frozen),))


def _tags_that_are_not_tags() -> Fault:
    return Fault((desired_run("bad", tags=["not-a-tag"]),))


@pytest.mark.parametrize(
    "fault",
    [_unhashable_spec, _unreadable_frozen_spec, _tags_that_are_not_tags],
    ids=["spec-hash-raises", "frozen-spec-unreadable", "run-task-request-raises"],
)
def test_a_run_the_planner_fails_on_is_reported_and_the_others_are_planned(
    fault: Callable[[], Fault],
) -> None:
    bad = fault()
    normal = desired_run("normal")
    plan = plan_of(*bad.runs, normal, view=views(*bad.ledger), now=at(60))
    assert kinds(about(plan, "normal")) == ["StartAttempt"]
    assert about(plan, "bad") == []  # left as it was: nothing half-planned
    (error,) = plan.errors
    assert error.startswith("bad/1: cannot plan: ")
    assert "\n" not in error


def test_needs_skips_a_run_whose_spec_cannot_be_hashed() -> None:
    """The observer is still told what every other run needs (make_plan names the bad one)."""
    (bad,) = _unhashable_spec().runs
    other = desired_run("other", taskDefinition=task_definition(family="other"))
    got = needs(DesiredInput(runs={bad.key: bad, other.key: other}), LedgerView())
    assert got.families == frozenset({"other"})
    assert set(got.family_hashes) == {"other"}


def test_a_failed_run_holds_pruning_back() -> None:
    """What a run the planner failed on needs is unknown: no revision is deleted."""
    revisions = {
        taskdef_arn(n): RevisionRecord(taskdef_arn(n), FAMILY, n, f"{n:064d}", OWNER)
        for n in range(1, 9)
    }
    normal = desired_run("normal")
    settings = PruneSettings(keep_revisions=2)

    def deregistered(*runs: DesiredRun) -> list[Action]:
        view = LedgerView(revisions=revisions)
        plan = plan_of(*runs, view=view, prune=settings)
        return [a for a in plan.actions if isinstance(a, DeregisterTaskDefinition)]

    assert deregistered(normal)  # the table prunes when every run is planned
    plan = plan_of(
        *_unhashable_spec().runs,
        normal,
        view=LedgerView(revisions=revisions),
        prune=settings,
    )
    assert not [a for a in plan.actions if isinstance(a, DeregisterTaskDefinition)]
    assert any("could not be planned" in w for w in plan.warnings)


# -- one CronJob's schedule never stops another ------------------------------------


def cron_job(name: str, *, time_zone: str = "UTC") -> CronJob:
    """An every-minute Forbid CronJob whose template reuses revision 7."""
    return CronJob(
        metadata=Metadata(name),
        schedule="* * * * *",
        time_zone=time_zone,
        concurrency_policy=ConcurrencyPolicy.FORBID,
        starting_deadline_seconds=None,
        suspend=False,
        successful_runs_history_limit=3,
        failed_runs_history_limit=3,
        job_template=job_spec_from_raw({"cluster": CLUSTER, "taskDefinition": task_definition()}),
        source=SourceLocation(f"{name}.yaml", 1),
    )


def test_a_cron_job_whose_schedule_fails_is_reported_and_its_running_run_goes_on() -> None:
    # The loader refuses an unknown zone; a planner must not trust that.
    broken, fine = cron_job("broken", time_zone="Mars/Olympus_Mons"), cron_job("fine")
    last = NOW - timedelta(minutes=1)
    running_key = RunKey("broken", "20261128T0250Z")
    record = replace(
        running(desired_run("broken", "20261128T0250Z", kind=Kind.CRON_JOB)),
        key=running_key,
        kind=Kind.CRON_JOB,
    )
    view = LedgerView(
        runs={running_key: record},
        cron_last_scheduled={"broken": last, "fine": last},
    )
    plan = plan_of(
        view=view,
        now=NOW + timedelta(seconds=2),
        cron_jobs={"broken": broken, "fine": fine},
        stop_orphans=True,
    )
    assert kinds(about(plan, "fine", "20261128T0300Z")) == ["StartAttempt"]
    (error,) = plan.errors
    assert error.startswith("CronJob broken: cannot plan: ValueError: ")
    # Its running occurrence is neither orphaned nor stopped.
    assert [a for a in about(plan, "broken", "20261128T0250Z") if isinstance(a, StopTasks)] == []
    assert all(saved([a]).phase is Phase.RUNNING for a in about(plan, "broken", "20261128T0250Z"))
    assert not [a for a in plan.actions if isinstance(a, RegisterTaskDefinition)]
