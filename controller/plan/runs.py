"""The run lifecycle as a pure function of (desired, observed, ledger, now) (DESIGN.md §4).

For each run this module answers: what happened since the last pass (tasks
placed, stopped, vanished; intents left by a crash), what phase the run is
in now, and what to do next (start an attempt, repeat a RunTask with the same
token, stop tasks past the deadline, or just record the new state).

Attempts: every RunTask is one attempt with its own client token. Outcomes
are budgeted separately: application failures against `backoffLimit`,
infrastructure failures against a fixed budget of 3, capacity shortfalls
against `capacity.maxPendingSeconds`. An attempt starts only once the one
before it has an outcome, and a run past its deadline never starts another
(an attempt whose tasks all succeeded by the deadline still counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from controller.model.build import job_spec_from_raw
from controller.model.durations import plus_seconds
from controller.model.identity import client_token
from controller.model.manifest import JobSpec, Kind, RunKey
from controller.model.observed import ObservedState, ResolvedRef
from controller.model.run import AttemptOutcome, AttemptRecord, Phase, Reason, RunRecord, TaskRecord
from controller.model.taskdef import essential_containers
from controller.plan.actions import (
    Action,
    RecordRun,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.request import run_task_request
from controller.plan.taskdefs import TaskDefinitionChoice

#: stopCodes that mean the platform, not the job, failed (DESIGN.md §4).
INFRASTRUCTURE_STOP_CODES = frozenset(
    {"TaskFailedToStart", "SpotInterruption", "TerminationNotice"}
)
#: Infrastructure failures retried on their own budget.
MAX_INFRASTRUCTURE_RETRIES = 3
#: ECS remembers a clientToken for 24 hours per cluster.
CLIENT_TOKEN_LIFETIME = timedelta(hours=24)
#: Key under which a frozen spec records the success containers of a
#: referenced revision (an inline taskDefinition carries its own).
ESSENTIAL_KEY = "x-essentialContainers"


@dataclass(frozen=True)
class DesiredRun:
    """One run the source asks for."""

    key: RunKey
    kind: Kind
    spec: JobSpec
    suspend: bool
    digest: str


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
    )


def plan_run(
    desired: DesiredRun | None,
    record: RunRecord | None,
    ctx: RunContext,
    *,
    gone_reason: Reason | None = None,
    gone_message: str = "",
    stop_message: str | None = None,
) -> list[Action]:
    """The actions for one run; `desired` is None when its manifest no longer asks for it.

    `stop_message`, given only with `desired` None, stops the run's live tasks
    for that reason (the StopTask reason, the run's message and its event).
    """
    if record is None:
        if desired is None:
            return []
        record = new_record(desired, ctx.now)
        fresh = True
    else:
        fresh = False
    if record.phase.terminal:
        return _drift_note(desired, record, ctx)
    before = record
    actions: list[Action] = []
    attempt = record.current_attempt

    # 1. Bring the current attempt up to date with what ECS says.
    if attempt is not None and not attempt.finished:
        updated, resume = _advance_attempt(record, attempt, ctx)
        why_not = _no_resume_reason(desired, record, ctx) if resume else None
        if why_not is not None:
            # Repeating RunTask would launch a task only to stop it next pass.
            updated = replace(
                updated,
                submitted=True,
                outcome=AttemptOutcome.STOPPED,
                message=f"RunTask not repeated: {why_not}",
                finished_at=ctx.now,
            )
        elif resume:
            actions.append(
                ResumeAttempt(
                    run=record.key,
                    record=record,
                    attempt=attempt.number,
                    reason="intent recorded but no task found: repeat with the same token",
                )
            )
            return actions
        record = record.with_attempt(updated)
        attempt = updated

    spec = effective_spec(desired, record)
    if spec is None and record.frozen_spec is None:
        # Never started and no longer asked for: nothing to freeze, nothing to stop.
        record = _finish(
            record,
            Phase.FAILED,
            gone_reason or Reason.ORPHANED,
            gone_message or "manifest removed before the run started",
            ctx,
        )
        return [*actions, RecordRun(record.key, record, record.message)]
    if spec is None:
        # A started run whose frozen spec is unreadable cannot continue.
        record = _finish(
            record, Phase.FAILED, Reason.TASK_DEFINITION_ERROR, "frozen spec lost", ctx
        )
        return [*actions, RecordRun(record.key, record, "frozen spec unreadable")]

    # 2. Deadline: stop what runs and never start again. An attempt whose
    # tasks all succeeded before the deadline is a success, however late a
    # pass gets to see it.
    deadline = _deadline(record, spec)
    if deadline is not None and ctx.now >= deadline and not _succeeded_by(attempt, deadline):
        message = f"activeDeadlineSeconds ({spec.active_deadline_seconds}s) exceeded"
        if attempt is not None and not attempt.finished:
            return [
                *actions,
                *_stop_attempt(
                    record, attempt, spec.cluster, Reason.DEADLINE_EXCEEDED, message, ctx
                ),
            ]
        record = _finish(record, Phase.FAILED, Reason.DEADLINE_EXCEEDED, message, ctx)
        return [*actions, RecordRun(record.key, record, message)]

    # 2b. Tasks stuck waiting for capacity a provider cannot find (PROVISIONING
    # under a capacity provider or Fargate) give up like unplaceable ones.
    if attempt is not None and _provisioning_too_long(attempt, spec, ctx.now):
        waited = spec.capacity.max_pending_seconds
        message = f"tasks still waiting for capacity after {waited}s (capacity.maxPendingSeconds)"
        return [
            *actions,
            *_stop_attempt(record, attempt, spec.cluster, Reason.UNSCHEDULABLE, message, ctx),
        ]

    # 3. A finished attempt decides the run's phase.
    if attempt is not None and attempt.finished:
        record = _after_attempt(record, spec, ctx, gone=desired is None)

    if attempt is not None and not attempt.finished:
        record = _running(record, attempt, ctx)

    # 4. Not asked for any more: no new attempts.
    if desired is None and not record.phase.terminal:
        if attempt is None or attempt.finished:
            record = _finish(
                record,
                Phase.FAILED,
                gone_reason or Reason.ORPHANED,
                gone_message or "manifest removed before the run finished",
                ctx,
            )
        elif stop_message is not None and attempt is not None:
            # Nothing asks for the run any more (--stop-orphans, Replace): stop it.
            reason = gone_reason or Reason.ORPHANED
            return [
                *actions,
                *_stop_attempt(record, attempt, spec.cluster, reason, stop_message, ctx),
            ]
        else:
            record = _with_status(
                record, record.phase, gone_reason or Reason.ORPHANED, gone_message, ctx
            )

    # 5. Start the next attempt when due, and never while one is still in
    # flight: an attempt whose tasks are PENDING, or whose intent is not
    # resolved yet (cluster unreadable), keeps the run Pending too.
    in_flight = attempt is not None and not attempt.finished
    if desired is not None and record.phase is Phase.PENDING and not in_flight:
        start = _maybe_start(desired, record, spec, ctx)
        if isinstance(start, StartAttempt):
            return [*actions, start]
        record = start

    record = _with_drift(desired, record)
    if fresh or _changed(before, record):
        record = replace(record, updated_at=ctx.now)
        actions.append(RecordRun(record.key, record, record.message))
    return actions


# -- attempt bookkeeping ---------------------------------------------------


def _stop_attempt(
    record: RunRecord,
    attempt: AttemptRecord,
    cluster: str,
    reason: Reason,
    message: str,
    ctx: RunContext,
) -> list[Action]:
    """End a live attempt for `reason`: StopTask what still runs, and fail the run."""
    live = tuple(t.arn for t in attempt.tasks if not t.stopped)
    ended = replace(attempt, outcome=AttemptOutcome.STOPPED, message=message, finished_at=ctx.now)
    failed = _finish(record.with_attempt(ended), Phase.FAILED, reason, message, ctx)
    failed = replace(failed, updated_at=ctx.now)
    if not live:
        return [RecordRun(failed.key, failed, message)]
    return [
        StopTasks(
            run=failed.key,
            cluster=cluster,
            task_arns=live,
            stop_reason=f"ecs-job-controller: {message}",
            record=failed,
            reason=message,
        )
    ]


def _no_resume_reason(desired: DesiredRun | None, record: RunRecord, ctx: RunContext) -> str | None:
    """Why an unanswered intent must not be repeated, or None to repeat it."""
    if desired is None:
        return "the manifest no longer asks for this run"
    spec = effective_spec(desired, record)
    deadline = _deadline(record, spec) if spec is not None else None
    if deadline is not None and ctx.now >= deadline:
        return "the run is past its activeDeadlineSeconds"
    return None


def _advance_attempt(
    record: RunRecord, attempt: AttemptRecord, ctx: RunContext
) -> tuple[AttemptRecord, bool]:
    """The attempt updated from observation; True when RunTask must be repeated."""
    cluster = str(attempt.request.get("cluster", ""))
    unreadable = cluster in ctx.observed.unreadable_clusters
    if not attempt.submitted:
        found = ctx.observed.tasks_of_attempt(ctx.owner, record.key, attempt.number)
        if found:
            tasks = tuple(sorted((t.record for t in found), key=lambda t: t.arn))
            attempt = replace(
                attempt, tasks=tasks, submitted=True, message="adopted tasks found by tag"
            )
        elif unreadable:
            return attempt, False
        elif ctx.now - attempt.intent_at >= CLIENT_TOKEN_LIFETIME:
            return (
                replace(
                    attempt,
                    submitted=True,
                    outcome=AttemptOutcome.INFRASTRUCTURE_FAILURE,
                    message="intent older than the client token's 24 h with no task found",
                    finished_at=ctx.now,
                ),
                False,
            )
        else:
            return attempt, True
    if unreadable or not attempt.tasks:
        return attempt, False
    tasks = tuple(_observe_task(t, ctx) for t in attempt.tasks)
    attempt = replace(attempt, tasks=tasks)
    if all(t.stopped for t in tasks):
        expected = int(attempt.request.get("count", 1) or 1)
        outcome, message = attempt_outcome(tasks, _success_containers(record), expected)
        stops = [t.stopped_at for t in tasks if t.stopped_at is not None]
        attempt = replace(
            attempt, outcome=outcome, message=message, finished_at=max(stops) if stops else ctx.now
        )
    return attempt, False


def _observe_task(task: TaskRecord, ctx: RunContext) -> TaskRecord:
    seen = ctx.observed.tasks.get(task.arn)
    if seen is not None:
        return seen.record
    if task.arn in ctx.observed.missing_tasks and not task.stopped:
        return replace(task, missing=True)
    return task


def attempt_outcome(
    tasks: tuple[TaskRecord, ...],
    success_containers: tuple[str, ...],
    expected_tasks: int = 1,
) -> tuple[AttemptOutcome, str]:
    """How an attempt whose tasks all stopped ended, and why."""
    for task in tasks:
        if task.missing and task.last_status != "STOPPED":
            return AttemptOutcome.INFRASTRUCTURE_FAILURE, f"task {_short(task.arn)} vanished"
        if task.stop_code in INFRASTRUCTURE_STOP_CODES:
            return (
                AttemptOutcome.INFRASTRUCTURE_FAILURE,
                f"{task.stop_code}: {task.stopped_reason or 'no reason given'}",
            )
    if len(tasks) < expected_tasks:
        # ECS placed only part of `count`: the attempt cannot succeed as
        # declared, and it is the platform's shortfall, not the job's.
        return (
            AttemptOutcome.INFRASTRUCTURE_FAILURE,
            f"only {len(tasks)} of {expected_tasks} tasks could be placed",
        )
    for task in tasks:
        if task.stop_code == "UserInitiated":
            # Someone else stopped it (our own stops are recorded as STOPPED
            # before they happen): the work did not run to completion.
            reason = task.stopped_reason or "no reason given"
            return AttemptOutcome.APPLICATION_FAILURE, f"task stopped by a user: {reason}"
        names = success_containers or tuple(sorted(task.exit_codes))
        if not names:
            return AttemptOutcome.APPLICATION_FAILURE, "ECS reported no exit codes"
        for name in names:
            code = task.exit_codes.get(name)
            if code != 0:
                why = f"exit code {code}" if code is not None else "no exit code"
                detail = f" ({task.stopped_reason})" if task.stopped_reason else ""
                return AttemptOutcome.APPLICATION_FAILURE, f"container {name}: {why}{detail}"
    return AttemptOutcome.SUCCEEDED, "every success container exited 0"


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _success_containers(record: RunRecord) -> tuple[str, ...]:
    frozen = record.frozen_spec or {}
    explicit = frozen.get("successContainers")
    if explicit:
        return tuple(explicit)
    if frozen.get("taskDefinition") is not None:
        return essential_containers(frozen["taskDefinition"])
    return tuple(frozen.get(ESSENTIAL_KEY) or ())


# -- run phases --------------------------------------------------------------


def effective_spec(desired: DesiredRun | None, record: RunRecord) -> JobSpec | None:
    """The frozen spec once started, else the desired one."""
    if record.frozen_spec is not None:
        raw = {k: v for k, v in record.frozen_spec.items() if k != ESSENTIAL_KEY}
        try:
            return job_spec_from_raw(raw)
        except (KeyError, TypeError, ValueError):
            return None
    return desired.spec if desired is not None else None


def _deadline(record: RunRecord, spec: JobSpec) -> datetime | None:
    first = record.first_started_at
    if first is None or spec.active_deadline_seconds is None:
        return None
    return plus_seconds(first, spec.active_deadline_seconds)


def _succeeded_by(attempt: AttemptRecord | None, deadline: datetime) -> bool:
    return (
        attempt is not None
        and attempt.outcome is AttemptOutcome.SUCCEEDED
        and attempt.finished_at is not None
        and attempt.finished_at <= deadline
    )


def _count(record: RunRecord, outcome: AttemptOutcome) -> int:
    return sum(1 for a in record.attempts if a.outcome is outcome)


def _after_attempt(
    record: RunRecord, spec: JobSpec, ctx: RunContext, *, gone: bool = False
) -> RunRecord:
    attempt = record.current_attempt
    if attempt is None or attempt.outcome is None:
        return record
    finished_at = attempt.finished_at or ctx.now
    match attempt.outcome:
        case AttemptOutcome.SUCCEEDED:
            return _finish(record, Phase.SUCCEEDED, Reason.COMPLETED, attempt.message, ctx)
        case AttemptOutcome.REJECTED:
            return _finish(record, Phase.FAILED, Reason.RUN_TASK_ERROR, attempt.message, ctx)
        case AttemptOutcome.STOPPED if gone:
            return record  # the run is finished below, with the reason it is gone
        case AttemptOutcome.STOPPED:
            return _finish(record, Phase.FAILED, Reason.DEADLINE_EXCEEDED, attempt.message, ctx)
        case AttemptOutcome.APPLICATION_FAILURE:
            failures = _count(record, AttemptOutcome.APPLICATION_FAILURE)
            if failures > spec.backoff_limit:
                limit = spec.backoff_limit
                message = f"{attempt.message}; {failures} failed attempt(s), backoffLimit {limit}"
                return _finish(record, Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED, message, ctx)
            delay = spec.backoff.delay(failures)
            return _wait(
                record, Reason.BACKOFF, plus_seconds(finished_at, delay), attempt.message, ctx
            )
        case AttemptOutcome.INFRASTRUCTURE_FAILURE:
            failures = _count(record, AttemptOutcome.INFRASTRUCTURE_FAILURE)
            if failures > MAX_INFRASTRUCTURE_RETRIES:
                message = f"{attempt.message}; {failures} infrastructure failures"
                return _finish(record, Phase.FAILED, Reason.INFRASTRUCTURE_FAILURES, message, ctx)
            delay = spec.backoff.delay(failures)
            return _wait(
                record, Reason.BACKOFF, plus_seconds(finished_at, delay), attempt.message, ctx
            )
        case AttemptOutcome.UNPLACEABLE:
            since = record.pending_since or attempt.intent_at
            give_up_at = plus_seconds(since, spec.capacity.max_pending_seconds)
            if ctx.now >= give_up_at:
                message = f"no capacity for {spec.capacity.max_pending_seconds}s: {attempt.message}"
                return _finish(record, Phase.FAILED, Reason.UNSCHEDULABLE, message, ctx)
            tries = _trailing_unplaceable(record)
            retry_at = min(plus_seconds(finished_at, spec.backoff.delay(tries)), give_up_at)
            waiting = _wait(record, Reason.UNSCHEDULABLE, retry_at, attempt.message, ctx)
            return replace(waiting, pending_since=since)
    return record


def _trailing_unplaceable(record: RunRecord) -> int:
    count = 0
    for attempt in reversed(record.attempts):
        if attempt.outcome is not AttemptOutcome.UNPLACEABLE:
            break
        count += 1
    return count


#: Task states that mean "placed, but still waiting for capacity to exist".
PROVISIONING_STATES = frozenset({"PROVISIONING"})


def _provisioning_too_long(attempt: AttemptRecord, spec: JobSpec, now: datetime) -> bool:
    """True when every task of a live attempt is still PROVISIONING past maxPendingSeconds."""
    if attempt.finished or not attempt.submitted or not attempt.tasks:
        return False
    if not all(t.last_status in PROVISIONING_STATES for t in attempt.tasks):
        return False
    return (now - attempt.intent_at).total_seconds() >= spec.capacity.max_pending_seconds


def _running(record: RunRecord, attempt: AttemptRecord, ctx: RunContext) -> RunRecord:
    if not attempt.submitted:
        return _with_status(record, Phase.PENDING, Reason.STARTING, "RunTask in flight", ctx)
    statuses = sorted({t.last_status for t in attempt.tasks})
    message = f"attempt {attempt.number}: " + ", ".join(
        f"{_short(t.arn)} {t.last_status}" for t in attempt.tasks[:3]
    )
    if statuses and all(s in ("PROVISIONING", "PENDING", "ACTIVATING") for s in statuses):
        return replace(
            _with_status(record, Phase.PENDING, Reason.STARTING, message, ctx), pending_since=None
        )
    return replace(
        _with_status(record, Phase.RUNNING, Reason.RUNNING, message, ctx), pending_since=None
    )


def _with_status(
    record: RunRecord, phase: Phase, reason: Reason, message: str, ctx: RunContext
) -> RunRecord:
    del ctx
    return replace(record, phase=phase, reason=reason, message=message or record.message)


def _wait(
    record: RunRecord, reason: Reason, not_before: datetime, message: str, ctx: RunContext
) -> RunRecord:
    waiting = _with_status(record, Phase.PENDING, reason, message, ctx)
    return replace(waiting, not_before=not_before)


def _finish(
    record: RunRecord, phase: Phase, reason: Reason, message: str, ctx: RunContext
) -> RunRecord:
    return replace(
        record,
        phase=phase,
        reason=reason,
        message=message,
        finished_at=ctx.now,
        not_before=None,
    )


def _changed(before: RunRecord, after: RunRecord) -> bool:
    return replace(before, updated_at=after.updated_at) != after


DRIFT_NOTE = "spec changed after the run started; change spec.runId to run again"


def _with_drift(desired: DesiredRun | None, record: RunRecord) -> RunRecord:
    """The record whose message says so when the manifest changed after the run started."""
    drifted = desired is not None and record.started and desired.digest != record.spec_digest
    if not drifted or DRIFT_NOTE in record.message:
        return record
    return replace(record, message=f"{record.message} ({DRIFT_NOTE})")


def _drift_note(desired: DesiredRun | None, record: RunRecord, ctx: RunContext) -> list[Action]:
    """A finished run whose manifest changed: say how to run it again, once."""
    updated = _with_drift(desired, record)
    if updated is record:
        return []
    return [RecordRun(record.key, replace(updated, updated_at=ctx.now), DRIFT_NOTE)]


# -- starting attempts -------------------------------------------------------


def _maybe_start(
    desired: DesiredRun, record: RunRecord, spec: JobSpec, ctx: RunContext
) -> StartAttempt | RunRecord:
    """A StartAttempt when the run may start now, else the record as it waits."""
    if desired.suspend and not record.started:
        return _with_status(record, Phase.PENDING, Reason.SUSPENDED, "spec.suspend is true", ctx)
    if desired.suspend:
        return _with_status(
            record, Phase.PENDING, Reason.SUSPENDED, "suspended between attempts", ctx
        )
    if record.not_before is not None and ctx.now < record.not_before:
        return record
    if record.started:
        arn = record.task_definition_arn
        if arn is None:
            return _finish(
                record, Phase.FAILED, Reason.TASK_DEFINITION_ERROR, "no revision pinned", ctx
            )
        return _start(record, spec, arn, None, record.frozen_spec or {}, desired.kind, ctx)
    # First attempt: pick up the current spec (a Pending run takes edits).
    record = replace(record, spec_digest=desired.digest)
    if spec.task_definition_ref is not None:
        resolved = ctx.observed.refs.get(spec.task_definition_ref)
        if resolved is None:
            return _with_status(
                record, Phase.PENDING, Reason.WAITING, "resolving taskDefinitionRef", ctx
            )
        if resolved.arn is None:
            message = resolved.error or f"cannot resolve {spec.task_definition_ref}"
            return _finish(record, Phase.FAILED, Reason.TASK_DEFINITION_ERROR, message, ctx)
        frozen = {**spec.raw, ESSENTIAL_KEY: list(_ref_essentials(resolved))}
        return _start(record, spec, resolved.arn, None, frozen, desired.kind, ctx)
    spec_hash = ctx.spec_hashes.get(desired.key)
    choice = ctx.choices.get(spec_hash) if spec_hash is not None else None
    if choice is None:
        return _with_status(
            record, Phase.PENDING, Reason.WAITING, "task definition not resolved", ctx
        )
    pending = choice.spec_hash if choice.arn is None else None
    return _start(record, spec, choice.arn or "", pending, dict(spec.raw), desired.kind, ctx)


def _ref_essentials(resolved: ResolvedRef) -> tuple[str, ...]:
    return resolved.essential_containers


def _start(
    record: RunRecord,
    spec: JobSpec,
    arn: str,
    pending_hash: str | None,
    frozen: Mapping[str, Any],
    kind: Kind,
    ctx: RunContext,
) -> StartAttempt:
    number = len(record.attempts) + 1
    request = run_task_request(spec, arn, ctx.owner, record.key, kind, number)
    attempt = AttemptRecord(
        number=number,
        client_token=client_token(ctx.owner, record.key, number),
        task_definition_arn=arn,
        request=request,
        intent_at=ctx.now,
    )
    reason = "first attempt" if number == 1 else f"retry after {record.reason}"
    started = replace(
        record,
        phase=Phase.PENDING,
        reason=Reason.STARTING,
        message=f"starting attempt {number}",
        attempts=(*record.attempts, attempt),
        frozen_spec=record.frozen_spec if record.frozen_spec is not None else dict(frozen),
        task_definition_arn=arn or None,
        not_before=None,
        updated_at=ctx.now,
    )
    return StartAttempt(
        run=record.key,
        record=started,
        attempt=number,
        pending_spec_hash=pending_hash,
        reason=reason,
    )


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
