"""What the controller remembers about runs: phases, attempts, tasks (DESIGN.md §4, §9).

These records are the ledger's vocabulary and the planner's input. They are
pure values; `controller.state` persists them and `controller.plan` computes
the next ones. ECS forgets a stopped task after about an hour; these records
are why `status` can still tell what happened last night.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from controller.model.capacity import IdleInstance
from controller.model.manifest import Kind, RunKey


class Phase(StrEnum):
    """A run's phase; Succeeded and Failed are terminal."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        """True for Succeeded and Failed."""
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class Reason(StrEnum):
    """Why a run is in its phase (shown by `status`)."""

    WAITING = "Waiting"
    SUSPENDED = "Suspended"
    STARTING = "Starting"
    RUNNING = "Running"
    BACKOFF = "Backoff"
    UNSCHEDULABLE = "Unschedulable"
    SCALING_OUT = "ScalingOut"
    COMPLETED = "Completed"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    INFRASTRUCTURE_FAILURES = "InfrastructureFailures"
    #: a `retryPolicy` rule with action FailRun matched a failed attempt
    FAILED_BY_RETRY_RULE = "FailedByRetryRule"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    TASK_DEFINITION_ERROR = "TaskDefinitionError"
    RUN_TASK_ERROR = "RunTaskError"
    ORPHANED = "Orphaned"
    MISSED = "Missed"
    CANCELLED = "Cancelled"
    #: an indexed run with more failed indexes than maxFailedIndexes (or,
    #: once every index ended, any failed index)
    FAILED_INDEXES = "FailedIndexes"
    #: recorded as done by --adopt-history, never started by this ledger
    ADOPTED = "Adopted"


class RunOrigin(StrEnum):
    """What made the run exist (shown by `status -o json` as "origin").

    The full pass treats a run by where it came from: a `manifest` or
    `schedule` run is the source's, and ends Orphaned or Cancelled when the
    source stops asking for it; a `manual` run (`controller trigger`) is an
    occurrence of its CronJob, followed like any unfinished one; a `oneshot`
    run (`controller oneshot`) belongs to no manifest, so the pass never
    orphans or supersedes it and carries it on under its frozen spec.
    """

    MANIFEST = "manifest"
    SCHEDULE = "schedule"
    MANUAL = "manual"
    ONESHOT = "oneshot"


@dataclass(frozen=True)
class CancelRequest:
    """Who asked `controller stop` (or oneshot's --timeout / SIGINT) to cancel a run, and why."""

    by: str
    reason: str
    at: datetime

    @property
    def message(self) -> str:
        """The run's final message: `cancelled by WHO: WHY`."""
        return (
            f"cancelled by {self.by}: {self.reason}" if self.reason else f"cancelled by {self.by}"
        )


class AttemptOutcome(StrEnum):
    """How one attempt ended; None on the record while it is in flight."""

    SUCCEEDED = "Succeeded"
    #: a success container exited non-zero: counts against backoffLimit
    APPLICATION_FAILURE = "ApplicationFailure"
    #: the platform failed the task (TaskFailedToStart, Spot, vanished):
    #: retried on its own budget
    INFRASTRUCTURE_FAILURE = "InfrastructureFailure"
    #: stopped by the controller (deadline, orphan, replace, cancel)
    STOPPED = "Stopped"
    #: RunTask was refused for good (bad task definition, missing cluster)
    REJECTED = "Rejected"
    #: RunTask placed nothing for lack of capacity: retried until
    #: capacity.maxPendingSeconds, on no other budget
    UNPLACEABLE = "Unplaceable"


@dataclass(frozen=True)
class TaskRecord:
    """One ECS task of an attempt, as last observed."""

    arn: str
    last_status: str = "PROVISIONING"
    exit_codes: Mapping[str, int | None] = field(default_factory=dict)
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    #: True once ECS no longer knows the task (aged out or never existed)
    missing: bool = False

    @property
    def stopped(self) -> bool:
        """True when ECS reports the task STOPPED (or it vanished)."""
        return self.last_status == "STOPPED" or self.missing


@dataclass(frozen=True)
class AttemptRecord:
    """One RunTask for a run: the intent first, then what ECS did with it."""

    number: int
    client_token: str
    task_definition_arn: str
    #: the exact RunTask parameters, frozen with the intent so a repeat is
    #: byte-for-byte the same request (ECS rejects a reused token otherwise)
    request: Mapping[str, Any]
    intent_at: datetime
    tasks: tuple[TaskRecord, ...] = ()
    #: RunTask answered; False means a crash may have cut the call short
    submitted: bool = False
    placement_failures: tuple[str, ...] = ()
    outcome: AttemptOutcome | None = None
    message: str = ""
    finished_at: datetime | None = None

    @property
    def task_arns(self) -> tuple[str, ...]:
        """The ARNs of the attempt's tasks."""
        return tuple(t.arn for t in self.tasks)

    @property
    def finished(self) -> bool:
        """True once the attempt has an outcome."""
        return self.outcome is not None

    @property
    def started_at(self) -> datetime | None:
        """When the first task started, else when the intent was recorded."""
        starts = [t.started_at for t in self.tasks if t.started_at is not None]
        return min(starts) if starts else None

    @property
    def stopped_at(self) -> datetime | None:
        """When the last task stopped, once all have."""
        if not self.tasks or not all(t.stopped for t in self.tasks):
            return None
        stops = [t.stopped_at for t in self.tasks if t.stopped_at is not None]
        return max(stops) if stops else self.finished_at

    @property
    def exit_codes(self) -> dict[str, int | None]:
        """Per container, the exit code; with several tasks the first non-zero wins."""
        merged: dict[str, int | None] = {}
        for task in self.tasks:
            for name, code in task.exit_codes.items():
                if name not in merged or (code not in (0, None) and merged[name] in (0, None)):
                    merged[name] = code
        return merged

    @property
    def stop_code(self) -> str | None:
        """The stop code of the first task that has one."""
        return next((t.stop_code for t in self.tasks if t.stop_code), None)


@dataclass(frozen=True)
class RunRecord:
    """The ledger's memory of one run."""

    key: RunKey
    kind: Kind
    phase: Phase
    reason: Reason
    message: str
    created_at: datetime
    updated_at: datetime
    #: digest of the spec as written when last seen (drift detection)
    spec_digest: str
    #: the spec frozen when the first attempt started; None before that
    frozen_spec: Mapping[str, Any] | None = None
    task_definition_arn: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    #: earliest time the next attempt may start (backoff, capacity retry)
    not_before: datetime | None = None
    #: when the run first waited for capacity (maxPendingSeconds)
    pending_since: datetime | None = None
    finished_at: datetime | None = None
    #: optimistic-concurrency version; the ledger bumps it on every save
    version: int = 0
    #: what made the run exist (old records without one are manifest runs)
    origin: RunOrigin = RunOrigin.MANIFEST
    #: set by `controller stop`: the run's tasks are stopped and it ends
    #: Failed/Cancelled, never retried
    cancel: CancelRequest | None = None

    @property
    def started(self) -> bool:
        """True once the spec is frozen (an attempt intent was recorded, or the run is under way).

        A new index of an indexed run already under way is created frozen
        (its run's spec and revision) before its first attempt.
        """
        return bool(self.attempts) or self.frozen_spec is not None

    @property
    def current_attempt(self) -> AttemptRecord | None:
        """The newest attempt, if any."""
        return self.attempts[-1] if self.attempts else None

    @property
    def first_started_at(self) -> datetime | None:
        """When the first attempt's intent was recorded."""
        return self.attempts[0].intent_at if self.attempts else None

    def with_attempt(self, attempt: AttemptRecord) -> RunRecord:
        """A copy with `attempt` replacing the one of the same number (or appended)."""
        others = [a for a in self.attempts if a.number != attempt.number]
        attempts = tuple(sorted([*others, attempt], key=lambda a: a.number))
        return replace(self, attempts=attempts)


@dataclass(frozen=True)
class LedgerView:
    """A consistent read of the ledger for one pass (the planner's input)."""

    runs: Mapping[RunKey, RunRecord] = field(default_factory=dict)
    #: CronJob name -> last scheduled occurrence already turned into a run
    cron_last_scheduled: Mapping[str, datetime] = field(default_factory=dict)
    revisions: Mapping[str, RevisionRecord] = field(default_factory=dict)
    #: EC2 instance id -> the idle clock (and drain decision) scale-in keeps
    idle_instances: Mapping[str, IdleInstance] = field(default_factory=dict)
    #: Auto Scaling group -> when this controller last scaled it out (the
    #: scale-in cooldown starts there)
    scale_outs: Mapping[str, datetime] = field(default_factory=dict)

    def restricted_to(self, keys: frozenset[RunKey]) -> LedgerView:
        """The view with only the runs of `keys` and their indexes (a scoped pass plans those)."""
        runs = {key: self.runs[key] for key in sorted(keys) if key in self.runs}
        for key in sorted(keys):
            runs.update((r.key, r) for r in self._indexes.get(key, {}).values())
        return replace(self, runs=runs)

    def runs_of(self, name: str) -> list[RunRecord]:
        """Every run of one manifest name, oldest first (runs as a whole: no index records)."""
        return list(self._by_name.get(name, ()))

    def indexes_of(self, key: RunKey) -> Mapping[int, RunRecord]:
        """The index records of an indexed run, by index (empty for any other run)."""
        return self._indexes.get(key, {})

    @cached_property
    def _by_name(self) -> dict[str, list[RunRecord]]:
        """The runs grouped by name, oldest first: built once per view.

        A pass asks for the runs of every CronJob; scanning every run for
        each made a pass quadratic (10,000 CronJobs x their history).
        """
        grouped: dict[str, list[RunRecord]] = {}
        for record in self.runs.values():
            if record.key.index is None:
                grouped.setdefault(record.key.name, []).append(record)
        for records in grouped.values():
            records.sort(key=lambda r: r.created_at)
        return grouped

    @cached_property
    def _indexes(self) -> dict[RunKey, dict[int, RunRecord]]:
        """Index records grouped by their run's key, by index: built once per view."""
        grouped: dict[RunKey, dict[int, RunRecord]] = {}
        for key, record in self.runs.items():
            if key.index is not None:
                grouped.setdefault(key.run, {})[key.index] = record
        return grouped


class EventKind(StrEnum):
    """What a controller-wide event (one about no single run) records."""

    #: a guard held something back (an empty source, too many orphans, ...)
    GUARD = "Guard"
    REGISTERED = "Registered"
    DEREGISTERED = "Deregistered"
    DELETED = "Deleted"
    SCALE_OUT = "ScaleOut"
    #: an idle instance set DRAINING (the first half of a release)
    DRAINING = "Draining"
    #: an idle, drained instance terminated with a decrement (a release)
    SCALE_IN = "ScaleIn"
    #: a draining instance set ACTIVE again, and why
    REACTIVATED = "Reactivated"
    CAPACITY_CAPPED = "CapacityCapped"
    MISSED_SCHEDULES = "MissedSchedules"
    #: a run's notification was published to an SNS topic (logged on the run)
    NOTIFIED = "Notified"


@dataclass(frozen=True)
class Event:
    """One line of the append-only event log.

    `reason` is a run's `Reason` for events about a run, else an `EventKind`
    (both are strings, so the log stores and reads them alike).
    """

    at: datetime
    run: RunKey | None
    reason: str
    message: str


@dataclass(frozen=True)
class RevisionRecord:
    """What the controller learnt about one task-definition revision (immutable in ECS)."""

    arn: str
    family: str
    revision: int
    #: hash of the canonical form of the described revision
    spec_hash: str
    #: the `ecs-job-controller/owner` tag, if any
    owner: str | None
    status: str = "ACTIVE"
    #: the `ecs-job-controller/spec-hash` tag, if any: matched as well as
    #: `spec_hash` (computed from the described form), so a revision we
    #: registered is reused even where an emulator describes it imperfectly
    tagged_hash: str | None = None
