"""The plan is data: frozen actions the executor dispatches on by type.

A dry run prints the same objects the real executor applies, so `diff` can
never disagree with `reconcile`. Each action carries `reason`, the planner's
own words for why it wants it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.model.capacity import GroupReport, IdleInstance
from controller.model.manifest import RunKey
from controller.model.run import RunRecord
from controller.model.taskdef_diff import FieldChange


@dataclass(frozen=True)
class RegisterTaskDefinition:
    """Register a new revision of a family for a spec hash no revision has."""

    family: str
    spec_hash: str
    #: the RegisterTaskDefinition input, as the manifest wrote it (nulls stripped)
    task_definition: Mapping[str, Any]
    reason: str
    #: what differs from the family's newest revision, path by path with the
    #: values (secrets hidden); empty for a new family or an unknown body
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class StartAttempt:
    """Record the intent of an attempt, then RunTask (DESIGN.md §4 start protocol).

    `record` already holds the new attempt; when the revision is registered
    in this same pass its ARN is not known yet and `pending_spec_hash` says
    which registration supplies it.
    """

    run: RunKey
    record: RunRecord
    attempt: int
    pending_spec_hash: str | None
    reason: str


@dataclass(frozen=True)
class ResumeAttempt:
    """Repeat the RunTask of an intent that has no answer and no tagged task."""

    run: RunKey
    record: RunRecord
    attempt: int
    reason: str


@dataclass(frozen=True)
class StopTasks:
    """Stop an attempt's running tasks, then save `record`."""

    run: RunKey
    cluster: str
    task_arns: tuple[str, ...]
    stop_reason: str
    record: RunRecord
    reason: str


@dataclass(frozen=True)
class RecordRun:
    """Save a run's new state in the ledger (no AWS write)."""

    run: RunKey
    record: RunRecord
    reason: str


@dataclass(frozen=True)
class RecordSchedule:
    """Remember that a CronJob's occurrences up to `last_scheduled` are dealt with."""

    cron_job: str
    last_scheduled: datetime
    #: occurrences this decision reported Missed (for the metric)
    missed: int
    #: older missed occurrences summarised in one event instead of one run each
    summary: str | None
    reason: str


@dataclass(frozen=True)
class DeregisterTaskDefinition:
    """Deregister one ACTIVE revision this owner registered and no longer needs."""

    arn: str
    family: str
    revision: int
    reason: str


@dataclass(frozen=True)
class DeleteTaskDefinitions:
    """Delete up to 10 INACTIVE revisions this owner registered (--delete-inactive)."""

    arns: tuple[str, ...]
    family: str
    reason: str


@dataclass(frozen=True)
class SetDesiredCapacity:
    """One scale-out of an Auto Scaling group for all the tasks waiting on it."""

    group: str
    current: int
    target: int
    #: the need exceeded MaxSize and `target` is capped there
    capped: bool
    #: the runs whose tasks wait for this capacity
    runs: tuple[RunKey, ...]
    reason: str


@dataclass(frozen=True)
class MarkIdle:
    """Start an instance's idle clock in the ledger (no AWS write): it was seen empty."""

    instance: IdleInstance
    reason: str


@dataclass(frozen=True)
class ForgetIdle:
    """Stop an instance's idle clock (busy again, or no longer in the group); no AWS write."""

    group: str
    instance_id: str
    reason: str


@dataclass(frozen=True)
class DrainInstance:
    """Release, first half: record the decision, then set the container instance DRAINING."""

    group: str
    instance_id: str
    cluster: str
    container_instance_arn: str
    #: the idle record with `draining_since` set: saved before the ECS call
    record: IdleInstance
    reason: str


@dataclass(frozen=True)
class TerminateInstance:
    """Release, second half: TerminateInstanceInAutoScalingGroup, desired capacity decremented."""

    group: str
    instance_id: str
    cluster: str
    container_instance_arn: str
    reason: str


@dataclass(frozen=True)
class ReactivateInstance:
    """Set a container instance this controller drained ACTIVE again; `reason` says why."""

    group: str
    instance_id: str
    cluster: str
    container_instance_arn: str
    reason: str


#: The scale-in actions, applied in a phase of their own after the runs' actions.
ScaleInAction = MarkIdle | ForgetIdle | DrainInstance | TerminateInstance | ReactivateInstance

Action = (
    RegisterTaskDefinition
    | SetDesiredCapacity
    | StartAttempt
    | ResumeAttempt
    | StopTasks
    | RecordRun
    | RecordSchedule
    | DeregisterTaskDefinition
    | DeleteTaskDefinitions
    | MarkIdle
    | ForgetIdle
    | DrainInstance
    | TerminateInstance
    | ReactivateInstance
)


@dataclass(frozen=True)
class Plan:
    """Everything one pass intends to do, in execution order."""

    actions: tuple[Action, ...] = ()
    #: problems the plan found but cannot act on (shown by diff/reconcile)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: runs (and CronJobs) the planner failed on, one line each naming it
    #: (`planning_error`): left as they were this pass, every other run is
    #: planned; an error of the pass
    errors: tuple[str, ...] = field(default_factory=tuple)
    #: the earliest time something becomes due without any outside change (a
    #: backoff expiring, a deadline, a capacity retry): the loop wakes then
    requeue_at: datetime | None = None
    #: what scale-in saw of each group that opted in (for `status`)
    capacity_groups: tuple[GroupReport, ...] = ()

    @property
    def empty(self) -> bool:
        """True when there is nothing to do."""
        return not self.actions


def planning_error(subject: str, exc: Exception) -> str:
    """One line for a run or CronJob the planner failed on: what, and the exception."""
    detail = " ".join(str(exc).split()) or "no detail"
    return f"{subject}: cannot plan: {type(exc).__name__}: {detail}"


def describe(action: Action) -> str:
    """One line for humans: what and why."""
    match action:
        case RegisterTaskDefinition(family=family, spec_hash=spec_hash, reason=reason):
            return f"RegisterTaskDefinition {family} (spec {spec_hash[:12]}): {reason}"
        case StartAttempt(run=run, attempt=attempt, reason=reason):
            return f"RunTask {run} attempt {attempt}: {reason}"
        case ResumeAttempt(run=run, attempt=attempt, reason=reason):
            return f"RunTask {run} attempt {attempt} (same client token): {reason}"
        case StopTasks(run=run, task_arns=arns, reason=reason):
            return f"StopTask {run} ({len(arns)} task(s)): {reason}"
        case RecordRun(run=run, record=record, reason=reason):
            return f"Record {run} {record.phase}/{record.reason}: {reason}"
        case SetDesiredCapacity(reason=reason):
            return reason
        case RecordSchedule(cron_job=name, reason=reason):
            return f"Schedule {name}: {reason}"
        case DeregisterTaskDefinition(family=family, revision=revision, reason=reason):
            return f"DeregisterTaskDefinition {family}:{revision}: {reason}"
        case DeleteTaskDefinitions(arns=arns, family=family, reason=reason):
            revisions = ", ".join(a.rsplit(":", 1)[-1] for a in arns)
            return f"DeleteTaskDefinitions {family} revisions {revisions}: {reason}"
        case MarkIdle(instance=instance, reason=reason):
            return f"Record {instance.instance_id} of {instance.group} idle: {reason}"
        case ForgetIdle(group=group, instance_id=instance_id, reason=reason):
            return f"Record {instance_id} of {group} not idle: {reason}"
        case DrainInstance(group=group, instance_id=instance_id, reason=reason):
            return f"UpdateContainerInstancesState {instance_id} of {group} DRAINING: {reason}"
        case TerminateInstance(group=group, instance_id=instance_id, reason=reason):
            return f"TerminateInstanceInAutoScalingGroup {instance_id} of {group}: {reason}"
        case ReactivateInstance(group=group, instance_id=instance_id, reason=reason):
            return f"UpdateContainerInstancesState {instance_id} of {group} ACTIVE: {reason}"


def details(action: Action) -> list[str]:
    """Lines `diff` shows under the action: a registration's changed paths with their values."""
    match action:
        case RegisterTaskDefinition(changes=changes):
            return [change.line() for change in changes]
        case _:
            return []


def kind_of(action: Action) -> str:
    """The action's type name, for JSON output."""
    return type(action).__name__


def as_json(action: Action) -> dict[str, Any]:
    """A JSON-ready summary of an action (for `-o json`)."""
    base: dict[str, Any] = {"action": kind_of(action), "reason": action.reason}
    match action:
        case RegisterTaskDefinition(family=family, spec_hash=spec_hash, changes=changes):
            base.update(family=family, specHash=spec_hash, changes=[c.as_json() for c in changes])
        case StartAttempt(run=run, attempt=attempt) | ResumeAttempt(run=run, attempt=attempt):
            base.update(run=str(run), attempt=attempt)
        case StopTasks(run=run, task_arns=arns):
            base.update(run=str(run), taskArns=list(arns))
        case RecordRun(run=run, record=record):
            base.update(run=str(run), phase=str(record.phase), phaseReason=str(record.reason))
        case DeregisterTaskDefinition(arn=arn):
            base.update(taskDefinitionArn=arn)
        case RecordSchedule(cron_job=name, last_scheduled=last, missed=missed):
            base.update(cronJob=name, lastScheduled=last.isoformat(), missed=missed)
        case SetDesiredCapacity(group=group, current=current, target=target, capped=capped):
            base.update(
                autoScalingGroup=group, fromCapacity=current, toCapacity=target, capped=capped
            )
        case DeleteTaskDefinitions(arns=arns):
            base.update(taskDefinitionArns=list(arns))
        case MarkIdle(instance=instance):
            base.update(
                autoScalingGroup=instance.group,
                instanceId=instance.instance_id,
                idleSince=instance.idle_since.isoformat(),
            )
        case ForgetIdle(group=group, instance_id=instance_id):
            base.update(autoScalingGroup=group, instanceId=instance_id)
        case (
            DrainInstance(group=group, instance_id=instance_id, container_instance_arn=arn)
            | TerminateInstance(group=group, instance_id=instance_id, container_instance_arn=arn)
            | ReactivateInstance(group=group, instance_id=instance_id, container_instance_arn=arn)
        ):
            base.update(autoScalingGroup=group, instanceId=instance_id, containerInstanceArn=arn)
    return base
