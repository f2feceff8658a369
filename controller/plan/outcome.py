"""What ECS says about an attempt's tasks, turned into the attempt's outcome (DESIGN.md §4).

Every pass brings a run's current attempt up to date with what was observed
(`advance_attempt`): an unanswered intent's tasks found by their tags (after
a crash), or given up once its client token expired; task states refreshed;
tasks that vanished marked missing. Once every task stopped,
`attempt_outcome` classifies the attempt from stop codes, stop reasons and
exit codes: an infrastructure failure (the platform's stopCode, a vanished
task, fewer tasks than `count`), an application failure (a success
container's non-zero or absent exit code, a task someone else stopped), or
success. What the outcome means for the run (retry, back off, give up) is
`lifecycle`'s to decide.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from controller.model.run import AttemptOutcome, AttemptRecord, RunRecord, TaskRecord
from controller.model.taskdef import essential_containers
from controller.plan.records import ESSENTIAL_KEY, RunContext

#: stopCodes that mean the platform, not the job, failed (DESIGN.md §4).
INFRASTRUCTURE_STOP_CODES = frozenset(
    {"TaskFailedToStart", "SpotInterruption", "TerminationNotice"}
)
#: ECS remembers a clientToken for 24 hours per cluster.
CLIENT_TOKEN_LIFETIME = timedelta(hours=24)


def advance_attempt(
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
        outcome, message = attempt_outcome(tasks, success_containers(record), expected)
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
            return AttemptOutcome.INFRASTRUCTURE_FAILURE, f"task {short_arn(task.arn)} vanished"
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


def short_arn(arn: str) -> str:
    """The last part of an ARN: a task's id."""
    return arn.rsplit("/", 1)[-1]


def success_containers(record: RunRecord) -> tuple[str, ...]:
    """The containers whose exit codes decide the run (empty: every container reported)."""
    frozen = record.frozen_spec or {}
    explicit = frozen.get("successContainers")
    if explicit:
        return tuple(explicit)
    if frozen.get("taskDefinition") is not None:
        return essential_containers(frozen["taskDefinition"])
    return tuple(frozen.get(ESSENTIAL_KEY) or ())
