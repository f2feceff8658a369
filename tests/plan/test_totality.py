"""The planner is total: one run's numbers never block another.

A schema-valid manifest may carry `activeDeadlineSeconds: 1000000000000`;
`datetime + timedelta` overflows past the year 9999, and that one run used to
crash every pass, so no other manifest ever started. User durations saturate:
a deadline or backoff that far away never comes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.model.durations import FAR_FUTURE
from controller.model.manifest import (
    CronJob,
    RunKey,
)
from controller.model.observed import ObservedState
from controller.model.run import LedgerView, Phase, Reason, RunRecord
from controller.plan.actions import (
    Action,
    Plan,
    RecordRun,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.cronjobs import schedule_cron_jobs
from controller.plan.reconcile import DesiredInput, make_plan
from controller.plan.runs import DesiredRun, with_run_task_result
from tests.plan.builders import (
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
    waiting = saved(about(plan, "huge"))
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, Reason.BACKOFF)
    assert waiting.not_before == FAR_FUTURE
    assert plan.requeue_at is None


@pytest.mark.parametrize("seconds", HUGE)
def test_a_huge_max_pending_keeps_retrying_on_the_backoff(seconds: int) -> None:
    huge = desired_run("huge", capacity={"maxPendingSeconds": seconds})
    record = with_run_task_result(start(huge), 1, unplaceable=("RESOURCE:MEMORY",), now=NOW)
    plan = plan_of(huge, view=views(record), now=at(5))
    waiting = saved(about(plan, "huge"))
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, Reason.UNSCHEDULABLE)
    assert waiting.not_before == NOW + timedelta(seconds=10)  # backoff.initialSeconds
    assert plan.requeue_at == waiting.not_before
