"""Executes a Plan: the only place a pass writes to AWS (DESIGN.md §7 "apply").

Each action is applied on its own; one failure is reported and the rest go
on. An action whose write was done but whose outcome is a refusal counts as
failed too (and terminal: asking again cannot help): a RunTask that ECS
rejected (a bad subnet, parameters the API refuses) and a run recorded as
Failed/TaskDefinitionError because AWS refused its task definition (a
`taskDefinitionRef` that does not exist). The ledger still records the run
as Failed; the pass exits 1 and lists the action as failed.

Concurrency (`--max-concurrency`, `controller.workers`): the plan is applied
in five phases, one after the other — registrations, scale-outs, the runs'
actions, scale-in, pruning — and within a phase independent work runs
concurrently: each registration, each scale-out, each deletion on its own,
each Auto Scaling group's scale-in actions as one group, and each
manifest's actions (a run's RecordRun/StartAttempt/StopTasks, a CronJob's
schedule watermark and its occurrences) as one group, in plan order, on one
worker. So a start still follows the registration whose ARN it needs, and
per run the start protocol's steps stay in order. Ledger writes from several
workers are serialised by the ledger itself (SQLite: one connection behind a
lock, BEGIN IMMEDIATE; DynamoDB: conditional writes). Outcomes are merged in
plan order, so reports and logs read the same whatever finished first.

The pass budget (`--pass-budget-seconds`): once it is spent, no new group
starts; the groups not started are `DEFERRED` (nothing of theirs was done)
and the loop runs the next pass at once. A group already started finishes.
Under heavy throttling a pass thus degrades into several short passes,
never into one that blocks the loop for minutes.

Scale-in follows the runs so that a drain never delays a start, and its
own order mirrors the start protocol's: a drain's decision is recorded in
the ledger before UpdateContainerInstancesState, so a crash in between is
finished by the next pass instead of leaving a draining instance nobody
remembers; a termination's idle record is forgotten only after AWS accepted
it.

The start protocol's order is enforced here: the intent is committed to
the ledger before RunTask, and RunTask's answer is committed right after. A
crash between any two steps leaves a state the next pass repairs without a
second task (see `controller.plan.lifecycle`).

`checkpoint` is a test hook: end-to-end tests kill the process at each step
boundary through it (CONTROLLER_TEST_CRASH_AT) to prove the protocol.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import assert_never

from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway, RunTaskOutcome, RunTaskResult, revision_record
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.errors import AwsTransientError
from controller.clock import Clock, SystemClock, Timer
from controller.errors import ControllerError, TerminalError
from controller.model.identity import TAG_OWNER, TAG_SPEC_HASH
from controller.model.manifest import RunKey
from controller.model.run import (
    Event,
    EventKind,
    Phase,
    Reason,
    RevisionRecord,
    RunRecord,
    TaskRecord,
)
from controller.plan.actions import (
    Action,
    DeleteTaskDefinitions,
    DeregisterTaskDefinition,
    DrainInstance,
    ForgetIdle,
    MarkIdle,
    Plan,
    ReactivateInstance,
    RecordRun,
    RecordSchedule,
    RegisterTaskDefinition,
    ResumeAttempt,
    SetDesiredCapacity,
    StartAttempt,
    StopTasks,
    TerminateInstance,
    describe,
)
from controller.plan.records import with_run_task_result, with_stopped_tasks
from controller.state.ledger import Ledger, LedgerConflict, PassSummary
from controller.workers import Workers

Checkpoint = Callable[[str], None]

#: RegisterTaskDefinition calls per registration (botocore retries none of them).
REGISTER_TRIES = 5


def no_checkpoint(_: str) -> None:
    """The production checkpoint: does nothing."""


class Outcome(StrEnum):
    """How one action ended."""

    APPLIED = "applied"
    #: failed, worth another try (throttling, a 5xx, a timeout)
    FAILED = "failed"
    #: failed, and retrying cannot help (bad parameters, access denied, ECS refused)
    TERMINAL = "terminal"
    #: someone else saved the run since we read it: re-read and re-plan
    CONFLICT = "conflict"
    #: not started: the pass budget was spent (the next pass plans it again)
    DEFERRED = "deferred"


@dataclass(frozen=True)
class ActionOutcome:
    """The result of one action (or of recording the pass summary, `action` None)."""

    subject: str
    outcome: Outcome
    message: str = ""
    action: Action | None = None

    @property
    def line(self) -> str:
        """`SUBJECT: MESSAGE`, as reports and logs print it."""
        return f"{self.subject}: {self.message}" if self.message else self.subject


@dataclass
class ApplyResult:
    """What a pass did, for exit codes, output and metrics: one outcome per action."""

    outcomes: list[ActionOutcome] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    #: runs whose RunTask ECS could not place this pass (the loop plans their room at once)
    unplaced: list[RunKey] = field(default_factory=list)
    #: instances released (terminated) this pass, by Auto Scaling group
    scale_ins: Counter[str] = field(default_factory=Counter)

    def add(
        self, action: Action | None, outcome: Outcome, message: str = "", subject: str = ""
    ) -> None:
        """Record how `action` ended."""
        name = subject or (describe(action) if action is not None else "")
        self.outcomes.append(ActionOutcome(name, outcome, message, action))

    def outcome_of(self, action: Action) -> ActionOutcome | None:
        """The outcome of this very action (matched by identity, never by text)."""
        return next((o for o in self.outcomes if o.action is action), None)

    def _lines(self, *kinds: Outcome) -> list[str]:
        return [o.line for o in self.outcomes if o.outcome in kinds]

    @property
    def applied(self) -> list[str]:
        """What was done, one line per action."""
        return self._lines(Outcome.APPLIED)

    @property
    def failed(self) -> list[str]:
        """`ACTION: why` of every failed action, terminal ones included."""
        return self._lines(Outcome.FAILED, Outcome.TERMINAL)

    @property
    def terminal(self) -> list[str]:
        """The failures retrying cannot help: a subset of `failed` the loop does not retry."""
        return self._lines(Outcome.TERMINAL)

    @property
    def deferred(self) -> list[str]:
        """Actions the pass budget left for the next pass."""
        return self._lines(Outcome.DEFERRED)

    def merge(self, other: ApplyResult) -> None:
        """Append another result's outcomes, counts and unplaced runs (a phase's group)."""
        self.outcomes.extend(other.outcomes)
        self.counts.update(other.counts)
        self.unplaced.extend(other.unplaced)
        self.scale_ins.update(other.scale_ins)

    @property
    def conflicts(self) -> list[str]:
        """Actions refused by a ledger conflict; one left after the pass is a failure."""
        return self._lines(Outcome.CONFLICT)

    @property
    def ok(self) -> bool:
        """True when no action failed, ledger conflicts included."""
        return all(o.outcome is Outcome.APPLIED for o in self.outcomes)


class Executor:
    """Applies plans through the ECS gateway and the ledger."""

    def __init__(
        self,
        ecs: EcsGateway,
        ledger: Ledger,
        owner: str,
        clock: Clock,
        checkpoint: Checkpoint = no_checkpoint,
        autoscaling: AutoScalingGateway | None = None,
        *,
        ecs_instances: EcsInstanceGateway | None = None,
        workers: Workers | None = None,
        budget_seconds: float | None = None,
        timer: Timer | None = None,
    ) -> None:
        self._workers = workers or Workers(1)
        self._budget_seconds = budget_seconds
        self._timer: Timer = timer or SystemClock()
        self._ecs = ecs
        self._ledger = ledger
        self._owner = owner
        self._clock = clock
        self._checkpoint = checkpoint
        self._autoscaling = autoscaling
        self._ecs_instances = ecs_instances
        # Jitter only spreads retries apart; it needs no cryptographic quality.
        self._jitter = random.Random()  # noqa: S311

    def apply(self, plan: Plan, summary: PassSummary | None = None) -> ApplyResult:
        """Apply every action, then record the pass's `summary`; failures are collected."""
        result = ApplyResult()
        for warning in plan.warnings:
            # Guards that held something back are part of the run history.
            self._ledger.append_event(Event(self._clock.now(), None, EventKind.GUARD, warning))
        registrations = _Registrations()
        deadline = (
            None if self._budget_seconds is None else self._timer.monotonic() + self._budget_seconds
        )

        def run_group(group: list[Action]) -> ApplyResult:
            part = ApplyResult()
            if deadline is not None and self._timer.monotonic() >= deadline:
                for action in group:
                    if isinstance(action, RegisterTaskDefinition):
                        registrations.deferred.add(action.spec_hash)
                    part.add(action, Outcome.DEFERRED, "the pass budget was spent")
                return part
            for action in group:
                self._apply_guarded(action, registrations, part)
            return part

        for groups in _phases(plan.actions):
            for part in self._workers.map(run_group, groups):
                result.merge(part)
        if summary is not None:
            self._record_summary(summary, result)
        return result

    def _apply_guarded(
        self,
        action: Action,
        registrations: _Registrations,
        result: ApplyResult,
    ) -> None:
        """Apply one action; however it fails, the failure is its outcome, never an exception."""
        try:
            self._apply_one(action, registrations, result)
        except LedgerConflict as exc:
            result.add(action, Outcome.CONFLICT, str(exc))
        except _Deferred as exc:
            result.add(action, Outcome.DEFERRED, str(exc))
        except TerminalError as exc:
            result.add(action, Outcome.TERMINAL, str(exc))
        except ControllerError as exc:
            result.add(action, Outcome.FAILED, str(exc))
        except Exception as exc:
            result.add(action, Outcome.FAILED, f"unexpected {type(exc).__name__}: {exc}")

    def _record_summary(self, summary: PassSummary, result: ApplyResult) -> None:
        """Replace the ledger's pass summary, keeping guards raised since the last healthy pass."""
        try:
            previous = self._ledger.pass_summary()
            self._ledger.record_pass_summary(summary.carrying_over(previous))
        except ControllerError as exc:
            result.add(None, Outcome.FAILED, str(exc), subject="record the pass summary")

    def _apply_one(
        self,
        action: Action,
        registrations: _Registrations,
        result: ApplyResult,
    ) -> None:
        match action:
            case RegisterTaskDefinition():
                try:
                    arn = self._register(action)
                except ControllerError as exc:
                    registrations.failed[action.spec_hash] = str(exc)
                    raise
                registrations.arns[action.spec_hash] = arn
            case StartAttempt():
                if self._start(action, registrations) is RunTaskResult.UNPLACEABLE:
                    result.unplaced.append(action.run)
            case ResumeAttempt():
                attempt = next(a for a in action.record.attempts if a.number == action.attempt)
                outcome = self._ecs.run_task(attempt.request)
                self._checkpoint("after-run-task")
                if (
                    self._save_outcome(action.record, action.attempt, outcome)
                    is RunTaskResult.UNPLACEABLE
                ):
                    result.unplaced.append(action.run)
            case StopTasks():
                stopped: dict[str, TaskRecord] = {}
                for arn in action.task_arns:
                    task = self._ecs.stop_task(action.cluster, arn, action.stop_reason)
                    if task is not None:
                        stopped[arn] = task.record
                self._save(with_stopped_tasks(action.record, stopped), action.reason)
            case RecordRun():
                self._save(action.record, action.reason)
                if _start_refused(action.record):
                    raise TerminalError("the run failed before it started")
            case SetDesiredCapacity():
                self._scale_out(action)
            case RecordSchedule():
                self._ledger.set_cron_last_scheduled(action.cron_job, action.last_scheduled)
                if action.summary:
                    self._ledger.append_event(
                        Event(self._clock.now(), None, EventKind.MISSED_SCHEDULES, action.summary)
                    )
                result.counts["MissedSchedules"] += action.missed
            case DeregisterTaskDefinition():
                self._deregister(action)
            case DeleteTaskDefinitions():
                self._delete(action)
            case MarkIdle():
                self._ledger.put_idle_instance(action.instance)
            case ForgetIdle():
                self._ledger.forget_idle_instance(action.instance_id)
            case DrainInstance():
                self._drain(action)
            case ReactivateInstance():
                self._reactivate(action)
            case TerminateInstance():
                self._terminate(action)
                result.scale_ins[action.group] += 1
            case _:
                # A new action type must be applied here, not fall through as "done".
                assert_never(action)
        result.add(action, Outcome.APPLIED)
        result.counts[type(action).__name__] += 1

    def _register(self, action: RegisterTaskDefinition) -> str:
        """Register once, whatever answers get lost: re-read the family before every retry.

        The gateway makes one attempt per call (botocore does not retry it).
        A transient failure is either a refusal (throttling, "Too many
        concurrent attempts": someone registers into the family right now,
        maybe the very revision we want) or an unanswered call (a 5xx, a
        timeout) that ECS may have carried out. Either way: wait a jittered
        while, look for an ACTIVE revision with this spec hash, and only
        register again when there is none. After a registration, the family
        is read once more (`_oldest_with_hash`, DESIGN.md §9).
        """
        tags = {TAG_OWNER: self._owner, TAG_SPEC_HASH: action.spec_hash}
        for attempt in range(1, REGISTER_TRIES + 1):
            try:
                described = self._ecs.register(action.task_definition, tags)
                break
            except AwsTransientError:
                if attempt < REGISTER_TRIES:
                    self._clock.sleep(self._jitter.uniform(0.5, 1.5) * attempt)
                existing = self._registered_meanwhile(action)
                if existing is not None:
                    return existing
                if attempt == REGISTER_TRIES:
                    raise
        record = replace(revision_record(described), tagged_hash=action.spec_hash)
        self._ledger.put_revision(record)
        self._ledger.append_event(
            Event(
                self._clock.now(), None, EventKind.REGISTERED, f"{described.arn}: {action.reason}"
            )
        )
        self._checkpoint("after-register")
        return self._oldest_with_hash(action, record)

    def _oldest_with_hash(self, action: RegisterTaskDefinition, ours: RevisionRecord) -> str:
        """After registering, the family's oldest ACTIVE revision with the spec hash.

        The family was read just before (observe); re-reading it right after
        closes the race with a registrar that read it at the same time (a
        oneshot beside the loop: neither holds the other's lock): both see
        both revisions and both keep the older one, and the younger, ours,
        is deregistered unused. Revisions the ledger knows are not described
        again, so this costs one ListTaskDefinitions when nobody raced us.
        """
        known = self._ledger.view().revisions
        for arn in self._ecs.list_active_revisions(action.family):  # oldest first
            if arn == ours.arn:
                return ours.arn
            other = known.get(arn)
            if other is None:
                other = revision_record(self._ecs.describe_revision(arn))
                self._ledger.put_revision(other)
            if action.spec_hash not in (other.spec_hash, other.tagged_hash):
                continue
            self._owned_revision(ours.arn)  # ours by its tags, as every deregistration checks
            status = self._ecs.deregister(ours.arn)
            self._ledger.put_revision(replace(ours, status=status))
            self._ledger.append_event(
                Event(
                    self._clock.now(),
                    None,
                    EventKind.DEREGISTERED,
                    f"{ours.arn}: registered at the same time as {arn}, which is kept",
                )
            )
            return arn
        return ours.arn

    def _scale_out(self, action: SetDesiredCapacity) -> None:
        if self._autoscaling is None:
            raise TerminalError("no Auto Scaling gateway configured")
        self._autoscaling.set_desired_capacity(action.group, action.target)
        now = self._clock.now()
        # Where the group's scale-in cooldown starts (DESIGN.md §6, scale-in).
        self._ledger.record_scale_out(action.group, now)
        self._ledger.append_event(Event(now, None, EventKind.SCALE_OUT, action.reason))
        if action.capped:
            self._ledger.append_event(Event(now, None, EventKind.CAPACITY_CAPPED, action.reason))

    def _instances(self) -> EcsInstanceGateway:
        if self._ecs_instances is None:
            raise TerminalError("no ECS container-instance gateway configured")
        return self._ecs_instances

    def _drain(self, action: DrainInstance) -> None:
        # The decision first: a crash before the ECS call is repeated by the
        # next pass, never forgotten with the instance left DRAINING.
        self._ledger.put_idle_instance(action.record)
        failures = self._instances().set_state(
            action.cluster, action.container_instance_arn, "DRAINING"
        )
        if failures:
            raise TerminalError("UpdateContainerInstancesState: " + "; ".join(map(str, failures)))
        self._ledger.append_event(
            Event(
                self._clock.now(),
                None,
                EventKind.DRAINING,
                f"{action.instance_id} of {action.group} set DRAINING: {action.reason}",
            )
        )

    def _reactivate(self, action: ReactivateInstance) -> None:
        failures = self._instances().set_state(
            action.cluster, action.container_instance_arn, "ACTIVE"
        )
        if failures and not all(f.reason == "MISSING" for f in failures):
            raise TerminalError("UpdateContainerInstancesState: " + "; ".join(map(str, failures)))
        # Gone (MISSING) or ACTIVE again: either way its idle clock ends.
        self._ledger.forget_idle_instance(action.instance_id)
        self._ledger.append_event(
            Event(
                self._clock.now(),
                None,
                EventKind.REACTIVATED,
                f"{action.instance_id} of {action.group} set ACTIVE again: {action.reason}",
            )
        )

    def _terminate(self, action: TerminateInstance) -> None:
        if self._autoscaling is None:
            raise TerminalError("no Auto Scaling gateway configured")
        self._autoscaling.terminate_instance(action.instance_id)
        self._ledger.forget_idle_instance(action.instance_id)
        self._ledger.append_event(
            Event(
                self._clock.now(),
                None,
                EventKind.SCALE_IN,
                f"{action.instance_id} of {action.group} terminated, desired capacity"
                f" decremented: {action.reason}",
            )
        )

    def _owned_revision(self, arn: str) -> RevisionRecord:
        """The live revision, refusing anything without this owner's tag (ownership rule)."""
        described = self._ecs.describe_revision(arn)
        if described.tags.get(TAG_OWNER) != self._owner:
            raise TerminalError(f"{arn} does not carry owner tag {self._owner!r}: not touched")
        return revision_record(described)

    def _deregister(self, action: DeregisterTaskDefinition) -> None:
        record = self._owned_revision(action.arn)
        status = self._ecs.deregister(action.arn)
        self._ledger.put_revision(replace(record, status=status))
        self._ledger.append_event(
            Event(self._clock.now(), None, EventKind.DEREGISTERED, f"{action.arn}: {action.reason}")
        )

    def _delete(self, action: DeleteTaskDefinitions) -> None:
        for arn in action.arns:
            self._owned_revision(arn)  # raises, deleting none, if one is not ours
        owned = list(action.arns)
        refused = self._ecs.delete(owned)
        refused_arns = {r.arn for r in refused}
        for arn in owned:
            if arn not in refused_arns:
                self._ledger.forget_revision(arn)
        self._ledger.append_event(
            Event(
                self._clock.now(),
                None,
                EventKind.DELETED,
                f"{len(owned)} revision(s): {action.reason}",
            )
        )
        if refused:
            raise TerminalError("DeleteTaskDefinitions refused " + "; ".join(map(str, refused)))

    def _registered_meanwhile(self, action: RegisterTaskDefinition) -> str | None:
        """An ACTIVE revision of the family that now has the wanted hash, if any."""
        for arn in self._ecs.list_active_revisions(action.family):
            record = revision_record(self._ecs.describe_revision(arn))
            if action.spec_hash in (record.spec_hash, record.tagged_hash):
                self._ledger.put_revision(record)
                return arn
        return None

    def _start(
        self,
        action: StartAttempt,
        registrations: _Registrations,
    ) -> RunTaskResult:
        record = action.record
        if action.pending_spec_hash is not None:
            arn = registrations.arns.get(action.pending_spec_hash)
            if arn is None:
                if action.pending_spec_hash in registrations.deferred:
                    raise _Deferred("its registration waits for the next pass")
                why = registrations.failed.get(action.pending_spec_hash, "not registered")
                raise TerminalError(f"no revision for {action.run}: {why}")
            record = _pin_revision(record, action.attempt, arn)
        # Step 1: the intent is durable before anything is sent to ECS.
        saved = self._ledger.save(record)
        self._checkpoint("after-intent")
        attempt = next(a for a in saved.attempts if a.number == action.attempt)
        # Step 2: RunTask with the recorded token and parameters.
        outcome = self._ecs.run_task(attempt.request)
        self._checkpoint("after-run-task")
        # Step 3: what ECS answered.
        return self._save_outcome(saved, action.attempt, outcome)

    def _save_outcome(
        self, record: RunRecord, attempt: int, outcome: RunTaskOutcome
    ) -> RunTaskResult:
        """Record what RunTask answered (a refusal raises TerminalError once recorded)."""
        now = self._clock.now()
        match outcome.result:
            case RunTaskResult.PLACED:
                updated = with_run_task_result(
                    record, attempt, tasks=tuple(t.record for t in outcome.tasks), now=now
                )
            case RunTaskResult.UNPLACEABLE:
                updated = with_run_task_result(
                    record, attempt, unplaceable=outcome.reasons, now=now
                )
            case RunTaskResult.REJECTED:
                updated = with_run_task_result(record, attempt, rejected=outcome.message, now=now)
        self._save(updated, updated.message)
        self._checkpoint("after-record")
        if outcome.result is RunTaskResult.REJECTED:
            raise TerminalError(outcome.message)  # recorded as Failed; the action failed
        return outcome.result

    def _save(self, record: RunRecord, why: str) -> RunRecord:
        saved = self._ledger.save(record)
        self._ledger.append_event(Event(self._clock.now(), record.key, str(record.reason), why))
        if record.phase.terminal:
            # Between a run's terminal record and its notification (controller.apply.notify).
            self._checkpoint("after-terminal")
        return saved


@dataclass
class _Registrations:
    """A pass's registrations by spec hash, for the starts that need their ARNs.

    Each spec hash is written by one worker in the registration phase and
    only read in the run phase after it.
    """

    arns: dict[str, str] = field(default_factory=dict)
    #: why a registration failed
    failed: dict[str, str] = field(default_factory=dict)
    #: registrations the pass budget left for the next pass
    deferred: set[str] = field(default_factory=set)


class _Deferred(Exception):
    """An action that cannot go before something the pass budget deferred."""


_PRUNES = (DeregisterTaskDefinition, DeleteTaskDefinitions)
_SCALE_INS = (MarkIdle, ForgetIdle, DrainInstance, TerminateInstance, ReactivateInstance)


def _phases(actions: Sequence[Action]) -> list[list[list[Action]]]:
    """The plan as phases of independent groups (see the module docstring)."""
    registrations: list[list[Action]] = []
    scale_outs: list[list[Action]] = []
    prunes: list[list[Action]] = []
    by_group: dict[str, list[Action]] = {}
    by_manifest: dict[str, list[Action]] = {}
    for action in actions:
        if isinstance(action, RegisterTaskDefinition):
            registrations.append([action])
        elif isinstance(action, SetDesiredCapacity):
            scale_outs.append([action])
        elif isinstance(action, _PRUNES):
            prunes.append([action])
        elif isinstance(action, MarkIdle):
            by_group.setdefault(action.instance.group, []).append(action)
        elif isinstance(action, _SCALE_INS):
            by_group.setdefault(action.group, []).append(action)
        else:
            by_manifest.setdefault(_manifest_of(action), []).append(action)
    phases = [
        registrations,
        scale_outs,
        list(by_manifest.values()),
        list(by_group.values()),
        prunes,
    ]
    return [phase for phase in phases if phase]


def _manifest_of(action: Action) -> str:
    """The manifest name an action is about: one group per name keeps its actions in order."""
    if isinstance(action, RecordSchedule):
        return action.cron_job
    run = getattr(action, "run", None)
    return run.name if isinstance(run, RunKey) else describe(action)


def _start_refused(record: RunRecord) -> bool:
    """True for a run this pass fails before it started: its task definition was refused.

    Only the pass that finishes the run reports it (`finished_at` is this
    pass's instant, as is `updated_at`), not a later note on the failed run.
    """
    return (
        record.phase is Phase.FAILED
        and record.reason is Reason.TASK_DEFINITION_ERROR
        and record.finished_at == record.updated_at
    )


def _pin_revision(record: RunRecord, attempt_number: int, arn: str) -> RunRecord:
    """The record with a freshly registered revision filled into the attempt's intent."""
    attempt = next(a for a in record.attempts if a.number == attempt_number)
    request = {**attempt.request, "taskDefinition": arn}
    pinned = replace(attempt, task_definition_arn=arn, request=request)
    return replace(record.with_attempt(pinned), task_definition_arn=arn)
