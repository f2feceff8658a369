"""The data of a run's plan, and the ledger records it builds and updates (DESIGN.md §4).

`DesiredRun` is what the source asks for and `RunContext` everything else a
run's plan reads; a `RunRecord` (`controller.model.run`) is what the ledger
keeps of the run. This module is the bookkeeping: the first record of a
run, a run's phase, reason and message, the drift note, the frozen spec read
back (`effective_spec`), and the answers of the executor's writes merged in
(`with_run_task_result`, `with_stopped_tasks`). It decides nothing: when a
run starts, retries or stops is `lifecycle`, what its tasks' ends mean is
`outcome`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from controller.model.build import job_spec_from_raw
from controller.model.manifest import JobSpec, Kind, RunKey
from controller.model.observed import ObservedState
from controller.model.run import AttemptOutcome, Phase, Reason, RunOrigin, RunRecord, TaskRecord
from controller.plan.taskdefs import TaskDefinitionChoice

#: Key under which a frozen spec records the success containers of a
#: referenced revision (an inline taskDefinition carries its own).
ESSENTIAL_KEY = "x-essentialContainers"
#: Key under which the frozen spec of an indexed run records every container
#: of a referenced revision (each gets JOB_COMPLETION_INDEX).
CONTAINERS_KEY = "x-containers"


@dataclass(frozen=True)
class DesiredRun:
    """One run the source asks for."""

    key: RunKey
    kind: Kind
    spec: JobSpec
    suspend: bool
    digest: str
    #: what asks for the run (recorded on its first record)
    origin: RunOrigin = RunOrigin.MANIFEST
    #: why no new attempt may start this pass although one is due (an index
    #: of an indexed run waiting for a slot under `parallelism`), else None
    hold: str | None = None


@dataclass(frozen=True)
class RunContext:
    """Everything besides the run itself that its plan depends on."""

    owner: str
    now: datetime
    observed: ObservedState
    #: spec hash -> chosen revision, for inline task definitions
    choices: Mapping[str, TaskDefinitionChoice]
    #: spec hash of each desired run's inline taskDefinition
    spec_hashes: Mapping[RunKey, str]
    #: runs waiting for room that observed capacity now fits: they retry
    #: at once instead of waiting out their backoff
    room: frozenset[RunKey] = frozenset()


def new_record(desired: DesiredRun, now: datetime) -> RunRecord:
    """The first ledger record of a run, before anything happened."""
    return RunRecord(
        key=desired.key,
        kind=desired.kind,
        phase=Phase.PENDING,
        reason=Reason.WAITING,
        message="waiting to start",
        created_at=now,
        updated_at=now,
        spec_digest=desired.digest,
        origin=desired.origin,
    )


def effective_spec(desired: DesiredRun | None, record: RunRecord) -> JobSpec | None:
    """The frozen spec once started, else the desired one."""
    if record.frozen_spec is not None:
        raw = {
            k: v for k, v in record.frozen_spec.items() if k not in (ESSENTIAL_KEY, CONTAINERS_KEY)
        }
        try:
            return job_spec_from_raw(raw)
        except (KeyError, TypeError, ValueError):
            return None
    return desired.spec if desired is not None else None


# -- phase, reason and message ----------------------------------------------


def with_status(
    record: RunRecord, phase: Phase, reason: Reason, message: str, ctx: RunContext
) -> RunRecord:
    """The record with a new phase and reason, and message when one is given."""
    del ctx
    return replace(record, phase=phase, reason=reason, message=message or record.message)


def wait(
    record: RunRecord, reason: Reason, not_before: datetime, message: str, ctx: RunContext
) -> RunRecord:
    """The record Pending for `reason` until `not_before`."""
    waiting = with_status(record, Phase.PENDING, reason, message, ctx)
    return replace(waiting, not_before=not_before)


def finish(
    record: RunRecord, phase: Phase, reason: Reason, message: str, ctx: RunContext
) -> RunRecord:
    """The record in a final phase, finished now."""
    return replace(
        record,
        phase=phase,
        reason=reason,
        message=message,
        finished_at=ctx.now,
        not_before=None,
    )


def changed(before: RunRecord, after: RunRecord) -> bool:
    """True when the record differs from `before` in more than `updated_at`."""
    return replace(before, updated_at=after.updated_at) != after


DRIFT_NOTE = "spec changed after the run started; change spec.runId to run again"


def with_drift(desired: DesiredRun | None, record: RunRecord) -> RunRecord:
    """The record whose message says so when the manifest changed after the run started."""
    drifted = desired is not None and record.started and desired.digest != record.spec_digest
    if not drifted or DRIFT_NOTE in record.message:
        return record
    return replace(record, message=f"{record.message} ({DRIFT_NOTE})")


# -- results of writes, applied by the executor ------------------------------


def with_run_task_result(
    record: RunRecord,
    attempt_number: int,
    *,
    tasks: tuple[TaskRecord, ...] = (),
    unplaceable: tuple[str, ...] = (),
    rejected: str | None = None,
    now: datetime,
) -> RunRecord:
    """The run after RunTask answered (step 3 of the start protocol)."""
    attempt = next(a for a in record.attempts if a.number == attempt_number)
    if tasks:
        attempt = replace(attempt, tasks=tasks, submitted=True, placement_failures=unplaceable)
        message = f"attempt {attempt_number}: {len(tasks)} task(s) placed"
        return replace(
            record.with_attempt(attempt),
            phase=Phase.PENDING,
            reason=Reason.STARTING,
            message=message,
            updated_at=now,
            pending_since=None,
        )
    if rejected is not None:
        outcome, message = AttemptOutcome.REJECTED, rejected
        run_fields: dict[str, Any] = {
            "phase": Phase.FAILED,
            "reason": Reason.RUN_TASK_ERROR,
            "finished_at": now,
        }
    else:
        outcome = AttemptOutcome.UNPLACEABLE
        message = "cannot be placed: " + ", ".join(unplaceable or ("no task placed",))
        run_fields = {
            "phase": Phase.PENDING,
            "reason": Reason.UNSCHEDULABLE,
            "pending_since": record.pending_since or now,
        }
    # Nothing was placed: the attempt is over as soon as RunTask answered.
    closed = replace(
        attempt,
        submitted=True,
        placement_failures=unplaceable,
        outcome=outcome,
        message=message,
        finished_at=now,
    )
    return replace(record.with_attempt(closed), message=message, updated_at=now, **run_fields)


def with_stopped_tasks(record: RunRecord, stopped: Mapping[str, TaskRecord]) -> RunRecord:
    """The run with the task states StopTask returned merged in."""
    updated = record
    for attempt in record.attempts:
        if any(t.arn in stopped for t in attempt.tasks):
            tasks = tuple(stopped.get(t.arn, t) for t in attempt.tasks)
            updated = updated.with_attempt(replace(attempt, tasks=tasks))
    return updated
