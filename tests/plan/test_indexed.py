"""Indexed runs (`spec.completions`) planned pass by pass, with no AWS (issue 17).

A small world stands in for ECS and the executor: every StartAttempt places
one task, the test says how each index's task ends, and the ledger keeps
what the plan's actions carry. Each test then reads like the story a user
would tell: three of five indexes at most, index 1 fails twice, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from controller.model.identity import COMPLETION_INDEX_VARIABLE, TAG_INDEX, client_token
from controller.model.manifest import RunKey
from controller.model.run import CancelRequest, LedgerView, Phase, Reason, RunRecord, TaskRecord
from controller.plan.actions import Action, RecordRun, StartAttempt, StopTasks
from controller.plan.indexed import plan_indexed_run
from controller.plan.planner import DesiredInput, make_plan
from controller.plan.records import DesiredRun, with_run_task_result
from tests.plan.builders import (
    NOW,
    OWNER,
    TD_ARN,
    at,
    context,
    desired_run,
    observed,
    observed_task,
    task_arn,
)

RUN = RunKey("backfill", "1")


@dataclass
class World:
    """ECS and the ledger for one indexed run: tasks end when the test says."""

    desired: DesiredRun | None
    ledger: dict[RunKey, RunRecord] = field(default_factory=dict)
    tasks: dict[str, tuple[RunKey, int, TaskRecord]] = field(default_factory=dict)
    requests: list[Mapping[str, Any]] = field(default_factory=list)

    def end(self, index: int, code: int, now: datetime = NOW) -> None:
        """The live task of `index` exits `code` at `now`."""
        for arn, (key, attempt, seen) in self.tasks.items():
            if key.index == index and seen.last_status != "STOPPED":
                stopped = TaskRecord(
                    arn, "STOPPED", {"app": code}, "EssentialContainerExited", stopped_at=now
                )
                self.tasks[arn] = (key, attempt, stopped)

    def run_pass(self, now: datetime = NOW) -> list[Action]:
        """One pass: plan the run against what ECS shows, then apply the plan."""
        obs = observed(*(observed_task(t, k, a) for k, a, t in self.tasks.values()))
        indexes = {k.index: r for k, r in self.ledger.items() if k.index is not None}
        runs = (self.desired,) if self.desired is not None else ()
        ctx = context(*runs, obs=obs, now=now)
        actions = plan_indexed_run(self.desired, self.ledger.get(RUN), indexes, ctx)
        for action in actions:
            self.apply(action, now)
        return actions

    def apply(self, action: Action, now: datetime) -> None:
        """What the executor would do: RunTask places one task; records are saved."""
        if isinstance(action, StartAttempt):
            attempt = next(a for a in action.record.attempts if a.number == action.attempt)
            self.requests.append(attempt.request)
            arn = task_arn(f"{action.run.index}-{action.attempt}")
            placed = TaskRecord(arn, "RUNNING", started_at=now)
            self.tasks[arn] = (action.run, action.attempt, placed)
            record = with_run_task_result(action.record, action.attempt, tasks=(placed,), now=now)
            self.ledger[action.run] = record
        elif isinstance(action, StopTasks):
            for arn in action.task_arns:
                key, attempt, seen = self.tasks[arn]
                self.tasks[arn] = (key, attempt, replace(seen, last_status="STOPPED"))
            self.ledger[action.run] = action.record
        elif isinstance(action, RecordRun):
            self.ledger[action.run] = action.record

    def run(self) -> RunRecord:
        """The run's own record."""
        return self.ledger[RUN]

    def index(self, index: int) -> RunRecord:
        """One index's record."""
        return self.ledger[RUN.of_index(index)]

    def live(self) -> list[int]:
        """Indexes with a task ECS shows not stopped."""
        return sorted(
            k.index
            for k, _, t in self.tasks.values()
            if t.last_status != "STOPPED" and k.index is not None
        )


def indexed(**fields: Any) -> DesiredRun:
    """The JobRun backfill/1 with the given spec fields (completions=5 ...)."""
    return desired_run("backfill", "1", **fields)


def started(actions: list[Action]) -> list[int | None]:
    """Which indexes the actions start."""
    return [a.run.index for a in actions if isinstance(a, StartAttempt)]


def test_at_most_parallelism_indexes_start_and_a_freed_slot_is_used_in_the_same_pass() -> None:
    world = World(indexed(completions=5, parallelism=2))
    assert started(world.run_pass()) == [0, 1]
    assert world.run().phase is Phase.PENDING
    assert "0/5 completed" in world.run().message
    assert started(world.run_pass(at(1))) == []  # both slots taken
    world.end(0, 0, at(2))
    assert started(world.run_pass(at(3))) == [2]
    assert world.index(0).phase is Phase.SUCCEEDED
    assert world.live() == [1, 2]


def test_every_index_shares_one_revision_and_gets_its_index_by_override_and_tag() -> None:
    world = World(indexed(completions=3))
    world.run_pass()
    assert len(world.requests) == 3
    for index, request in enumerate(world.requests):
        assert request["taskDefinition"] == TD_ARN
        tags = {t["key"]: t["value"] for t in request["tags"]}
        assert tags[TAG_INDEX] == str(index)
        overrides = request["overrides"]["containerOverrides"]
        assert overrides == [
            {
                "name": "app",
                "environment": [{"name": COMPLETION_INDEX_VARIABLE, "value": str(index)}],
            }
        ]
        assert request["clientToken"] == client_token(OWNER, RUN.of_index(index), 1)
    assert len({r["clientToken"] for r in world.requests}) == 3


def test_a_manifest_override_keeps_its_environment_beside_the_index() -> None:
    overrides = {
        "containerOverrides": [{"name": "app", "environment": [{"name": "A", "value": "1"}]}]
    }
    world = World(indexed(completions=2, overrides=overrides))
    world.run_pass()
    environment = world.requests[1]["overrides"]["containerOverrides"][0]["environment"]
    assert environment == [
        {"name": "A", "value": "1"},
        {"name": COMPLETION_INDEX_VARIABLE, "value": "1"},
    ]


def test_the_run_succeeds_once_every_index_succeeded() -> None:
    world = World(indexed(completions=3, parallelism=3))
    world.run_pass()
    for index in range(3):
        world.end(index, 0, at(5))
    world.run_pass(at(6))
    assert world.run().phase is Phase.SUCCEEDED
    assert world.run().reason is Reason.COMPLETED
    assert world.run().message == "all 3 indexes succeeded"
    assert world.run().finished_at == at(6)


def test_an_index_retries_on_its_own_budget_then_fails_the_run_and_stops_the_others() -> None:
    world = World(
        indexed(completions=4, parallelism=2, backoffLimit=1, backoff={"initialSeconds": 10})
    )
    world.run_pass()
    world.end(1, 3, at(1))
    # Index 1 waits out its backoff without a slot: new index 2 takes it.
    assert started(world.run_pass(at(2))) == [2]
    assert world.index(1).reason is Reason.BACKOFF
    assert world.run().phase is not Phase.FAILED
    # The backoff is over but both slots are taken: index 1 waits for one.
    assert started(world.run_pass(at(13))) == []
    assert world.index(1).reason is Reason.WAITING
    assert "waiting for a slot" in world.index(1).message
    # A slot frees: the due retry takes it before new index 3.
    world.end(0, 0, at(14))
    assert started(world.run_pass(at(15))) == [1]
    assert len(world.index(1).attempts) == 2
    world.end(1, 3, at(16))
    actions = world.run_pass(at(17))
    assert world.index(1).reason is Reason.BACKOFF_LIMIT_EXCEEDED
    assert world.run().phase is Phase.FAILED
    assert world.run().reason is Reason.FAILED_INDEXES
    assert world.run().message.startswith("index 1 failed: ")
    stops = [a for a in actions if isinstance(a, StopTasks)]
    assert [a.run.index for a in stops] == [2]
    assert world.index(2).phase is Phase.FAILED
    assert world.index(2).reason is Reason.FAILED_INDEXES
    assert world.live() == []
    # Nothing starts once the run ended, whatever passes follow.
    assert started(world.run_pass(at(100))) == []
    assert RUN.of_index(3) not in world.ledger


def test_max_failed_indexes_lets_the_others_finish_then_the_run_fails() -> None:
    world = World(indexed(completions=3, parallelism=3, maxFailedIndexes=1))
    world.run_pass()
    world.end(0, 1, at(1))
    world.run_pass(at(2))
    assert world.index(0).phase is Phase.FAILED
    assert world.run().phase is Phase.RUNNING
    world.end(1, 0, at(3))
    world.end(2, 0, at(3))
    world.run_pass(at(4))
    assert world.run().phase is Phase.FAILED
    assert world.run().reason is Reason.FAILED_INDEXES
    assert world.run().message == "1 of 3 indexes failed (maxFailedIndexes 1)"


def test_a_cancel_request_stops_every_live_index_and_starts_no_new_one() -> None:
    world = World(indexed(completions=5, parallelism=2))
    world.run_pass()
    world.ledger[RUN] = replace(world.run(), cancel=CancelRequest("ana", "wrong month", NOW))
    actions = world.run_pass(at(1))
    assert sorted(a.run.index for a in actions if isinstance(a, StopTasks)) == [0, 1]
    assert started(actions) == []
    world.run_pass(at(2))
    assert world.run().phase is Phase.FAILED
    assert world.run().reason is Reason.CANCELLED
    assert world.run().message == "cancelled by ana: wrong month"
    assert {world.index(i).reason for i in (0, 1)} == {Reason.CANCELLED}


def test_the_deadline_counts_from_the_first_index_and_stops_them_all() -> None:
    world = World(indexed(completions=4, parallelism=2, activeDeadlineSeconds=60))
    world.run_pass()
    world.end(0, 0, at(10))
    world.run_pass(at(11))  # index 2 starts at 11 s
    actions = world.run_pass(at(60))
    assert sorted(a.run.index for a in actions if isinstance(a, StopTasks)) == [1, 2]
    assert world.run().reason is Reason.DEADLINE_EXCEEDED
    assert world.index(0).phase is Phase.SUCCEEDED


def test_new_indexes_start_from_the_frozen_spec_after_an_edit() -> None:
    world = World(indexed(completions=3, parallelism=1))
    world.run_pass()
    world.end(0, 0, at(1))
    world.run_pass(at(2))
    assert world.run().frozen_spec is not None
    world.desired = indexed(completions=3, parallelism=1, image="other:2")
    world.end(1, 0, at(3))
    world.run_pass(at(4))
    assert world.index(2).frozen_spec == world.index(0).frozen_spec
    assert all(r["taskDefinition"] == TD_ARN for r in world.requests)
    assert "change spec.runId" in world.run().message


def test_a_removed_manifest_orphans_the_run_through_its_indexes() -> None:
    world = World(indexed(completions=3, parallelism=2))
    world.run_pass()
    world.desired = None
    world.end(0, 0, at(1))
    world.run_pass(at(2))
    assert world.run().reason is Reason.ORPHANED
    assert not world.run().phase.terminal  # index 1 still runs: it is left to finish
    world.end(1, 0, at(3))
    world.run_pass(at(4))
    assert world.run().phase is Phase.FAILED
    assert world.run().reason is Reason.ORPHANED
    assert RUN.of_index(2) not in world.ledger


def test_the_full_planner_never_orphans_or_supersedes_an_index_on_its_own() -> None:
    world = World(indexed(completions=2))
    world.run_pass()
    desired = world.desired
    assert desired is not None
    view = LedgerView(runs=dict(world.ledger))
    obs = observed(*(observed_task(t, k, a) for k, a, t in world.tasks.values()))
    plan = make_plan(
        DesiredInput(runs={RUN: desired}, names=frozenset({"backfill"})), obs, view, at(1), OWNER
    )
    assert plan.errors == ()
    assert not [a for a in plan.actions if isinstance(a, StopTasks)]
    assert all(
        a.record.reason not in (Reason.CANCELLED, Reason.ORPHANED)
        for a in plan.actions
        if isinstance(a, RecordRun)
    )


def test_a_cron_job_template_may_be_indexed_and_replace_stops_every_index() -> None:
    from controller.model.manifest import ConcurrencyPolicy, Kind
    from controller.plan.cronjobs import schedule_cron_jobs
    from tests.plan.test_cronjobs import DUE, NAME, PASS, PREVIOUS, STARTED, cron_job

    template = {"completions": 3, "parallelism": 2}
    previous = World(desired_run(NAME, PREVIOUS, kind=Kind.CRON_JOB, **template))
    # The previous occurrence, started by the 18:29 pass: indexes 0 and 1 run.
    key = RunKey(NAME, PREVIOUS)
    indexes = {k.index: r for k, r in previous.ledger.items() if k.index is not None}
    obs = observed(*(observed_task(t, k, a) for k, a, t in previous.tasks.values()))
    assert previous.desired is not None
    ctx = context(previous.desired, obs=obs, now=STARTED)
    for action in plan_indexed_run(previous.desired, None, indexes, ctx):
        previous.apply(action, STARTED)
    assert previous.ledger[key].phase is Phase.PENDING
    assert previous.live() == [0, 1]

    cron = cron_job(ConcurrencyPolicy.REPLACE, **template)
    view = LedgerView(
        runs=dict(previous.ledger),
        cron_last_scheduled={NAME: datetime(2026, 12, 1, 18, 29, tzinfo=UTC)},
    )
    scheduled = schedule_cron_jobs({NAME: cron}, view, PASS)
    desired = DesiredInput(runs=scheduled.runs, names=frozenset({NAME}), cron=scheduled)
    obs = observed(
        *(observed_task(t, k, a) for k, a, t in previous.tasks.values()),
        families={"backfill": ()},
    )
    plan = make_plan(desired, obs, view, PASS, OWNER)
    assert plan.errors == ()
    stopped = sorted(a.run.index for a in plan.actions if isinstance(a, StopTasks))
    assert stopped == [0, 1]
    ended = [a.record for a in plan.actions if isinstance(a, RecordRun) and a.run == key]
    assert [(r.phase, r.reason) for r in ended] == [(Phase.FAILED, Reason.CANCELLED)]
    starts = [a.run for a in plan.actions if isinstance(a, StartAttempt)]
    assert starts == [RunKey(NAME, DUE, 0), RunKey(NAME, DUE, 1)]
