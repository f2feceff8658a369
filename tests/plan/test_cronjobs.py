"""CronJobs in the whole pass: concurrencyPolicy is decided on what this pass observed.

Seen in production: an every-minute Forbid CronJob with a 2 s task, the pass
at 18:30:00 recorded `berlin-tick/20261201T1829Z Succeeded/Completed` and, in
the same pass, `berlin-tick/20261201T1830Z Failed/Missed: concurrencyPolicy
Forbid: ...1829Z still running` — the decision read the ledger as it was
before the pass. Each row here is one pass over (CronJob, ledger with the
previous occurrence started, what ECS shows of it now) -> plan, as
`reconcile_once` makes it: `schedule_cron_jobs`, then `make_plan`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.model.build import job_spec_from_raw
from controller.model.manifest import (
    ConcurrencyPolicy,
    CronJob,
    Kind,
    Metadata,
    RunKey,
    SourceLocation,
)
from controller.model.observed import ObservedState
from controller.model.run import LedgerView, Phase, Reason, RunRecord
from controller.plan.actions import Action, Plan, RecordRun, RecordSchedule, StartAttempt, StopTasks
from controller.plan.cronjobs import schedule_cron_jobs
from controller.plan.planner import DesiredInput, make_plan
from tests.plan.builders import (
    CLUSTER,
    FAMILY,
    OWNER,
    desired_run,
    ending,
    kinds,
    observed,
    revision,
    running,
    task,
    task_definition,
)

NAME = "berlin-tick"
PREVIOUS = "20261201T1829Z"
DUE = "20261201T1830Z"
STARTED = datetime(2026, 12, 1, 18, 29, 0, 500_000, tzinfo=UTC)  # the 18:29 pass
PASS = datetime(2026, 12, 1, 18, 30, 0, 200_000, tzinfo=UTC)  # the 18:30 pass
#: a template whose failed attempt is retried in 10 minutes
RETRY_LATER = {"backoffLimit": 1, "backoff": {"initialSeconds": 600, "maxSeconds": 600}}


def cron_job(policy: ConcurrencyPolicy, **template: Any) -> CronJob:
    """Every minute; its template reuses revision 7 of FAMILY."""
    raw = {"cluster": CLUSTER, "taskDefinition": task_definition(), **template}
    return CronJob(
        metadata=Metadata(NAME),
        schedule="* * * * *",
        time_zone="Europe/Berlin",
        concurrency_policy=policy,
        starting_deadline_seconds=None,
        suspend=False,
        successful_runs_history_limit=3,
        failed_runs_history_limit=3,
        job_template=job_spec_from_raw(raw),
        source=SourceLocation("tick.yaml", 1),
    )


def previous_run(**template: Any) -> RunRecord:
    """The 18:29 occurrence, started and placed by the 18:29 pass."""
    run = desired_run(NAME, PREVIOUS, kind=Kind.CRON_JOB, **template)
    return running(run, now=STARTED)


def seen(record: RunRecord, how: str) -> ObservedState:
    """What ECS shows of the 18:29 task at 18:30: still running, or ended `how` at 18:29:02."""
    families = {FAMILY: (revision(7, tagged=True),)}
    if how == "running":
        return observed(task("t1", "RUNNING"), families=families)
    ended = ending(record, how, STARTED + timedelta(seconds=2))
    return observed(*ended.tasks.values(), families=families)


def one_pass(cron: CronJob, record: RunRecord, obs: ObservedState) -> Plan:
    """The 18:30 pass: schedule, then plan (concurrency settled inside)."""
    view = LedgerView(
        runs={record.key: record},
        cron_last_scheduled={NAME: datetime(2026, 12, 1, 18, 29, tzinfo=UTC)},
    )
    scheduled = schedule_cron_jobs({NAME: cron}, view, PASS)
    desired = DesiredInput(runs=scheduled.runs, names=frozenset({NAME}), cron=scheduled)
    return make_plan(desired, obs, view, PASS, OWNER)


def about(plan: Plan, run_id: str) -> list[Action]:
    """The plan's actions about one occurrence."""
    key = RunKey(NAME, run_id)
    return [a for a in plan.actions if getattr(a, "run", None) == key]


def last_record(actions: list[Action]) -> RunRecord:
    """The record the actions leave in the ledger."""
    records = [a.record for a in actions if isinstance(a, StartAttempt | StopTasks | RecordRun)]
    assert records, actions
    return records[-1]


@pytest.mark.parametrize(
    ("policy", "how", "template", "previous_ends", "due"),
    [
        # Observed finished in this pass: no longer active, whatever the policy.
        (ConcurrencyPolicy.FORBID, "exit 0", {}, (Phase.SUCCEEDED, Reason.COMPLETED), "start"),
        (ConcurrencyPolicy.REPLACE, "exit 0", {}, (Phase.SUCCEEDED, Reason.COMPLETED), "start"),
        (ConcurrencyPolicy.ALLOW, "exit 0", {}, (Phase.SUCCEEDED, Reason.COMPLETED), "start"),
        (
            ConcurrencyPolicy.FORBID,
            "exit 3",
            {},
            (Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
            "start",
        ),
        # Still running, or failed with a retry to come: still active.
        (ConcurrencyPolicy.FORBID, "running", {}, (Phase.RUNNING, Reason.RUNNING), "missed"),
        (
            ConcurrencyPolicy.FORBID,
            "exit 3",
            RETRY_LATER,
            (Phase.PENDING, Reason.BACKOFF),
            "missed",
        ),
        (ConcurrencyPolicy.ALLOW, "running", {}, (Phase.RUNNING, Reason.RUNNING), "start"),
        (ConcurrencyPolicy.REPLACE, "running", {}, (Phase.FAILED, Reason.CANCELLED), "start"),
    ],
)
def test_concurrency_is_decided_on_the_runs_as_this_pass_observed_them(
    policy: ConcurrencyPolicy,
    how: str,
    template: dict[str, Any],
    previous_ends: tuple[Phase, Reason],
    due: str,
) -> None:
    record = previous_run(**template)
    plan = one_pass(cron_job(policy, **template), record, seen(record, how))
    previous = last_record(about(plan, PREVIOUS))
    assert (previous.phase, previous.reason) == previous_ends
    due_actions = about(plan, DUE)
    if due == "start":
        assert kinds(due_actions) == ["StartAttempt"]
    else:
        (missed,) = due_actions
        assert isinstance(missed, RecordRun)
        assert (missed.record.phase, missed.record.reason) == (Phase.FAILED, Reason.MISSED)
        assert missed.record.message == f"concurrencyPolicy Forbid: {NAME}/{PREVIOUS} still running"
    # Either way the occurrence is dealt with: the watermark moves to 18:30.
    (schedule,) = [a for a in plan.actions if isinstance(a, RecordSchedule)]
    assert schedule.last_scheduled == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert plan.errors == ()


def test_replace_stops_the_running_occurrence_saying_what_replaced_it() -> None:
    record = previous_run()
    plan = one_pass(cron_job(ConcurrencyPolicy.REPLACE), record, seen(record, "running"))
    (stop,) = [a for a in about(plan, PREVIOUS) if isinstance(a, StopTasks)]
    why = f"concurrencyPolicy Replace: replaced by {NAME}/{DUE}"
    assert stop.stop_reason == f"ecs-job-controller: {why}"  # what ECS records on the task
    assert stop.reason == why  # the event
    assert stop.record.message == why  # what status shows
    assert "--stop-orphans" not in stop.stop_reason
    assert kinds(about(plan, PREVIOUS)) == ["StopTasks"]  # planned once, stopped


def test_replace_does_not_stop_an_occurrence_this_pass_saw_finish() -> None:
    record = previous_run()
    plan = one_pass(cron_job(ConcurrencyPolicy.REPLACE), record, seen(record, "exit 0"))
    assert not [a for a in plan.actions if isinstance(a, StopTasks)]
    assert kinds(about(plan, PREVIOUS)) == ["RecordRun"]
    assert "replaced" not in last_record(about(plan, PREVIOUS)).message
    (schedule,) = [a for a in plan.actions if isinstance(a, RecordSchedule)]
    assert schedule.reason == f"start {DUE}"  # the decision stops nothing


def test_a_due_occurrence_held_back_by_forbid_registers_nothing() -> None:
    """The due run joins the observed needs, but it registers only when it starts."""
    cron = cron_job(ConcurrencyPolicy.FORBID)
    record = previous_run()
    empty_family = observed(task("t1", "RUNNING"), families={FAMILY: ()})
    plan = one_pass(cron, record, empty_family)
    assert "RegisterTaskDefinition" not in kinds(plan.actions)
    finished = ending(record, "exit 0", STARTED + timedelta(seconds=2))
    plan = one_pass(cron, record, observed(*finished.tasks.values(), families={FAMILY: ()}))
    assert kinds(plan.actions)[0] == "RegisterTaskDefinition"
    assert kinds(about(plan, DUE)) == ["StartAttempt"]
