"""The whole pass's plan (DESIGN.md §4, §5): registrations, reuse, refs and orphans.

`controller.plan.planner.make_plan` is where many runs meet: it must
register each new task-definition content once however many runs share it,
reuse what ECS already has, ask the observer only for what runs about to
start need, and never mistake a missing or invalid manifest for a deletion
when the source cannot be trusted. Each test is a table row of (desired,
observed, ledger, now) -> plan, with no AWS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.model.capacity import GroupState, InstanceCapacity
from controller.model.manifest import RunKey
from controller.model.observed import ObservedState, ResolvedRef
from controller.model.run import LedgerView, Phase, Reason, RevisionRecord, RunRecord
from controller.model.taskdef import spec_hash
from controller.plan.actions import (
    Action,
    Plan,
    RecordRun,
    RegisterTaskDefinition,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.planner import (
    DesiredInput,
    make_plan,
    needs,
    next_wakeup,
    runs_with_new_room,
)
from controller.plan.records import DesiredRun, with_run_task_result
from tests.plan.builders import (
    CLUSTER,
    FAMILY,
    IMAGE,
    NOW,
    OWNER,
    after_pass,
    at,
    desired_run,
    ending,
    kinds,
    ledger,
    observed,
    placed,
    revision,
    running,
    start,
    step,
    stopped,
    task,
    task_definition,
    taskdef_arn,
)


def wanting(*runs: DesiredRun, **more: Any) -> DesiredInput:
    """The source asks for `runs`."""
    return DesiredInput(runs={r.key: r for r in runs}, **more)


def plan_for(
    desired: DesiredInput,
    obs: ObservedState | None = None,
    view: LedgerView | None = None,
    now: Any = NOW,
    **options: Any,
) -> Plan:
    """make_plan with this module's owner."""
    return make_plan(desired, obs or observed(), view or LedgerView(), now, OWNER, **options)


def of_run(plan: Plan, name: str, run_id: str = "1") -> list[Action]:
    """The plan's actions about one run."""
    key = RunKey(name, run_id)
    return [a for a in plan.actions if not isinstance(a, RegisterTaskDefinition) and a.run == key]


def records(actions: Iterable[Action]) -> list[RunRecord]:
    """The run records the actions would save."""
    return [
        a.record
        for a in actions
        if isinstance(a, StartAttempt | ResumeAttempt | StopTasks | RecordRun)
    ]


def registrations(plan: Plan) -> list[RegisterTaskDefinition]:
    """The plan's RegisterTaskDefinition actions."""
    return [a for a in plan.actions if isinstance(a, RegisterTaskDefinition)]


# -- registrations first, once per content ----------------------------------------


def test_registrations_come_first_and_starts_wait_for_them() -> None:
    """A run whose revision this pass registers starts after it, with the hash as a promise."""
    retry = desired_run("aaa", backoffLimit=1)
    _, in_backoff = step(retry, running(retry), ending(running(retry), "exit 1", NOW), NOW)
    assert in_backoff is not None
    assert in_backoff.not_before is not None
    fresh = desired_run("zzz")
    plan = plan_for(
        wanting(retry, fresh),
        observed(families={FAMILY: ()}),
        ledger(in_backoff),
        in_backoff.not_before,
    )
    assert kinds(plan.actions) == ["RegisterTaskDefinition", "StartAttempt", "StartAttempt"]
    register, retried, started = plan.actions
    assert isinstance(register, RegisterTaskDefinition)
    assert isinstance(retried, StartAttempt)
    assert isinstance(started, StartAttempt)
    assert (register.family, register.reason) == (FAMILY, "new family")
    assert register.spec_hash == spec_hash(task_definition())
    assert retried.pending_spec_hash is None  # pinned to its first revision
    assert started.run == fresh.key
    assert started.pending_spec_hash == register.spec_hash
    assert started.record.attempts[0].request["taskDefinition"] == ""
    assert started.record.task_definition_arn is None


def test_a_hundred_runs_sharing_three_specs_register_three_revisions() -> None:
    images = ["orders:1", "orders:2", "orders:3"]
    runs = [desired_run(f"job-{i:03}", image=images[i % 3]) for i in range(100)]
    plan = plan_for(wanting(*runs), observed(families={FAMILY: ()}))

    registered = registrations(plan)
    assert len(registered) == 3
    hashes = {spec_hash(task_definition(image)) for image in images}
    assert {r.spec_hash for r in registered} == hashes
    starts = [a for a in plan.actions if isinstance(a, StartAttempt)]
    assert len(starts) == 100
    assert Counter(s.pending_spec_hash for s in starts) == {
        spec_hash(task_definition("orders:1")): 34,
        spec_hash(task_definition("orders:2")): 33,
        spec_hash(task_definition("orders:3")): 33,
    }
    assert kinds(plan.actions[:3]) == ["RegisterTaskDefinition"] * 3


# -- reuse before register ------------------------------------------------------------

SAME = task_definition()
OTHER = task_definition("orders:other")


@pytest.mark.parametrize(
    ("revisions", "want_arn"),
    [
        ((revision(3, SAME),), taskdef_arn(3)),
        ((revision(3, SAME, computed=False, tagged=True),), taskdef_arn(3)),
        ((revision(3, SAME, owner="team-b"),), taskdef_arn(3)),
        ((revision(3, SAME, owner=None),), taskdef_arn(3)),
        ((revision(2, SAME), revision(5, SAME, owner=None)), taskdef_arn(2)),
        ((revision(5, SAME, owner="team-b"), revision(2, SAME)), taskdef_arn(2)),
        ((revision(2, SAME), revision(4, SAME)), taskdef_arn(4)),
        ((revision(2, SAME), revision(6, OTHER)), taskdef_arn(2)),
        ((revision(3, SAME, status="INACTIVE"),), None),
        ((revision(3, OTHER),), None),
        ((), None),
    ],
    ids=[
        "ours-by-computed-hash",
        "ours-by-spec-hash-tag",
        "another-owners-adopted",
        "hand-registered-adopted",
        "ours-preferred-over-newer-hand-registered",
        "ours-preferred-over-newer-other-owner",
        "newest-of-ours",
        "older-matching-over-newer-different",
        "inactive-not-reused",
        "different-content-registers",
        "empty-family-registers",
    ],
)
def test_reuse_before_register(revisions: tuple[RevisionRecord, ...], want_arn: str | None) -> None:
    run = desired_run()
    plan = plan_for(wanting(run), observed(families={FAMILY: revisions}))
    (start_attempt,) = [a for a in plan.actions if isinstance(a, StartAttempt)]
    if want_arn is None:
        (register,) = registrations(plan)
        assert register.spec_hash == spec_hash(SAME)
        assert start_attempt.pending_spec_hash == register.spec_hash
    else:
        assert registrations(plan) == []
        assert start_attempt.pending_spec_hash is None
        assert start_attempt.record.attempts[0].request["taskDefinition"] == want_arn
        assert start_attempt.record.task_definition_arn == want_arn


@pytest.mark.parametrize(
    ("bodies", "reason"),
    [
        (
            {taskdef_arn(3): SAME},
            "content changed since revision 3: containerDefinitions[app].image",
        ),
        ({}, "content changed: no ACTIVE revision has spec hash "),
    ],
    ids=["newest-body-known", "newest-body-unknown"],
)
def test_changing_one_image_registers_once_and_says_what_changed(
    bodies: dict[str, Any], reason: str
) -> None:
    runs = [desired_run(f"job-{i}", image="orders:next") for i in range(5)]
    obs = observed(families={FAMILY: (revision(2, SAME), revision(3, SAME))}, bodies=bodies)
    (register,) = registrations(plan_for(wanting(*runs), obs))
    assert register.reason.startswith(reason)
    assert register.task_definition["containerDefinitions"][0]["image"] == "orders:next"
    # With the newest body known, `diff` shows the values under the path.
    lines = [change.line() for change in register.changes]
    assert lines == ([f"containerDefinitions[app].image: {IMAGE} -> orders:next"] if bodies else [])
    assert register.spec_hash == spec_hash(task_definition("orders:next"))


def test_a_family_that_could_not_be_listed_is_never_registered_blindly() -> None:
    run = desired_run()
    plan = plan_for(wanting(run), observed(families={}))
    assert kinds(plan.actions) == ["RecordRun"]
    (record,) = records(plan.actions)
    assert (record.phase, record.reason) == (Phase.PENDING, Reason.WAITING)
    assert record.attempts == ()


# -- needs(): what the observer must read ----------------------------------------------


def test_needs_families_and_refs_only_for_runs_about_to_start() -> None:
    inline = desired_run("inline")
    by_ref = desired_run("by-ref", taskDefinitionRef="reports:12")
    suspended = desired_run("later", suspend=True, taskDefinition=task_definition(family="other"))
    got = needs(wanting(inline, by_ref, suspended), LedgerView())
    assert got.families == {FAMILY}
    assert got.refs == {"reports:12"}
    assert got.clusters == {CLUSTER}


def test_needs_nothing_but_clusters_in_steady_state() -> None:
    started = desired_run("started")
    finished = desired_run("finished", taskDefinitionRef="reports:12")
    _, done = step(finished, None, observed(refs=[ResolvedRef("reports:12", taskdef_arn(12))]))
    assert done is not None
    done = placed(done, task("f1", "RUNNING"))
    _, done = step(finished, done, ending(done, "exit 0", at(60)), at(60))
    assert done is not None
    assert done.phase is Phase.SUCCEEDED
    elsewhere = desired_run("elsewhere", cluster="other-cluster")
    gone = running(elsewhere)  # its manifest is gone; its cluster is still watched

    got = needs(wanting(started, finished), ledger(running(started), done, gone))
    assert (got.families, got.refs) == (frozenset(), frozenset())
    assert got.clusters == {CLUSTER, "other-cluster"}


# -- taskDefinitionRef ------------------------------------------------------------------

REF = "reports:12"


def test_a_resolved_ref_starts_with_its_arn_and_its_essential_containers() -> None:
    run = desired_run("by-ref", taskDefinitionRef=REF)
    resolved = ResolvedRef(REF, taskdef_arn(12, "reports"), essential_containers=("app",))
    plan = plan_for(wanting(run), observed(refs=[resolved]))
    assert registrations(plan) == []
    (started,) = plan.actions
    assert isinstance(started, StartAttempt)
    assert started.record.attempts[0].request["taskDefinition"] == taskdef_arn(12, "reports")
    assert started.record.task_definition_arn == taskdef_arn(12, "reports")

    # The referenced revision's essential containers decide success: a
    # non-essential sidecar's failure is ignored.
    record = placed(started.record, task("r1", "RUNNING"))
    obs = observed(stopped("r1", 0, sidecar=1, at_time=at(60)))
    (recorded,) = records(plan_for(wanting(run), obs, ledger(record), at(60)).actions)
    assert (recorded.phase, recorded.reason) == (Phase.SUCCEEDED, Reason.COMPLETED)


@pytest.mark.parametrize(
    ("refs", "want_phase", "want_reason", "message"),
    [
        (
            [ResolvedRef(REF, None, error="taskDefinitionRef reports:12: not found")],
            Phase.FAILED,
            Reason.TASK_DEFINITION_ERROR,
            "not found",
        ),
        (
            [ResolvedRef(REF, None, error=f"{taskdef_arn(12, 'reports')} is INACTIVE")],
            Phase.FAILED,
            Reason.TASK_DEFINITION_ERROR,
            "INACTIVE",
        ),
        ([], Phase.PENDING, Reason.WAITING, "resolving taskDefinitionRef"),
    ],
    ids=["not-found", "inactive", "not-read-this-pass"],
)
def test_an_unresolvable_ref_fails_the_run(
    refs: list[ResolvedRef], want_phase: Phase, want_reason: Reason, message: str
) -> None:
    run = desired_run("by-ref", taskDefinitionRef=REF)
    plan = plan_for(wanting(run), observed(refs=refs))
    assert kinds(plan.actions) == ["RecordRun"]
    (record,) = records(plan.actions)
    assert (record.phase, record.reason) == (want_phase, want_reason)
    assert message in record.message
    assert record.attempts == ()


# -- orphans and superseded runs -----------------------------------------------------


def _gone_pending(name: str = "gone") -> RunRecord:
    _, record = step(desired_run(name, suspend=True), None)
    assert record is not None
    return record


def _gone_running() -> RunRecord:
    record = running(desired_run("gone"))
    return after_pass(desired_run("gone"), record, observed(task("t1", "RUNNING")), at(30))


def _gone_in_backoff() -> RunRecord:
    run = desired_run("gone", backoffLimit=3)
    record = running(run)
    record = after_pass(run, record, ending(record, "exit 1", at(30)), at(30))
    assert record.reason is Reason.BACKOFF
    return record


@pytest.mark.parametrize(
    ("gone", "want_phase", "want_reason"),
    [
        (_gone_pending(), Phase.FAILED, Reason.ORPHANED),
        (_gone_running(), Phase.RUNNING, Reason.ORPHANED),
        (_gone_in_backoff(), Phase.FAILED, Reason.ORPHANED),
    ],
    ids=["pending-not-started-fails", "running-keeps-running", "in-backoff-no-retry"],
)
def test_a_run_whose_manifest_disappeared_is_orphaned(
    gone: RunRecord, want_phase: Phase, want_reason: Reason
) -> None:
    stay = desired_run("stay")
    obs = observed(task("t1", "RUNNING"), task("s1", "RUNNING"))
    plan = plan_for(wanting(stay), obs, ledger(gone, running(stay)), at(3600))
    assert plan.warnings == ()
    actions = of_run(plan, "gone")
    assert kinds(actions) == ["RecordRun"]  # no StopTasks, no new attempt
    (record,) = records(actions)
    assert (record.phase, record.reason) == (want_phase, want_reason)
    assert "manifest removed" in record.message
    assert len(record.attempts) == len(gone.attempts)
    # Recorded once; the next pass leaves it alone.
    again = plan_for(wanting(stay), obs, ledger(record, running(stay)), at(3601))
    assert of_run(again, "gone") == []


@pytest.mark.parametrize(
    ("old", "want_phase"),
    [(_gone_pending(), Phase.FAILED), (_gone_running(), Phase.RUNNING)],
    ids=["not-started", "running"],
)
def test_a_run_of_an_old_run_id_is_cancelled_as_superseded(
    old: RunRecord, want_phase: Phase
) -> None:
    new = desired_run("gone", "2")
    obs = observed(task("t1", "RUNNING"), families={FAMILY: (revision(3, SAME),)})
    plan = plan_for(wanting(new), obs, ledger(old), at(3600))
    assert plan.warnings == ()
    (record,) = records(of_run(plan, "gone", "1"))
    assert (record.phase, record.reason) == (want_phase, Reason.CANCELLED)
    assert "superseded by runId '2'" in record.message
    assert kinds(of_run(plan, "gone", "2")) == ["StartAttempt"]


def test_an_empty_source_orphans_nothing_and_warns() -> None:
    plan = plan_for(
        wanting(),
        observed(task("t1", "RUNNING")),
        ledger(_gone_running(), _gone_pending("gone-too")),
        at(3600),
    )
    assert len(plan.warnings) == 1
    assert "source is empty" in plan.warnings[0]
    assert plan.actions == ()  # the running run goes on untouched, the pending one waits


@pytest.mark.parametrize(
    ("fraction", "want_orphaned", "want_warning"),
    [(0.5, 0, True), (0.6, 0, True), (0.7, 2, False)],
    ids=["default-half", "just-under-two-thirds", "above-two-thirds"],
)
def test_orphaning_more_than_the_max_fraction_of_active_runs_is_refused(
    fraction: float, want_orphaned: int, want_warning: bool
) -> None:
    stay = desired_run("stay")
    a, b = desired_run("gone-a"), desired_run("gone-b")
    view = ledger(running(a), running(b), running(stay))
    obs = observed(task("t1", "RUNNING"))
    plan = plan_for(wanting(stay), obs, view, at(60), max_orphan_fraction=fraction)
    orphaned = [r for r in records(plan.actions) if r.reason is Reason.ORPHANED]
    assert len(orphaned) == want_orphaned
    assert bool(plan.warnings) is want_warning
    if want_warning:
        assert "2 of 3 known manifests" in plan.warnings[0]


@pytest.mark.parametrize(
    "source",
    [
        {"invalid_names": frozenset({("JobRun", "gone")})},
        {"complete": False},
    ],
    ids=["manifest-invalid", "source-incomplete"],
)
def test_an_invalid_manifest_or_incomplete_source_never_orphans(source: dict[str, Any]) -> None:
    """A started run goes on under its frozen spec: its retry still happens."""
    gone = _gone_in_backoff()
    assert gone.not_before is not None
    pending = replace(_gone_pending(), key=RunKey("gone", "0"))
    plan = plan_for(
        wanting(desired_run("stay"), **source),
        observed(families={FAMILY: ()}),
        ledger(gone, pending),
        gone.not_before,
    )
    assert plan.warnings == ()
    retry = of_run(plan, "gone")
    assert kinds(retry) == ["StartAttempt"]
    (started,) = records(retry)
    first, second = started.attempts
    assert second.request["taskDefinition"] == first.request["taskDefinition"]
    assert second.request["clientToken"] != first.request["clientToken"]
    assert of_run(plan, "gone", "0") == []  # not started: waits, is not orphaned


def test_the_plan_says_when_the_next_backoff_or_deadline_is_due() -> None:
    run = desired_run(activeDeadlineSeconds=600)
    record = start(run)
    view = LedgerView(runs={record.key: record})
    assert next_wakeup(view, [], at(10)) == record.first_started_at + timedelta(seconds=600)
    waiting = replace(record, not_before=at(30))
    assert next_wakeup(LedgerView(runs={record.key: waiting}), [], at(10)) == at(30)
    assert next_wakeup(LedgerView(runs={record.key: waiting}), [], at(10_000)) is None


# -- capacity: new room ends a placement backoff ----------------------------------------------

ASG = "batch-asg"


def _unplaced(name: str = "wide") -> tuple[DesiredRun, RunRecord]:
    """A run whose RunTask found no room at NOW, now in its backoff until at(10)."""
    run = desired_run(name, capacity={"autoScalingGroup": ASG})
    failed = with_run_task_result(start(run), 1, unplaceable=("RESOURCE:CPU",), now=NOW)
    waiting = after_pass(run, failed, now=at(1))
    assert waiting.not_before == at(10)
    return run, waiting


def _group_with_instance(registered_at: datetime, free_cpu: int = 2048) -> dict[str, GroupState]:
    fresh = InstanceCapacity("i-new", free_cpu, 8192, 2048, 8192, True, True, registered_at)
    return {ASG: GroupState(ASG, 0, 5, 1, (fresh,), 0, (2048, 8192))}


def test_an_instance_registered_after_the_failure_starts_the_waiting_run_at_once() -> None:
    run, waiting = _unplaced()
    plan = plan_for(
        wanting(run), view=ledger(waiting), now=at(3), capacity=_group_with_instance(at(2))
    )
    starts = [a for a in plan.actions if isinstance(a, StartAttempt)]
    assert [(a.run, a.attempt) for a in starts] == [(run.key, 2)]
    assert runs_with_new_room(ledger(waiting), _group_with_instance(at(2)), at(3)) == {run.key}


@pytest.mark.parametrize(
    ("registered_at", "free_cpu", "why"),
    [
        (at(-5), 2048, "registered before the failure: ECS already knew it"),
        (at(2), 128, "too little room left on it"),
    ],
)
def test_without_new_room_that_fits_the_backoff_holds(
    registered_at: datetime, free_cpu: int, why: str
) -> None:
    run, waiting = _unplaced()
    capacity = _group_with_instance(registered_at, free_cpu)
    plan = plan_for(wanting(run), view=ledger(waiting), now=at(3), capacity=capacity)
    assert not [a for a in plan.actions if isinstance(a, StartAttempt)], why
    assert runs_with_new_room(ledger(waiting), capacity, at(3)) == frozenset(), why
