"""Exactly one start per attempt, whatever ECS and crashes do (DESIGN.md §4 "Identity").

The table tests pin single transitions. This property drives one run through
random sequences of passes: tasks that stay pending, run, exit 0 or 1, fail
to start or are interrupted; crashes before or after RunTask; clusters that
cannot be read; ECS forgetting stopped tasks after an hour; gaps longer than
a client token's 24 h. Between passes every action is applied to the ledger
and to a toy ECS (a dict, not a second ECS model: it only keeps tasks and
honours client tokens for 24 h). Whatever happens, no attempt number is
started twice, no attempt starts while the previous one is live, and no
client token launches tasks twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.model.observed import ObservedState, ObservedTask
from controller.model.run import LedgerView, RunRecord, TaskRecord
from controller.plan.actions import (
    RecordRun,
    RegisterTaskDefinition,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.planner import DesiredInput, make_plan
from controller.plan.records import DesiredRun, with_run_task_result, with_stopped_tasks
from tests.plan.builders import (
    CLUSTER,
    FAMILY,
    NOW,
    OWNER,
    desired_run,
    observed_task,
    revision,
    task_arn,
)

TOKEN_LIFETIME = timedelta(hours=24)
ECS_MEMORY = timedelta(hours=1)

FATES = ("stay", "RUNNING", "exit 0", "exit 1", "TaskFailedToStart", "SpotInterruption")
ANSWERS = ("placed", "placed", "placed", "unplaceable", "crash-before", "crash-after", "rejected")


@dataclass
class ToyEcs:
    """Tasks by ARN, and what each client token launched (and when)."""

    tasks: dict[str, ObservedTask] = field(default_factory=dict)
    tokens: dict[str, tuple[datetime, tuple[str, ...]]] = field(default_factory=dict)
    launches: Counter[str] = field(default_factory=Counter)
    serial: int = 0

    def run_task(
        self, request: dict[str, Any], run: DesiredRun, attempt: int, now: datetime, room: bool
    ) -> tuple[TaskRecord, ...] | None:
        """RunTask: a live token answers with its tasks; else launch if there is room."""
        token = request["clientToken"]
        known = self.tokens.get(token)
        if known is not None and now - known[0] < TOKEN_LIFETIME:
            return tuple(
                self.tasks[a].record if a in self.tasks else TaskRecord(a) for a in known[1]
            )
        if not room:
            return None
        arns = []
        for _ in range(int(request["count"])):
            self.serial += 1
            record = TaskRecord(task_arn(f"x{self.serial}"), "PENDING", started_at=now)
            self.tasks[record.arn] = observed_task(record, run.key, attempt)
            arns.append(record.arn)
        self.tokens[token] = (now, tuple(arns))
        self.launches[token] += 1
        return tuple(self.tasks[a].record for a in arns)

    def evolve(self, fate: str, now: datetime) -> None:
        """Every live task meets `fate`; stopped tasks older than an hour are forgotten."""
        for arn, seen in list(self.tasks.items()):
            record = seen.record
            if record.stopped:
                if record.stopped_at is not None and now - record.stopped_at > ECS_MEMORY:
                    del self.tasks[arn]
                continue
            if fate == "stay":
                continue
            if fate == "RUNNING":
                record = replace(record, last_status="RUNNING")
            elif fate.startswith("exit "):
                code = int(fate.removeprefix("exit "))
                record = replace(
                    record,
                    last_status="STOPPED",
                    exit_codes={"app": code},
                    stop_code="EssentialContainerExited",
                    stopped_at=now,
                )
            else:
                record = replace(record, last_status="STOPPED", stop_code=fate, stopped_at=now)
            self.tasks[arn] = replace(seen, record=record)

    def stop(self, arn: str, now: datetime) -> TaskRecord:
        """StopTask: the task ends with exit 143."""
        seen = self.tasks[arn]
        record = replace(
            seen.record,
            last_status="STOPPED",
            exit_codes={"app": 143},
            stop_code="UserInitiated",
            stopped_at=now,
        )
        self.tasks[arn] = replace(seen, record=record)
        return record

    def observe(self, record: RunRecord | None, unreadable: bool) -> ObservedState:
        """What a pass sees: every task, and which ledger tasks ECS no longer knows."""
        families = {FAMILY: (revision(1),)}
        if unreadable:
            return ObservedState(families=families, unreadable_clusters=frozenset({CLUSTER}))
        known = {t.arn for a in (record.attempts if record else ()) for t in a.tasks}
        return ObservedState(
            tasks=dict(self.tasks),
            missing_tasks=frozenset(known - set(self.tasks)),
            families=families,
        )


passes = st.lists(
    st.tuples(
        st.sampled_from([1, 20, 300, 3600, 4000, 25 * 3600]),
        st.sampled_from(FATES),
        st.sampled_from([False, False, False, True]),
        st.sampled_from(ANSWERS),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    events=passes,
    count=st.integers(1, 3),
    deadline=st.sampled_from([None, 7200]),
)
def test_no_attempt_is_started_twice(
    events: list[tuple[int, str, bool, str]], count: int, deadline: int | None
) -> None:
    run = desired_run(
        count=count,
        backoffLimit=2,
        backoff={"initialSeconds": 10, "maxSeconds": 60},
        activeDeadlineSeconds=deadline,
    )
    ecs = ToyEcs()
    record: RunRecord | None = None
    started: Counter[int] = Counter()
    now = NOW

    def answer(saved: RunRecord, attempt: int, how: str) -> RunRecord | None:
        """RunTask's effect on ECS and the ledger; None when the process crashed."""
        request = dict(next(a for a in saved.attempts if a.number == attempt).request)
        if how == "crash-before":
            return None
        if how == "rejected" and request["clientToken"] not in ecs.tokens:
            return with_run_task_result(saved, attempt, rejected="ClientException", now=now)
        tasks = ecs.run_task(request, run, attempt, now, room=how != "unplaceable")
        if how == "crash-after":
            return None
        if tasks:
            return with_run_task_result(saved, attempt, tasks=tasks, now=now)
        return with_run_task_result(saved, attempt, unplaceable=("RESOURCE:CPU",), now=now)

    for gap, fate, unreadable, how in events:
        now += timedelta(seconds=gap)
        ecs.evolve(fate, now)
        view = LedgerView(runs={run.key: record} if record else {})
        plan = make_plan(
            DesiredInput(runs={run.key: run}), ecs.observe(record, unreadable), view, now, OWNER
        )
        for action in plan.actions:
            assert not isinstance(action, RegisterTaskDefinition)  # revision 1 is reused
            if isinstance(action, StartAttempt):
                *earlier, new = action.record.attempts
                assert all(a.finished for a in earlier), "a live attempt was replaced"
                assert new.number == action.attempt == (len(record.attempts) if record else 0) + 1
                started[action.attempt] += 1
                record = action.record
                record = answer(record, action.attempt, how) or record
            elif isinstance(action, ResumeAttempt):
                assert record is not None
                attempt = next(a for a in record.attempts if a.number == action.attempt)
                assert not attempt.submitted
                assert not attempt.finished
                assert now - attempt.intent_at < TOKEN_LIFETIME
                record = answer(action.record, action.attempt, how) or action.record
            elif isinstance(action, StopTasks):
                stopped = {a: ecs.stop(a, now) for a in action.task_arns if a in ecs.tasks}
                record = with_stopped_tasks(action.record, stopped)
            elif isinstance(action, RecordRun):
                record = action.record

    assert all(n == 1 for n in started.values()), started
    assert all(n == 1 for n in ecs.launches.values()), ecs.launches
    if record is not None:
        numbers = [a.number for a in record.attempts]
        assert numbers == list(range(1, len(numbers) + 1))
        assert sorted(started) == numbers
