"""The run lifecycle as a pure function of (desired, observed, ledger, now) (DESIGN.md §4).

For each run `plan_run` answers: what happened since the last pass (tasks
placed, stopped, vanished; intents left by a crash), what phase the run is
in now, and what to do next (start an attempt, repeat a RunTask with the same
token, stop tasks past the deadline, or just record the new state).

Attempts: every RunTask is one attempt with its own client token. Outcomes
are budgeted separately: application failures against `backoffLimit`,
infrastructure failures against a fixed budget of 3, capacity shortfalls
against `capacity.maxPendingSeconds`. A failed attempt that a
`retryPolicy` rule matches (`retry_rules`) goes by the rule instead: Retry
counts against `backoffLimit`, Ignore against nothing (activeDeadlineSeconds
bounds it, and `MAX_IGNORED_ATTEMPTS`), FailRun ends the run at once. An
attempt starts only once the one before it has an outcome, and a run past
its deadline never starts another (an attempt whose tasks all succeeded by
the deadline still counts).

This module holds the decisions (start, resume, retry, back off, stop at the
deadline or after maxPendingSeconds, finish); how an attempt's tasks become
its outcome is `outcome`, and the records it builds are `records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.model.durations import plus_seconds
from controller.model.identity import TAG_OWNER, client_token
from controller.model.manifest import JobSpec, Kind, RetryAction
from controller.model.observed import ResolvedRef
from controller.model.run import AttemptOutcome, AttemptRecord, Phase, Reason, RunRecord
from controller.model.taskdef import container_names
from controller.plan.actions import (
    Action,
    RecordRun,
    ResumeAttempt,
    StartAttempt,
    StopTasks,
)
from controller.plan.outcome import advance_attempt, short_arn, success_containers
from controller.plan.records import (
    CONTAINERS_KEY,
    DRIFT_NOTE,
    ESSENTIAL_KEY,
    DesiredRun,
    RunContext,
    changed,
    effective_spec,
    finish,
    new_record,
    wait,
    with_drift,
    with_status,
)
from controller.plan.request import run_task_request
from controller.plan.retry_rules import failure_counts, first_match

#: Infrastructure failures retried on their own budget.
MAX_INFRASTRUCTURE_RETRIES = 3
#: Attempts an `Ignore` retry rule may retry. Ignore is meant to be bounded by
#: activeDeadlineSeconds (as Kubernetes' Ignore is); this hard cap, the
#: schema's maximum backoffLimit, only keeps a run without a deadline whose
#: Ignore rule matches every failure from retrying (and growing its ledger
#: record) for ever.
MAX_IGNORED_ATTEMPTS = 1000


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
        return drift_note(desired, record, ctx)
    before = record
    actions: list[Action] = []
    attempt = record.current_attempt

    # 1. Bring the current attempt up to date with what ECS says.
    if attempt is not None and not attempt.finished:
        updated, resume = advance_attempt(record, attempt, ctx)
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

    if record.cancel is not None and not _succeeded(attempt):
        # `controller stop` asked: stop what runs, then end the run, whatever
        # the manifest or the retry budget would say.
        return [*actions, *_cancel(record, before, attempt, ctx)]

    spec = effective_spec(desired, record)
    if spec is None and record.frozen_spec is None:
        # Never started and no longer asked for: nothing to freeze, nothing to stop.
        record = finish(
            record,
            Phase.FAILED,
            gone_reason or Reason.ORPHANED,
            gone_message or "manifest removed before the run started",
            ctx,
        )
        return [*actions, RecordRun(record.key, record, record.message)]
    if spec is None:
        # A started run whose frozen spec is unreadable cannot continue.
        record = finish(record, Phase.FAILED, Reason.TASK_DEFINITION_ERROR, "frozen spec lost", ctx)
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
        record = finish(record, Phase.FAILED, Reason.DEADLINE_EXCEEDED, message, ctx)
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
            record = finish(
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
            record = with_status(
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

    record = with_drift(desired, record)
    if fresh or changed(before, record):
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
    failed = finish(record.with_attempt(ended), Phase.FAILED, reason, message, ctx)
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
    if record.cancel is not None:
        return record.cancel.message
    if desired is None:
        return "the manifest no longer asks for this run"
    spec = effective_spec(desired, record)
    deadline = _deadline(record, spec) if spec is not None else None
    if deadline is not None and ctx.now >= deadline:
        return "the run is past its activeDeadlineSeconds"
    return None


# -- cancel requests (`controller stop`) --------------------------------------

#: Task states in which a stop is already under way: no second StopTask.
STOPPING_STATES = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING"})


def _succeeded(attempt: AttemptRecord | None) -> bool:
    return attempt is not None and attempt.outcome is AttemptOutcome.SUCCEEDED


def _cancel(
    record: RunRecord, before: RunRecord, attempt: AttemptRecord | None, ctx: RunContext
) -> list[Action]:
    """A run with a cancel request: StopTask its live tasks; once none runs, Failed/Cancelled.

    Two steps, so that `Failed/Cancelled` means nothing of the run runs any
    more: while a task of the current attempt is live, the run stays as it
    is and its tasks are stopped — only those observed this pass with this
    owner's tag (the ownership rule), and not again once ECS is stopping
    them. Once every task stopped (or there was none, or the intent was
    never answered), the run ends Failed/Cancelled with who and why, and no
    retry: an attempt the stop ended counts as stopped by the controller,
    never against backoffLimit. An attempt that had already ended keeps its
    outcome. (An attempt whose tasks all succeeded before the stop took
    effect makes the run Succeeded instead: see `plan_run`.)
    """
    request = record.cancel
    assert request is not None
    message = request.message
    if attempt is not None and not attempt.finished:
        if not attempt.submitted:
            return []  # the intent's cluster is unreadable: nothing is known yet
        live = [t for t in attempt.tasks if not t.stopped]
        cluster = str(attempt.request.get("cluster", ""))
        stoppable = tuple(
            t.arn for t in live if t.last_status not in STOPPING_STATES and _owned_task(t.arn, ctx)
        )
        stopping = _running(record, attempt, ctx)
        stopping = replace(
            stopping, message=f"{message}: stopping {len(live)} task(s)", updated_at=ctx.now
        )
        if stoppable:
            return [
                StopTasks(
                    run=record.key,
                    cluster=cluster,
                    task_arns=stoppable,
                    stop_reason=f"ecs-job-controller: {message}",
                    record=stopping,
                    reason=f"{message}: StopTask",
                )
            ]
        if changed(before, stopping):
            return [RecordRun(record.key, stopping, stopping.message)]
        return []  # being stopped (or not ours to stop): wait for ECS
    ended = record
    previous = before.current_attempt
    if attempt is not None and previous is not None and not previous.finished:
        # The attempt ended by (or while) being stopped for the cancel request.
        ended = record.with_attempt(
            replace(attempt, outcome=AttemptOutcome.STOPPED, message=message)
        )
    cancelled = finish(ended, Phase.FAILED, Reason.CANCELLED, message, ctx)
    cancelled = replace(cancelled, updated_at=ctx.now)
    return [RecordRun(record.key, cancelled, message)]


def _owned_task(arn: str, ctx: RunContext) -> bool:
    """True when this pass observed the task with this owner's tag: only then is it stopped."""
    seen = ctx.observed.tasks.get(arn)
    return seen is not None and seen.tags.get(TAG_OWNER) == ctx.owner


# -- run phases --------------------------------------------------------------


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


def _after_attempt(
    record: RunRecord, spec: JobSpec, ctx: RunContext, *, gone: bool = False
) -> RunRecord:
    attempt = record.current_attempt
    if attempt is None or attempt.outcome is None:
        return record
    finished_at = attempt.finished_at or ctx.now
    match attempt.outcome:
        case AttemptOutcome.SUCCEEDED:
            return finish(record, Phase.SUCCEEDED, Reason.COMPLETED, attempt.message, ctx)
        case AttemptOutcome.REJECTED:
            return finish(record, Phase.FAILED, Reason.RUN_TASK_ERROR, attempt.message, ctx)
        case AttemptOutcome.STOPPED if gone:
            return record  # the run is finished below, with the reason it is gone
        case AttemptOutcome.STOPPED:
            return finish(record, Phase.FAILED, Reason.DEADLINE_EXCEEDED, attempt.message, ctx)
        case AttemptOutcome.APPLICATION_FAILURE | AttemptOutcome.INFRASTRUCTURE_FAILURE:
            return _after_failure(record, attempt, spec, ctx)
        case AttemptOutcome.UNPLACEABLE:
            since = record.pending_since or attempt.intent_at
            give_up_at = plus_seconds(since, spec.capacity.max_pending_seconds)
            if ctx.now >= give_up_at:
                message = f"no capacity for {spec.capacity.max_pending_seconds}s: {attempt.message}"
                return finish(record, Phase.FAILED, Reason.UNSCHEDULABLE, message, ctx)
            tries = _trailing_unplaceable(record)
            retry_at = min(plus_seconds(finished_at, spec.backoff.delay(tries)), give_up_at)
            waiting = wait(record, Reason.UNSCHEDULABLE, retry_at, attempt.message, ctx)
            return replace(waiting, pending_since=since)
    return record


def _after_failure(
    record: RunRecord, attempt: AttemptRecord, spec: JobSpec, ctx: RunContext
) -> RunRecord:
    """A failed attempt: the retry rules, else its budget, decide retry, back off or give up.

    Every decision is recomputed from the record and the frozen spec's rules
    (`retry_rules`), so nothing about a rule match is stored. Each budget's
    backoff delay grows with its own count (an ignored attempt's with the
    ignored ones), as the two budgets' delays did before rules.
    """
    finished_at = attempt.finished_at or ctx.now
    success = success_containers(record)
    match = first_match(spec.retry_rules, attempt, success)
    counts = failure_counts(record.attempts, spec.retry_rules, success)
    ruled = f" ({match.describe()})" if match is not None else ""
    if match is not None and match.action is RetryAction.FAIL_RUN:
        message = f"{match.describe()}: {attempt.message}"
        return finish(record, Phase.FAILED, Reason.FAILED_BY_RETRY_RULE, message, ctx)
    message = f"{attempt.message}{ruled}"

    def within(spent: int, limit: int, reason: Reason, why: str) -> RunRecord:
        # One rule for every budget: back off after the spent-th failure, or
        # give up once more than `limit` failed.
        if spent > limit:
            return finish(record, Phase.FAILED, reason, f"{message}; {why}", ctx)
        delay = spec.backoff.delay(spent)
        return wait(record, Reason.BACKOFF, plus_seconds(finished_at, delay), message, ctx)

    if match is not None and match.action is RetryAction.IGNORE:
        ignored = counts.ignored
        why = f"{ignored} ignored attempts, more than the {MAX_IGNORED_ATTEMPTS} an Ignore rule"
        return within(
            ignored, MAX_IGNORED_ATTEMPTS, Reason.BACKOFF_LIMIT_EXCEEDED, f"{why} may retry"
        )
    if match is not None or attempt.outcome is AttemptOutcome.APPLICATION_FAILURE:
        # A Retry match, or an application failure no rule matched: backoffLimit.
        failures, limit = counts.backoff_limit, spec.backoff_limit
        why = f"{failures} failed attempt(s), backoffLimit {limit}"
        return within(failures, limit, Reason.BACKOFF_LIMIT_EXCEEDED, why)
    failures = counts.infrastructure
    why = f"{failures} infrastructure failures"
    return within(failures, MAX_INFRASTRUCTURE_RETRIES, Reason.INFRASTRUCTURE_FAILURES, why)


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
        return with_status(record, Phase.PENDING, Reason.STARTING, "RunTask in flight", ctx)
    statuses = sorted({t.last_status for t in attempt.tasks})
    message = f"attempt {attempt.number}: " + ", ".join(
        f"{short_arn(t.arn)} {t.last_status}" for t in attempt.tasks[:3]
    )
    if statuses and all(s in ("PROVISIONING", "PENDING", "ACTIVATING") for s in statuses):
        return replace(
            with_status(record, Phase.PENDING, Reason.STARTING, message, ctx), pending_since=None
        )
    return replace(
        with_status(record, Phase.RUNNING, Reason.RUNNING, message, ctx), pending_since=None
    )


def drift_note(desired: DesiredRun | None, record: RunRecord, ctx: RunContext) -> list[Action]:
    """A finished run whose manifest changed: say how to run it again, once."""
    updated = with_drift(desired, record)
    if updated is record:
        return []
    return [RecordRun(record.key, replace(updated, updated_at=ctx.now), DRIFT_NOTE)]


# -- starting attempts -------------------------------------------------------


def _maybe_start(
    desired: DesiredRun, record: RunRecord, spec: JobSpec, ctx: RunContext
) -> StartAttempt | RunRecord:
    """A StartAttempt when the run may start now, else the record as it waits."""
    if desired.suspend and not record.started:
        return with_status(record, Phase.PENDING, Reason.SUSPENDED, "spec.suspend is true", ctx)
    if desired.suspend:
        return with_status(
            record, Phase.PENDING, Reason.SUSPENDED, "suspended between attempts", ctx
        )
    waiting = record.not_before is not None and ctx.now < record.not_before
    if waiting and record.key not in ctx.room:
        return record  # still in its backoff, and no new room says otherwise
    if desired.hold is not None:
        return with_status(record, Phase.PENDING, Reason.WAITING, desired.hold, ctx)
    if record.started:
        arn = record.task_definition_arn
        if arn is None:
            return finish(
                record, Phase.FAILED, Reason.TASK_DEFINITION_ERROR, "no revision pinned", ctx
            )
        return _start(record, spec, arn, None, record.frozen_spec or {}, desired.kind, ctx)
    # First attempt: pick up the current spec (a Pending run takes edits).
    record = replace(record, spec_digest=desired.digest)
    if spec.task_definition_ref is not None:
        resolved = ctx.observed.refs.get(spec.task_definition_ref)
        if resolved is None:
            return with_status(
                record, Phase.PENDING, Reason.WAITING, "resolving taskDefinitionRef", ctx
            )
        if resolved.arn is None:
            message = resolved.error or f"cannot resolve {spec.task_definition_ref}"
            return finish(record, Phase.FAILED, Reason.TASK_DEFINITION_ERROR, message, ctx)
        frozen = {**spec.raw, ESSENTIAL_KEY: list(_ref_essentials(resolved))}
        if spec.indexed:
            frozen[CONTAINERS_KEY] = list(resolved.containers)
        return _start(record, spec, resolved.arn, None, frozen, desired.kind, ctx)
    # An index of an indexed run shares the hash (and revision) of its run.
    spec_hash = ctx.spec_hashes.get(desired.key.run)
    choice = ctx.choices.get(spec_hash) if spec_hash is not None else None
    if choice is None:
        return with_status(
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
    containers = (
        container_names(spec.task_definition)
        if spec.task_definition is not None
        else tuple(str(c) for c in (record.frozen_spec or frozen).get(CONTAINERS_KEY) or ())
    )
    request = run_task_request(spec, arn, ctx.owner, record.key, kind, number, containers)
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
