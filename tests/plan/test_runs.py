"""The run lifecycle of DESIGN.md §4, one table row per transition.

`controller.plan.lifecycle` decides when ECS is asked to start a task, the one
write that must happen exactly once per attempt, and what phase a run is in
afterwards. Each row here is (desired, ledger, observed, now) -> actions with
no AWS at all (STYLE.md §3), so a wrong transition shows up as a failing row
rather than as a second task in somebody's cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.model.identity import client_token
from controller.model.manifest import Kind, RunKey
from controller.model.run import AttemptOutcome, Phase, Reason, RunRecord, TaskRecord
from controller.plan.actions import (
    Action,
    RecordRun,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.lifecycle import plan_run
from controller.plan.outcome import attempt_outcome
from controller.plan.records import DesiredRun, with_run_task_result, with_stopped_tasks
from tests.plan.builders import (
    CLUSTER,
    NOW,
    OWNER,
    TD_ARN,
    after_pass,
    at,
    context,
    desired_run,
    ending,
    kinds,
    observed,
    observed_task,
    placed,
    running,
    start,
    step,
    stopped,
    task,
    task_arn,
    taskdef_arn,
)

OURS = (
    "ecs-job-controller/owner",
    "ecs-job-controller/kind",
    "ecs-job-controller/run",
    "ecs-job-controller/run-id",
    "ecs-job-controller/attempt",
)


def only(actions: Sequence[Action], kind: type[Any]) -> Any:
    """The single action of the plan, checked to be of `kind`."""
    assert len(actions) == 1, kinds(actions)
    assert isinstance(actions[0], kind), kinds(actions)
    return actions[0]


def through(
    run: DesiredRun, endings: Sequence[str], *, gap: float = 60
) -> tuple[list[Action], RunRecord, datetime]:
    """Start, place and end one attempt per entry of `endings`, waiting out each backoff.

    Returns the last pass's actions, the ledger after it and when the last
    attempt ended.
    """
    record: RunRecord | None = None
    now = NOW
    actions: list[Action] = []
    for number, how in enumerate(endings, start=1):
        if record is not None:
            assert record.not_before is not None, (number, record.phase, record.reason)
            now = record.not_before
        actions, record = step(run, record, now=now)
        assert kinds(actions) == ["StartAttempt"], (number, kinds(actions))
        assert record is not None
        record = placed(record, task(f"a{number}", "RUNNING"), now=now)
        now += timedelta(seconds=gap)
        actions, record = step(run, record, ending(record, how, now), now)
    assert record is not None
    return actions, record, now


# -- a new run ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.JOB_RUN, Kind.CRON_JOB], ids=["JobRun", "CronJob"])
def test_a_new_run_records_its_intent_and_starts_attempt_one(kind: Kind) -> None:
    """The intent carries token, startedBy, our five tags, user tags and pass-through fields."""
    run = desired_run(
        "backfill-orders",
        "2026-11",
        kind=kind,
        count=3,
        launchType="EC2",
        group="batch-jobs",
        propagateTags="TASK_DEFINITION",
        enableExecuteCommand=True,
        placementStrategy=[{"type": "binpack", "field": "memory"}],
        overrides={"containerOverrides": [{"name": "app", "command": ["x"]}]},
        tags=[{"key": "team", "value": "data"}],
    )
    start_attempt = only(plan_run(run, None, context(run)), StartAttempt)
    token = hashlib.sha256(b"team-a/backfill-orders/2026-11/1").hexdigest()

    assert (start_attempt.attempt, start_attempt.pending_spec_hash) == (1, None)
    record = start_attempt.record
    assert (record.phase, record.reason) == (Phase.PENDING, Reason.STARTING)
    assert record.frozen_spec == run.spec.raw
    assert record.task_definition_arn == TD_ARN
    (attempt,) = record.attempts
    assert (attempt.number, attempt.client_token, attempt.intent_at) == (1, token, NOW)
    assert not attempt.submitted
    assert attempt.task_definition_arn == TD_ARN
    assert attempt.request == {
        "cluster": CLUSTER,
        "taskDefinition": TD_ARN,
        "count": 3,
        "startedBy": "ejc/team-a",
        "clientToken": token,
        "launchType": "EC2",
        "group": "batch-jobs",
        "propagateTags": "TASK_DEFINITION",
        "enableExecuteCommand": True,
        "placementStrategy": [{"type": "binpack", "field": "memory"}],
        "overrides": {"containerOverrides": [{"name": "app", "command": ["x"]}]},
        "tags": [
            {"key": "ecs-job-controller/owner", "value": "team-a"},
            {"key": "ecs-job-controller/kind", "value": kind.value},
            {"key": "ecs-job-controller/run", "value": "backfill-orders"},
            {"key": "ecs-job-controller/run-id", "value": "2026-11"},
            {"key": "ecs-job-controller/attempt", "value": "1"},
            {"key": "team", "value": "data"},
        ],
    }


@pytest.mark.parametrize(
    ("name", "run_id", "attempt", "text"),
    [
        ("nightly", "1", 1, "team-a/nightly/1/1"),
        ("nightly", "1", 2, "team-a/nightly/1/2"),
        ("nightly", "20261128T0330Z", 10, "team-a/nightly/20261128T0330Z/10"),
    ],
    ids=["first", "second-attempt", "cron-occurrence"],
)
def test_client_token_is_sha256_of_owner_name_run_id_attempt(
    name: str, run_id: str, attempt: int, text: str
) -> None:
    token = client_token(OWNER, RunKey(name, run_id), attempt)
    assert token == hashlib.sha256(text.encode()).hexdigest()
    assert len(token) == 64


def test_a_user_tag_cannot_impersonate_ours() -> None:
    run = desired_run(
        tags=[{"key": "ecs-job-controller/owner", "value": "mallory"}, {"key": "a", "value": "b"}]
    )
    request = start(run).attempts[0].request
    assert [t["key"] for t in request["tags"]] == [*OURS, "a"]
    assert {"key": "ecs-job-controller/owner", "value": OWNER} in request["tags"]


# -- suspend -----------------------------------------------------------------------


def test_a_suspended_run_is_recorded_pending_and_never_started() -> None:
    run = desired_run(suspend=True)
    actions, record = step(run, None)
    recorded = only(actions, RecordRun)
    assert (recorded.record.phase, recorded.record.reason) == (Phase.PENDING, Reason.SUSPENDED)
    assert not recorded.record.attempts
    # Planning again changes nothing; unsuspending starts attempt 1.
    assert step(run, record, now=at(3600))[0] == []
    resumed = desired_run(suspend=False)
    assert kinds(step(resumed, record, now=at(3600))[0]) == ["StartAttempt"]


def test_suspend_between_attempts_holds_the_retry_but_not_a_running_attempt() -> None:
    _, record, _ = through(desired_run(backoffLimit=1), ["exit 3"])
    assert record.not_before is not None
    suspended = desired_run(backoffLimit=1, suspend=True)
    recorded = only(step(suspended, record, now=record.not_before)[0], RecordRun)
    assert (recorded.record.phase, recorded.record.reason) == (Phase.PENDING, Reason.SUSPENDED)

    live = running(desired_run())
    actions, after = step(desired_run(suspend=True), live, observed(task("t1", "RUNNING")))
    assert kinds(actions) == ["RecordRun"]  # no StopTasks, no new attempt
    assert after is not None
    assert (after.phase, after.reason) == (Phase.RUNNING, Reason.RUNNING)


# -- crash recovery: an intent without RunTask's answer ----------------------------

RUN = desired_run()
KEY = RUN.key


@pytest.mark.parametrize(
    ("obs", "after", "want_kinds", "want_phase", "want_reason"),
    [
        (
            observed(observed_task(task("t9", "RUNNING"), KEY, 1)),
            60,
            ["RecordRun"],
            Phase.RUNNING,
            Reason.RUNNING,
        ),
        (
            observed(observed_task(task("t9", "PENDING"), KEY, 1)),
            60,
            ["RecordRun"],
            Phase.PENDING,
            Reason.STARTING,
        ),
        (
            observed(observed_task(stopped("t9", 0), KEY, 1)),
            3600,
            ["RecordRun"],
            Phase.SUCCEEDED,
            Reason.COMPLETED,
        ),
        (
            observed(observed_task(task("t9"), KEY, 1, owner="team-b")),
            60,
            ["ResumeAttempt"],
            None,
            None,
        ),
        (observed(observed_task(task("t9"), KEY, 2)), 60, ["ResumeAttempt"], None, None),
        (
            observed(observed_task(task("t9"), RunKey(KEY.name, "2"), 1)),
            60,
            ["ResumeAttempt"],
            None,
            None,
        ),
        (observed(), 3600, ["ResumeAttempt"], None, None),
        (observed(), 24 * 3600 - 1, ["ResumeAttempt"], None, None),
        (observed(), 24 * 3600, ["RecordRun"], Phase.PENDING, Reason.BACKOFF),
        (observed(unreadable=[CLUSTER]), 60, ["RecordRun"], Phase.PENDING, Reason.STARTING),
        (
            observed(unreadable=[CLUSTER]),
            30 * 3600,
            ["RecordRun"],
            Phase.PENDING,
            Reason.STARTING,
        ),
    ],
    ids=[
        "tagged-running-task-adopted",
        "tagged-pending-task-adopted",
        "tagged-stopped-task-adopted-and-judged",
        "other-owners-task-ignored",
        "other-attempts-task-ignored",
        "other-run-ids-task-ignored",
        "nothing-found-repeat-same-token",
        "nothing-found-just-inside-24h",
        "nothing-found-after-24h-is-infrastructure-failure",
        "cluster-unreadable-wait",
        "cluster-unreadable-even-after-24h-wait",
    ],
)
def test_an_intent_without_an_answer_is_resolved_before_anything_is_reissued(
    obs: Any,
    after: int,
    want_kinds: list[str],
    want_phase: Phase | None,
    want_reason: Reason | None,
) -> None:
    intent = start(RUN)
    actions, record = step(RUN, intent, obs, at(after))
    assert kinds(actions) == want_kinds
    assert record is not None
    assert len(record.attempts) == 1  # never a second attempt while one is unresolved
    if want_kinds == ["ResumeAttempt"]:
        resume = actions[0]
        assert isinstance(resume, ResumeAttempt)
        assert resume.attempt == 1
        assert resume.record == intent  # the same request and token, unchanged
    if want_phase is not None:
        assert (record.phase, record.reason) == (want_phase, want_reason)


def test_an_adopted_task_is_recorded_and_not_started_again() -> None:
    intent = start(RUN)
    obs = observed(observed_task(task("t9", "RUNNING"), KEY, 1))
    _, record = step(RUN, intent, obs, at(60))
    assert record is not None
    (attempt,) = record.attempts
    assert attempt.submitted
    assert attempt.task_arns == (task_arn("t9"),)
    assert attempt.client_token == intent.attempts[0].client_token
    assert step(RUN, record, obs, at(120))[0] == []


def test_an_expired_intent_is_a_failed_attempt_and_the_retry_is_a_new_attempt() -> None:
    intent = start(RUN)
    _, record = step(RUN, intent, observed(), at(24 * 3600))
    assert record is not None
    first = record.attempts[0]
    assert first.outcome is AttemptOutcome.INFRASTRUCTURE_FAILURE
    assert "24 h" in first.message
    assert record.not_before == at(24 * 3600 + 10)
    retry = only(step(RUN, record, observed(), record.not_before)[0], StartAttempt)
    assert retry.attempt == 2
    assert retry.record.attempts[1].client_token == client_token(OWNER, KEY, 2)
    assert retry.record.attempts[0] == first  # attempt 1 is never sent again


# -- phases while tasks run -------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "want_phase", "want_reason"),
    [
        (["PROVISIONING"], Phase.PENDING, Reason.STARTING),
        (["PENDING"], Phase.PENDING, Reason.STARTING),
        (["ACTIVATING"], Phase.PENDING, Reason.STARTING),
        (["PENDING", "PENDING"], Phase.PENDING, Reason.STARTING),
        (["RUNNING"], Phase.RUNNING, Reason.RUNNING),
        (["DEACTIVATING"], Phase.RUNNING, Reason.RUNNING),
        (["PENDING", "RUNNING"], Phase.RUNNING, Reason.RUNNING),
        (["STOPPED", "RUNNING"], Phase.RUNNING, Reason.RUNNING),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, list) else str(v),
)
def test_task_statuses_decide_pending_or_running(
    statuses: list[str], want_phase: Phase, want_reason: Reason
) -> None:
    shorts = [f"t{i}" for i in range(1, len(statuses) + 1)]
    record = running(RUN, *shorts)
    seen = [
        stopped(s, 0) if status == "STOPPED" else task(s, status)
        for s, status in zip(shorts, statuses, strict=True)
    ]
    actions, after = step(RUN, record, observed(*seen), at(30))
    assert kinds(actions) == ["RecordRun"]  # never a second attempt while one is live
    assert after is not None
    assert (after.phase, after.reason) == (want_phase, want_reason)
    assert after.attempts[0].outcome is None


# -- exit codes, backoffLimit and the backoff delay -------------------------------


@pytest.mark.parametrize(
    ("endings", "backoff_limit", "want_phase", "want_reason"),
    [
        (["exit 0"], 0, Phase.SUCCEEDED, Reason.COMPLETED),
        (["exit 3"], 0, Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
        (["exit 3"], 1, Phase.PENDING, Reason.BACKOFF),
        (["exit 3", "exit 0"], 1, Phase.SUCCEEDED, Reason.COMPLETED),
        (["exit 3", "exit 3"], 1, Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
        (["exit 1", "exit 1", "exit 1"], 2, Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
        (["exit 1", "exit 1"], 2, Phase.PENDING, Reason.BACKOFF),
        (["SpotInterruption"], 0, Phase.PENDING, Reason.BACKOFF),
        (["exit 3", "TaskFailedToStart"], 1, Phase.PENDING, Reason.BACKOFF),
        (["TaskFailedToStart", "exit 3"], 1, Phase.PENDING, Reason.BACKOFF),
        (["exit 3", "TaskFailedToStart", "exit 3"], 1, Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
        (["vanished", "exit 0"], 0, Phase.SUCCEEDED, Reason.COMPLETED),
    ],
    ids=[
        "success",
        "failure-no-retries",
        "failure-one-retry-left",
        "retry-succeeds",
        "second-failure-exceeds-limit-1",
        "third-failure-exceeds-limit-2",
        "second-failure-within-limit-2",
        "infrastructure-does-not-count",
        "infrastructure-after-app-failure",
        "app-failure-after-infrastructure",
        "only-app-failures-count",
        "vanished-then-success",
    ],
)
def test_outcomes_against_backoff_limit(
    endings: list[str], backoff_limit: int, want_phase: Phase, want_reason: Reason
) -> None:
    """A non-zero exit of a success container counts against backoffLimit; infrastructure not."""
    actions, record, _ = through(desired_run(backoffLimit=backoff_limit), endings)
    assert kinds(actions) == ["RecordRun"]
    assert (record.phase, record.reason) == (want_phase, want_reason)
    assert len(record.attempts) == len(endings)
    if want_phase.terminal:
        assert record.not_before is None
        assert record.finished_at is not None


def test_exceeding_backoff_limit_names_the_exit_code() -> None:
    _, record, _ = through(desired_run(backoffLimit=1), ["exit 3", "exit 42"])
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED)
    assert "exit code 42" in record.message
    assert "container app" in record.message


@pytest.mark.parametrize(
    ("failures", "initial", "maximum", "delay"),
    [(1, 10, 600, 10), (2, 10, 600, 20), (3, 10, 600, 40), (4, 10, 25, 25), (8, 10, 600, 600)],
    ids=["1st", "2nd", "3rd", "capped", "capped-at-default-max"],
)
def test_backoff_waits_initial_times_two_to_the_n_minus_one_capped(
    failures: int, initial: int, maximum: int, delay: int
) -> None:
    run = desired_run(backoffLimit=20, backoff={"initialSeconds": initial, "maxSeconds": maximum})
    _, record, ended = through(run, ["exit 1"] * failures)
    assert (record.phase, record.reason) == (Phase.PENDING, Reason.BACKOFF)
    assert record.not_before == ended + timedelta(seconds=delay)


def test_the_retry_starts_at_not_before_pinned_to_the_first_revision() -> None:
    run = desired_run(backoffLimit=1, count=2, overrides={"containerOverrides": []})
    _, record, _ = through(run, ["exit 3"])
    assert record.not_before is not None
    early = record.not_before - timedelta(seconds=1)
    assert plan_run(run, record, context(run, now=early)) == []

    # The manifest moved on (new image -> another revision, other count):
    # the frozen spec and the pinned revision still decide the retry.
    edited = desired_run(backoffLimit=1, count=5, image="orders:next")
    ctx = context(edited, now=record.not_before, arn=taskdef_arn(99))
    retry = only(plan_run(edited, record, ctx), StartAttempt)
    first, second = retry.record.attempts
    assert retry.attempt == 2
    assert second.task_definition_arn == TD_ARN
    assert second.client_token == client_token(OWNER, run.key, 2)
    assert second.request == {
        **first.request,
        "clientToken": second.client_token,
        "tags": [
            *first.request["tags"][:4],
            {"key": "ecs-job-controller/attempt", "value": "2"},
        ],
    }
    assert second.request["count"] == 2
    assert retry.record.frozen_spec == run.spec.raw
    assert retry.record.spec_digest == run.digest


# -- success containers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sidecar_essential", "success_containers", "exit_codes", "want_phase"),
    [
        (False, None, {"app": 0, "sidecar": 1}, Phase.SUCCEEDED),
        (True, None, {"app": 0, "sidecar": 1}, Phase.FAILED),
        (False, None, {"app": 2, "sidecar": 0}, Phase.FAILED),
        (True, ["app"], {"app": 0, "sidecar": 137}, Phase.SUCCEEDED),
        (False, ["sidecar"], {"app": 0, "sidecar": 1}, Phase.FAILED),
        (None, None, {"app": None}, Phase.FAILED),
    ],
    ids=[
        "non-essential-sidecar-ignored",
        "essential-sidecar-counts-by-default",
        "essential-app-fails",
        "explicit-list-ignores-essential-sidecar",
        "explicit-list-names-non-essential-sidecar",
        "no-exit-code-is-not-success",
    ],
)
def test_success_containers_decide_success(
    sidecar_essential: bool | None,
    success_containers: list[str] | None,
    exit_codes: dict[str, int | None],
    want_phase: Phase,
) -> None:
    fields: dict[str, Any] = {}
    if success_containers is not None:
        fields["successContainers"] = success_containers
    run = desired_run(sidecar_essential=sidecar_essential, **fields)
    record = running(run)
    end = TaskRecord(task_arn("t1"), "STOPPED", exit_codes, "EssentialContainerExited")
    _, after = step(run, record, observed(end), at(60))
    assert after is not None
    assert after.phase is want_phase


@pytest.mark.parametrize(
    ("tasks", "success", "want", "message"),
    [
        ((stopped("a", 0),), ("app",), AttemptOutcome.SUCCEEDED, "exited 0"),
        (
            (stopped("a", 0), stopped("b", 1)),
            ("app",),
            AttemptOutcome.APPLICATION_FAILURE,
            "container app: exit code 1",
        ),
        ((stopped("a", 0, sidecar=9),), ("app",), AttemptOutcome.SUCCEEDED, "exited 0"),
        ((stopped("a", 0, sidecar=9),), (), AttemptOutcome.APPLICATION_FAILURE, "sidecar"),
        (
            (replace(stopped("a", 1), stop_code="SpotInterruption"),),
            ("app",),
            AttemptOutcome.INFRASTRUCTURE_FAILURE,
            "SpotInterruption",
        ),
        (
            (TaskRecord(task_arn("a"), "STOPPED", {}, "TaskFailedToStart", "CannotPull"),),
            ("app",),
            AttemptOutcome.INFRASTRUCTURE_FAILURE,
            "CannotPull",
        ),
        (
            (TaskRecord(task_arn("a"), "RUNNING", {}, None, missing=True), stopped("b", 0)),
            ("app",),
            AttemptOutcome.INFRASTRUCTURE_FAILURE,
            "vanished",
        ),
        (
            (replace(stopped("a", 0), stop_code="TerminationNotice"),),
            ("app",),
            AttemptOutcome.INFRASTRUCTURE_FAILURE,
            "TerminationNotice",
        ),
    ],
    ids=[
        "all-zero",
        "one-of-two-tasks-fails",
        "non-success-container-ignored",
        "no-list-means-every-container",
        "spot-interruption-trumps-exit-code",
        "failed-to-start",
        "vanished-task",
        "termination-notice",
    ],
)
def test_attempt_outcome(
    tasks: tuple[TaskRecord, ...], success: tuple[str, ...], want: AttemptOutcome, message: str
) -> None:
    outcome, why = attempt_outcome(tasks, success)
    assert outcome is want
    assert message in why


# -- infrastructure failures: their own budget of 3 ---------------------------------


@pytest.mark.parametrize(
    ("endings", "want_phase", "want_reason"),
    [
        (["TaskFailedToStart"] * 3, Phase.PENDING, Reason.BACKOFF),
        (["TaskFailedToStart"] * 4, Phase.FAILED, Reason.INFRASTRUCTURE_FAILURES),
        (
            ["TaskFailedToStart", "SpotInterruption", "TerminationNotice", "vanished"],
            Phase.FAILED,
            Reason.INFRASTRUCTURE_FAILURES,
        ),
        (["vanished"] * 3 + ["exit 0"], Phase.SUCCEEDED, Reason.COMPLETED),
    ],
    ids=["third-retried", "fourth-fails", "mixed-kinds-fourth-fails", "three-then-success"],
)
def test_infrastructure_failures_have_a_budget_of_three_retries(
    endings: list[str], want_phase: Phase, want_reason: Reason
) -> None:
    _, record, _ = through(desired_run(backoffLimit=0), endings)
    assert (record.phase, record.reason) == (want_phase, want_reason)
    if want_reason is Reason.INFRASTRUCTURE_FAILURES:
        assert "4 infrastructure failures" in record.message


# -- activeDeadlineSeconds ---------------------------------------------------------------


def test_a_deadline_exceeded_while_running_stops_the_live_tasks_and_fails() -> None:
    run = desired_run(activeDeadlineSeconds=600)
    record = running(run, "t1", "t2")
    obs = observed(stopped("t1", 0, at_time=at(500)), task("t2", "RUNNING"))

    assert kinds(step(run, record, obs, at(599))[0]) == ["RecordRun"]
    stop = only(step(run, record, obs, at(600))[0], StopTasks)
    assert stop.cluster == CLUSTER
    assert stop.task_arns == (task_arn("t2"),)
    assert "activeDeadlineSeconds (600s) exceeded" in stop.stop_reason
    assert (stop.record.phase, stop.record.reason) == (Phase.FAILED, Reason.DEADLINE_EXCEEDED)
    assert stop.record.attempts[0].outcome is AttemptOutcome.STOPPED

    # StopTask's answer is merged in; the next pass has nothing to do.
    after = with_stopped_tasks(
        stop.record, {task_arn("t2"): task("t2", "STOPPED", stop_code="UserInitiated")}
    )
    assert after.attempts[0].tasks[1].last_status == "STOPPED"
    assert step(run, after, obs, at(660))[0] == []


def test_the_deadline_counts_from_the_first_attempt() -> None:
    run = desired_run(backoffLimit=3, activeDeadlineSeconds=300)
    _, record, _ = through(run, ["exit 1"])  # attempt 1 intent at NOW, ended at +60
    assert record.not_before == at(70)
    record = after_pass(run, record, now=at(70))
    record = placed(record, task("a2", "RUNNING"), now=at(70))
    stop = only(step(run, record, observed(task("a2", "RUNNING")), at(300))[0], StopTasks)
    assert stop.task_arns == (task_arn("a2"),)


def test_a_deadline_exceeded_in_backoff_fails_without_a_new_attempt() -> None:
    run = desired_run(backoffLimit=5, activeDeadlineSeconds=120, backoff={"initialSeconds": 600})
    _, record, _ = through(run, ["exit 1"])
    assert record.not_before == at(660)
    recorded = only(step(run, record, now=at(700))[0], RecordRun)
    assert (recorded.record.phase, recorded.record.reason) == (
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
    )
    assert len(recorded.record.attempts) == 1


@pytest.mark.parametrize(
    ("stopped_after", "want_reason"),
    [(590, Reason.COMPLETED), (600, Reason.COMPLETED), (610, Reason.DEADLINE_EXCEEDED)],
    ids=["before", "at", "after"],
)
def test_a_success_seen_late_counts_if_it_ended_by_the_deadline(
    stopped_after: int, want_reason: Reason
) -> None:
    """The controller was away past the deadline; the task's own stop time decides."""
    run = desired_run(activeDeadlineSeconds=600)
    record = running(run)
    obs = observed(stopped("t1", 0, at_time=at(stopped_after)))
    recorded = only(step(run, record, obs, at(900))[0], RecordRun)
    assert recorded.record.reason is want_reason
    assert recorded.record.phase.terminal


# -- capacity: unplaceable RunTask answers --------------------------------------------


def test_an_unplaceable_answer_makes_the_run_unschedulable() -> None:
    record = start(RUN)
    after = with_run_task_result(record, 1, unplaceable=("RESOURCE:MEMORY",), now=at(5))
    attempt = after.attempts[0]
    assert (after.phase, after.reason) == (Phase.PENDING, Reason.UNSCHEDULABLE)
    assert after.pending_since == at(5)
    assert attempt.submitted
    assert attempt.outcome is AttemptOutcome.UNPLACEABLE
    assert attempt.placement_failures == ("RESOURCE:MEMORY",)
    assert "RESOURCE:MEMORY" in after.message
    empty = with_run_task_result(record, 1, now=at(5))
    assert "no task placed" in empty.message


def test_unplaceable_is_retried_with_backoff_then_fails_after_max_pending_seconds() -> None:
    run = desired_run(capacity={"maxPendingSeconds": 60})  # backoffLimit 0 does not matter
    record = with_run_task_result(start(run), 1, unplaceable=("RESOURCE:CPU",), now=NOW)

    waiting = only(step(run, record, now=at(1))[0], RecordRun).record
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, Reason.UNSCHEDULABLE)
    assert waiting.not_before == at(10)
    assert step(run, waiting, now=at(9))[0] == []

    retry = only(step(run, waiting, now=at(10))[0], StartAttempt)
    assert retry.attempt == 2
    assert retry.record.pending_since == NOW
    second = with_run_task_result(retry.record, 2, unplaceable=("RESOURCE:CPU",), now=at(10))
    assert second.pending_since == NOW
    waiting = only(step(run, second, now=at(11))[0], RecordRun).record
    assert waiting.not_before == at(30)  # 10 * 2^(2-1) after the second try

    third = with_run_task_result(
        after_pass(run, waiting, now=at(30)), 3, unplaceable=("RESOURCE:CPU",), now=at(30)
    )
    waiting = only(step(run, third, now=at(31))[0], RecordRun).record
    assert waiting.not_before == at(60)  # capped at the give-up time
    failed = only(step(run, waiting, now=at(60))[0], RecordRun).record
    assert (failed.phase, failed.reason) == (Phase.FAILED, Reason.UNSCHEDULABLE)
    assert "60s" in failed.message


def test_placement_after_waiting_for_capacity_clears_pending_since() -> None:
    record = with_run_task_result(start(RUN), 1, unplaceable=("AGENT",), now=NOW)
    waiting = only(step(RUN, record, now=at(1))[0], RecordRun).record
    retry = only(step(RUN, waiting, now=at(10))[0], StartAttempt).record
    placed_now = placed(retry, task("t2", "PENDING"), now=at(10))
    assert placed_now.pending_since is None
    assert (placed_now.phase, placed_now.reason) == (Phase.PENDING, Reason.STARTING)


def test_a_rejected_run_task_fails_the_run_for_good() -> None:
    record = with_run_task_result(
        start(RUN), 1, rejected="ClientException: cluster not found", now=at(1)
    )
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.RUN_TASK_ERROR)
    assert record.attempts[0].outcome is AttemptOutcome.REJECTED
    assert "cluster not found" in record.message
    assert step(RUN, record, observed(), at(3600))[0] == []


# -- spec changes ---------------------------------------------------------------------


def test_a_finished_run_whose_spec_changed_gets_one_note() -> None:
    _, record, _ = through(RUN, ["exit 0"])
    edited = desired_run(image="orders:next")
    assert step(RUN, record, now=at(3600))[0] == []  # unchanged spec: nothing to say
    noted = only(step(edited, record, now=at(3600))[0], RecordRun).record
    assert noted.phase is Phase.SUCCEEDED
    assert "change spec.runId to run again" in noted.message
    assert noted.message.startswith(record.message)
    assert step(edited, noted, now=at(7200))[0] == []


def test_a_running_run_whose_spec_changed_says_so_and_keeps_running() -> None:
    record = running(RUN, "t1")
    edited = desired_run(image="orders:next")
    obs = observed(task("t1", "RUNNING"))
    noted = only(step(edited, record, obs, at(60))[0], RecordRun).record
    assert noted.phase is Phase.RUNNING
    assert "change spec.runId to run again" in noted.message
    assert step(edited, noted, obs, at(120))[0] == []  # said once, no churn


def test_a_pending_run_that_has_not_started_picks_up_edits() -> None:
    _, suspended = step(desired_run(suspend=True, count=1), None)
    edited = desired_run(image="orders:next", count=4, launchType="FARGATE")
    ctx = context(edited, now=at(60), arn=taskdef_arn(8))
    started = only(plan_run(edited, suspended, ctx), StartAttempt)
    request = started.record.attempts[0].request
    assert (request["taskDefinition"], request["count"], request["launchType"]) == (
        taskdef_arn(8),
        4,
        "FARGATE",
    )
    assert started.record.frozen_spec == edited.spec.raw
    assert started.record.spec_digest == edited.digest


# -- unreadable clusters ------------------------------------------------------------------


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_an_unreadable_cluster_never_fails_a_live_attempt(status: str) -> None:
    run = desired_run(backoffLimit=0)
    record = running(run)
    record = after_pass(run, record, observed(task("t1", status)), at(30))
    blind = observed(missing=[task_arn("t1")], unreadable=[CLUSTER])
    for later in (60, 3600, 48 * 3600):
        assert step(run, record, blind, at(later))[0] == []


# -- the planner is a fixed point once the ledger is up to date -----------------------


def _scenarios() -> list[tuple[str, DesiredRun, RunRecord | None, Any, datetime]]:
    run = desired_run(backoffLimit=1, activeDeadlineSeconds=7200)
    intent = start(run)
    return [
        ("new-suspended", desired_run(suspend=True), None, observed(), NOW),
        ("placed-pending", run, running(run), observed(task("t1", "PENDING")), at(30)),
        ("placed-running", run, running(run), observed(task("t1", "RUNNING")), at(30)),
        ("exit-0", run, running(run), observed(stopped("t1", 0)), at(60)),
        (
            "exit-3-backoff",
            run,
            running(run),
            observed(stopped("t1", 3, at_time=at(60))),
            at(60),
        ),
        ("spot", run, running(run), ending(running(run), "SpotInterruption", at(60)), at(60)),
        ("vanished", run, running(run), observed(missing=[task_arn("t1")]), at(60)),
        ("deadline", run, running(run), observed(task("t1", "RUNNING")), at(7200)),
        (
            "adopted",
            run,
            intent,
            observed(observed_task(task("t1", "RUNNING"), run.key, 1)),
            at(60),
        ),
        ("intent-expired", run, intent, observed(), at(24 * 3600)),
        (
            "unplaceable",
            run,
            with_run_task_result(intent, 1, unplaceable=("RESOURCE:CPU",), now=NOW),
            observed(),
            at(1),
        ),
    ]


@pytest.mark.parametrize(
    ("run", "record", "obs", "now"),
    [s[1:] for s in _scenarios()],
    ids=[s[0] for s in _scenarios()],
)
def test_planning_again_after_recording_the_plan_does_nothing(
    run: DesiredRun, record: RunRecord | None, obs: Any, now: datetime
) -> None:
    actions, after = step(run, record, obs, now)
    assert actions, "the scenario should need a write"
    assert all(isinstance(a, RecordRun | StopTasks) for a in actions), kinds(actions)
    assert step(run, after, obs, now)[0] == []
    assert step(run, after, obs, now + timedelta(seconds=1))[0] == []


# -- outcomes that are not the job's own success -----------------------------------------


def test_a_partial_placement_is_an_infrastructure_failure() -> None:
    outcome, why = attempt_outcome((stopped("t1"), stopped("t2")), ("app",), expected_tasks=3)
    assert outcome is AttemptOutcome.INFRASTRUCTURE_FAILURE
    assert "only 2 of 3 tasks" in why


def test_a_task_stopped_by_someone_else_is_not_a_success() -> None:
    by_user = stopped("t1", exit_code=0, stop_code="UserInitiated")
    outcome, why = attempt_outcome((by_user,), ("app",))
    assert outcome is AttemptOutcome.APPLICATION_FAILURE
    assert "stopped by a user" in why


def test_no_exit_codes_at_all_is_not_a_success() -> None:
    silent = stopped("t1", exit_code=None)
    outcome, why = attempt_outcome((replace(silent, exit_codes={}),), ())
    assert outcome is AttemptOutcome.APPLICATION_FAILURE
    assert "no exit codes" in why


def test_an_unanswered_intent_past_the_deadline_is_closed_not_repeated() -> None:
    run = desired_run(activeDeadlineSeconds=60)
    intent = start(run)
    actions, record = step(run, intent, observed(), at(120))
    assert "ResumeAttempt" not in kinds(actions)
    assert record is not None
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.DEADLINE_EXCEEDED)
    assert "not repeated" in record.attempts[0].message


def test_an_unanswered_intent_of_a_removed_manifest_is_closed_not_repeated() -> None:
    intent = start(RUN)
    ctx = context(obs=observed(), now=at(30))
    actions = plan_run(None, intent, ctx, gone_reason=Reason.ORPHANED)
    assert "ResumeAttempt" not in kinds(actions)
    record = only(actions, RecordRun).record
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.ORPHANED)


def test_tasks_provisioning_past_max_pending_seconds_are_stopped_and_fail() -> None:
    run = desired_run(capacity={"maxPendingSeconds": 300})
    record = placed(start(run), task("t1", "PROVISIONING"))
    obs = observed(task("t1", "PROVISIONING"))
    assert kinds(step(run, record, obs, at(200))[0]) in ([], ["RecordRun"])
    stop = only(step(run, record, obs, at(301))[0], StopTasks)
    assert stop.task_arns == (task_arn("t1"),)
    assert (stop.record.phase, stop.record.reason) == (Phase.FAILED, Reason.UNSCHEDULABLE)
    running_obs = observed(task("t1", "RUNNING"))
    assert "StopTasks" not in kinds(step(run, record, running_obs, at(301))[0])
