"""Cancel requests (`controller stop`) and run origins in the planner (issue 15).

A run with a cancel request has its live tasks stopped — only those this
pass saw with the owner's tag — and, once nothing of it runs, ends
Failed/Cancelled with who and why, never retried. A oneshot run belongs to
no manifest: the full pass neither orphans nor supersedes it, and carries it
on (retries included) under its frozen spec. Tables of (desired, observed,
ledger, now) -> plan, no AWS.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from controller.model.manifest import RunKey
from controller.model.run import (
    AttemptOutcome,
    CancelRequest,
    LedgerView,
    Phase,
    Reason,
    RunOrigin,
    RunRecord,
)
from controller.plan.actions import RecordRun, StartAttempt, StopTasks
from controller.plan.planner import DesiredInput, make_plan
from controller.plan.records import DesiredRun
from tests.plan.builders import (
    FAMILY,
    NOW,
    OWNER,
    after_pass,
    at,
    desired_run,
    ending,
    kinds,
    ledger,
    observed,
    observed_task,
    revision,
    running,
    start,
    step,
    stopped,
    task,
)

REQUEST = CancelRequest(by="ana@ci-7", reason="wrong month", at=NOW)


def cancelled(record: RunRecord) -> RunRecord:
    """The record as `controller stop` saves it: the request, nothing else changed."""
    return replace(record, cancel=REQUEST)


def test_a_running_task_is_stopped_and_the_run_waits_for_it_to_stop() -> None:
    run = desired_run("job", backoffLimit=3)
    record = cancelled(running(run))
    live = observed(observed_task(task("t1", "RUNNING"), record.key, 1))

    actions, after = step(run, record, live, at(10))

    assert kinds(actions) == ["StopTasks"]
    (stop,) = actions
    assert isinstance(stop, StopTasks)
    assert stop.task_arns == (record.attempts[0].tasks[0].arn,)
    assert "cancelled by ana@ci-7: wrong month" in stop.stop_reason
    assert after is not None
    assert not after.phase.terminal  # Failed/Cancelled only once nothing runs


def test_once_the_stopped_task_is_seen_the_run_ends_cancelled_without_a_retry() -> None:
    run = desired_run("job", backoffLimit=3)
    record = cancelled(running(run))
    gone = observed(
        observed_task(stopped("t1", 137, stop_code="UserInitiated"), record.key, 1),
    )

    actions, after = step(run, record, gone, at(20))

    assert kinds(actions) == ["RecordRun"]
    assert after is not None
    assert (after.phase, after.reason) == (Phase.FAILED, Reason.CANCELLED)
    assert after.message == "cancelled by ana@ci-7: wrong month"
    (attempt,) = after.attempts
    assert attempt.outcome is AttemptOutcome.STOPPED  # never an attempt failure
    # The next pass (the loop's, or stop run again) leaves it alone: no attempt 2.
    assert step(run, after, gone, at(60))[0] == []


def test_a_task_without_the_owner_tag_is_never_stopped() -> None:
    run = desired_run("job")
    record = cancelled(running(run))
    foreign = observed(observed_task(task("t1", "RUNNING"), record.key, 1, owner="someone-else"))

    actions, after = step(run, record, foreign, at(10))

    assert not any(isinstance(a, StopTasks) for a in actions)
    assert after is not None
    assert not after.phase.terminal


def test_a_task_ecs_is_already_stopping_gets_no_second_stop_task() -> None:
    run = desired_run("job")
    record = cancelled(running(run))
    stopping = observed(observed_task(task("t1", "DEACTIVATING"), record.key, 1))

    actions, _ = step(run, record, stopping, at(10))

    assert not any(isinstance(a, StopTasks) for a in actions)


@pytest.mark.parametrize(
    "state",
    ["waiting", "backoff", "unanswered-intent"],
)
def test_a_run_with_nothing_running_ends_cancelled_at_once(state: str) -> None:
    run = desired_run("job", backoffLimit=3, suspend=state == "waiting")
    record: RunRecord
    obs = observed()
    if state == "waiting":
        _, first = step(run, None)
        assert first is not None
        record = first
    elif state == "backoff":
        record = running(run)
        record = after_pass(run, record, ending(record, "exit 3", at(30)), at(30))
        assert record.reason is Reason.BACKOFF
    else:
        record = start(run)  # intent recorded, RunTask never answered, no task found

    actions, after = step(run, cancelled(record), obs, at(60))

    assert kinds(actions) == ["RecordRun"]
    assert after is not None
    assert (after.phase, after.reason) == (Phase.FAILED, Reason.CANCELLED)
    assert len(after.attempts) == len(record.attempts)  # nothing started, nothing repeated
    if state == "backoff":
        assert after.attempts[0].outcome is AttemptOutcome.APPLICATION_FAILURE  # kept
    if state == "unanswered-intent":
        assert after.attempts[0].outcome is AttemptOutcome.STOPPED


def test_an_attempt_that_succeeded_before_the_stop_took_effect_is_a_success() -> None:
    run = desired_run("job")
    record = cancelled(running(run))
    done = observed(observed_task(stopped("t1", 0), record.key, 1))

    _, after = step(run, record, done, at(20))

    assert after is not None
    assert (after.phase, after.reason) == (Phase.SUCCEEDED, Reason.COMPLETED)


def test_the_full_pass_honours_a_cancel_request_as_well() -> None:
    run = desired_run("job")
    record = cancelled(running(run))
    live = observed(observed_task(task("t1", "RUNNING"), record.key, 1))

    plan = make_plan(DesiredInput(runs={run.key: run}), live, ledger(record), at(5), OWNER)

    assert kinds(plan.actions) == ["StopTasks"]


def test_a_cancelled_job_run_is_not_started_again_until_its_run_id_changes() -> None:
    run = desired_run("job")
    _, after = step(run, cancelled(start(run)), observed(), at(5))
    assert after is not None
    assert after.reason is Reason.CANCELLED

    same = make_plan(DesiredInput(runs={run.key: run}), observed(), ledger(after), at(60), OWNER)
    assert same.actions == ()

    new = desired_run("job", "2")
    obs = observed(families={FAMILY: (revision(7),)})
    changed = make_plan(DesiredInput(runs={new.key: new}), obs, ledger(after), at(60), OWNER)
    assert [type(a) for a in changed.actions if getattr(a, "run", None) == new.key] == [
        StartAttempt
    ]


# -- origins --------------------------------------------------------------------


def oneshot_run(name: str = "job", run_id: str = "oneshot-20261128T030000Z") -> DesiredRun:
    """A oneshot run of `name` (its manifest may or may not be in the source)."""
    return replace(desired_run(name, run_id, backoffLimit=1), origin=RunOrigin.ONESHOT)


def test_a_new_run_records_what_asked_for_it() -> None:
    record = start(oneshot_run())
    assert record.origin is RunOrigin.ONESHOT
    assert start(desired_run("job")).origin is RunOrigin.MANIFEST


@pytest.mark.parametrize(
    "source",
    [DesiredInput(names=frozenset({"other"})), "same-name-other-run-id"],
    ids=["manifest-absent", "manifest-with-another-run-id"],
)
def test_the_full_pass_never_orphans_nor_supersedes_a_oneshot_run(
    source: DesiredInput | str,
) -> None:
    record = running(oneshot_run())
    if isinstance(source, str):
        manifest = desired_run("job", "1")
        source = DesiredInput(runs={manifest.key: manifest}, names=frozenset({"job"}))
    live = observed(observed_task(task("t1", "RUNNING"), record.key, 1))

    plan = make_plan(source, live, ledger(record), at(30), OWNER, stop_orphans=True)

    mine = [a for a in plan.actions if getattr(a, "run", None) == record.key]
    assert not any(isinstance(a, StopTasks) for a in mine)
    for action in mine:
        assert isinstance(action, RecordRun)
        assert action.record.reason not in (Reason.ORPHANED, Reason.CANCELLED)
    assert plan.warnings == ()


def test_the_full_pass_retries_a_failed_oneshot_attempt_under_its_frozen_spec() -> None:
    record = running(oneshot_run())
    key = record.key
    failed = observed(observed_task(stopped("t1", 3, at_time=at(30)), key, 1))
    view = LedgerView(runs={key: record})
    source = DesiredInput(names=frozenset({"other"}))

    backoff = make_plan(source, failed, view, at(30), OWNER)
    (waiting,) = [a.record for a in backoff.actions if isinstance(a, RecordRun)]
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, Reason.BACKOFF)
    due = (waiting.not_before or NOW) + timedelta(seconds=1)

    retry = make_plan(source, observed(), LedgerView(runs={key: waiting}), due, OWNER)
    assert [type(a) for a in retry.actions] == [StartAttempt]
    (start_action,) = retry.actions
    assert isinstance(start_action, StartAttempt)
    assert start_action.attempt == 2
    assert start_action.record.origin is RunOrigin.ONESHOT


def test_restricting_the_view_keeps_only_the_named_runs() -> None:
    a, b = start(desired_run("a")), start(desired_run("b"))
    view = ledger(a, b)
    assert view.restricted_to(frozenset({a.key, RunKey("c", "1")})).runs == {a.key: a}
