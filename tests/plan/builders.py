"""Tiny builders for planner tests: plain values, no AWS, no mocks.

A planner test reads as a table of (desired, observed, ledger, now) -> actions;
these builders keep each row short. Records are made by the planner itself
wherever possible (`start`, `placed`, `step`), so a test never depends on a
hand-built ledger state the planner could not have produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.model.build import job_spec_from_raw
from controller.model.identity import (
    TAG_ATTEMPT,
    TAG_KIND,
    TAG_OWNER,
    TAG_RUN,
    TAG_RUN_ID,
    started_by,
)
from controller.model.manifest import Kind, RunKey
from controller.model.observed import ObservedState, ObservedTask, ResolvedRef
from controller.model.run import LedgerView, RevisionRecord, RunRecord, TaskRecord
from controller.model.taskdef import spec_hash
from controller.plan.actions import Action, RecordRun, ResumeAttempt, StartAttempt, StopTasks
from controller.plan.lifecycle import plan_run
from controller.plan.records import DesiredRun, RunContext, with_run_task_result
from controller.plan.taskdefs import TaskDefinitionChoice

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
OWNER = "team-a"
CLUSTER = "batch"
FAMILY = "backfill"
IMAGE = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/orders:2026.11.28"
ACCOUNT_PREFIX = "arn:aws:ecs:ap-northeast-1:123456789012"
TD_ARN = f"{ACCOUNT_PREFIX}:task-definition/{FAMILY}:7"


def at(seconds: float) -> datetime:
    """NOW plus `seconds`."""
    return NOW + timedelta(seconds=seconds)


def task_arn(short: str) -> str:
    """A task ARN ending in `short`."""
    return f"{ACCOUNT_PREFIX}:task/{CLUSTER}/{short}"


def taskdef_arn(revision: int, family: str = FAMILY) -> str:
    """A task-definition revision ARN."""
    return f"{ACCOUNT_PREFIX}:task-definition/{family}:{revision}"


def task_definition(
    image: str = IMAGE, *, family: str = FAMILY, sidecar_essential: bool | None = None
) -> dict[str, Any]:
    """An inline taskDefinition: container `app`, plus `sidecar` when asked for."""
    containers: list[dict[str, Any]] = [{"name": "app", "image": image, "command": ["run"]}]
    if sidecar_essential is not None:
        containers.append({"name": "sidecar", "image": "envoy:1", "essential": sidecar_essential})
    return {"family": family, "cpu": "256", "memory": "512", "containerDefinitions": containers}


def desired_run(
    name: str = "backfill",
    run_id: str = "1",
    *,
    kind: Kind = Kind.JOB_RUN,
    image: str = IMAGE,
    sidecar_essential: bool | None = None,
    suspend: bool = False,
    **fields: Any,
) -> DesiredRun:
    """A DesiredRun; `fields` are extra spec members in manifest spelling (backoffLimit=2)."""
    raw: dict[str, Any] = {
        "cluster": CLUSTER,
        "taskDefinition": task_definition(image, sidecar_essential=sidecar_essential),
        **fields,
    }
    if "taskDefinitionRef" in fields:
        del raw["taskDefinition"]
    spec = job_spec_from_raw({**raw, "runId": run_id, "suspend": suspend})
    return DesiredRun(
        key=RunKey(name, run_id), kind=kind, spec=spec, suspend=suspend, digest=spec.digest
    )


def task(
    short: str = "t1",
    status: str = "RUNNING",
    *,
    exit_codes: Mapping[str, int | None] | None = None,
    stop_code: str | None = None,
    stopped_reason: str | None = None,
    stopped_at: datetime | None = None,
) -> TaskRecord:
    """A task as ECS reports it; STOPPED tasks default to stopping at NOW."""
    if status == "STOPPED" and stopped_at is None:
        stopped_at = NOW
    return TaskRecord(
        arn=task_arn(short),
        last_status=status,
        exit_codes=dict(exit_codes or {}),
        stop_code=stop_code,
        stopped_reason=stopped_reason,
        started_at=NOW - timedelta(minutes=5) if status != "PROVISIONING" else None,
        stopped_at=stopped_at,
    )


def stopped(
    short: str = "t1",
    exit_code: int | None = 0,
    *,
    stop_code: str | None = "EssentialContainerExited",
    at_time: datetime = NOW,
    **more_exit_codes: int | None,
) -> TaskRecord:
    """A STOPPED task whose container `app` exited with `exit_code` (others by keyword)."""
    return task(
        short,
        "STOPPED",
        exit_codes={"app": exit_code, **more_exit_codes},
        stop_code=stop_code,
        stopped_at=at_time,
    )


def observed_task(
    record: TaskRecord,
    key: RunKey,
    attempt: int,
    *,
    owner: str = OWNER,
    kind: Kind = Kind.JOB_RUN,
) -> ObservedTask:
    """A described task carrying the controller's five tags."""
    tags = {
        TAG_OWNER: owner,
        TAG_KIND: kind.value,
        TAG_RUN: key.name,
        TAG_RUN_ID: key.run_id,
        TAG_ATTEMPT: str(attempt),
    }
    return ObservedTask(
        record=record,
        cluster=CLUSTER,
        task_definition_arn=TD_ARN,
        started_by=started_by(owner),
        tags=tags,
    )


def observed(
    *tasks: ObservedTask | TaskRecord,
    missing: Iterable[str] = (),
    unreadable: Iterable[str] = (),
    families: Mapping[str, tuple[RevisionRecord, ...]] | None = None,
    refs: Iterable[ResolvedRef] = (),
    bodies: Mapping[str, Mapping[str, Any]] | None = None,
) -> ObservedState:
    """An ObservedState; bare TaskRecords become untagged described tasks."""
    described: dict[str, ObservedTask] = {}
    for item in tasks:
        seen = (
            item
            if isinstance(item, ObservedTask)
            else ObservedTask(item, CLUSTER, TD_ARN, started_by(OWNER))
        )
        described[seen.arn] = seen
    return ObservedState(
        tasks=described,
        missing_tasks=frozenset(missing),
        families=dict(families or {}),
        refs={r.ref: r for r in refs},
        unreadable_clusters=frozenset(unreadable),
        revision_bodies=dict(bodies or {}),
    )


def revision(
    number: int,
    td: Mapping[str, Any] | None = None,
    *,
    owner: str | None = OWNER,
    status: str = "ACTIVE",
    computed: bool = True,
    tagged: bool = False,
) -> RevisionRecord:
    """A revision of FAMILY whose content is `td` (computed hash and/or spec-hash tag)."""
    digest = spec_hash(td if td is not None else task_definition())
    return RevisionRecord(
        arn=taskdef_arn(number),
        family=FAMILY,
        revision=number,
        spec_hash=digest if computed else "0" * 64,
        owner=owner,
        status=status,
        tagged_hash=digest if tagged else None,
    )


def context(
    *runs: DesiredRun,
    obs: ObservedState | None = None,
    now: datetime = NOW,
    arn: str = TD_ARN,
) -> RunContext:
    """A RunContext in which every inline taskDefinition of `runs` resolves to `arn`."""
    hashes = {
        r.key: spec_hash(r.spec.task_definition) for r in runs if r.spec.task_definition is not None
    }
    choices = {h: TaskDefinitionChoice(h, arn) for h in hashes.values()}
    return RunContext(
        owner=OWNER, now=now, observed=obs or ObservedState(), choices=choices, spec_hashes=hashes
    )


def record_of(actions: Sequence[Action]) -> RunRecord | None:
    """The run record the plan would leave in the ledger (the last one it carries)."""
    found: RunRecord | None = None
    for action in actions:
        if isinstance(action, StartAttempt | ResumeAttempt | StopTasks | RecordRun):
            found = action.record
    return found


def step(
    desired: DesiredRun | None,
    record: RunRecord | None,
    obs: ObservedState | None = None,
    now: datetime = NOW,
) -> tuple[list[Action], RunRecord | None]:
    """One planning pass for one run; returns the actions and the ledger after them."""
    runs = (desired,) if desired is not None else ()
    actions = plan_run(desired, record, context(*runs, obs=obs, now=now))
    return actions, record_of(actions) or record


def after_pass(
    desired: DesiredRun | None,
    record: RunRecord,
    obs: ObservedState | None = None,
    now: datetime = NOW,
) -> RunRecord:
    """The ledger after one pass over a run it already holds."""
    return step(desired, record, obs, now)[1] or record


def start(desired: DesiredRun, now: datetime = NOW) -> RunRecord:
    """The ledger after attempt 1's intent was recorded (RunTask not answered yet)."""
    actions, record = step(desired, None, now=now)
    assert [type(a) for a in actions] == [StartAttempt], actions
    assert record is not None
    return record


def placed(record: RunRecord, *tasks: TaskRecord, now: datetime = NOW) -> RunRecord:
    """The ledger after RunTask placed `tasks` for the current attempt."""
    attempt = record.current_attempt
    assert attempt is not None
    return with_run_task_result(record, attempt.number, tasks=tasks, now=now)


def running(desired: DesiredRun, *shorts: str, now: datetime = NOW) -> RunRecord:
    """A run whose attempt 1 was placed with tasks `shorts` (default one task t1)."""
    tasks = tuple(task(s, "PENDING") for s in shorts or ("t1",))
    return placed(start(desired, now), *tasks, now=now)


def ending(record: RunRecord, how: str, now: datetime = NOW) -> ObservedState:
    """What ECS shows when the current attempt's tasks end `how`, at `now`.

    `how` is "exit N" (container app exits N), an infrastructure stopCode
    ("SpotInterruption"), or "vanished" (ECS no longer knows the tasks).
    """
    attempt = record.current_attempt
    assert attempt is not None
    arns = [t.arn for t in attempt.tasks]
    if how == "vanished":
        return observed(missing=arns)
    if how.startswith("exit "):
        code = int(how.removeprefix("exit "))
        ends = [
            TaskRecord(a, "STOPPED", {"app": code}, "EssentialContainerExited", stopped_at=now)
            for a in arns
        ]
    else:
        ends = [TaskRecord(a, "STOPPED", {}, how, f"{how} happened", stopped_at=now) for a in arns]
    return observed(*ends)


def ledger(*records: RunRecord) -> LedgerView:
    """A ledger holding `records`."""
    return LedgerView(runs={r.key: r for r in records})


def kinds(actions: Iterable[Action]) -> list[str]:
    """The action type names, for readable assertions."""
    return [type(a).__name__ for a in actions]
