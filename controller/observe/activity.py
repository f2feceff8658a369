"""The cheap look between passes: did anything a run in flight waits for change in ECS.

A full pass reloads the source and reads everything the plan needs; doing it
every few seconds would cost a source load and a full observation each time.
What changes on its own between passes is small and known in advance from
the ledger: the tasks whose end it has not recorded (they start, stop or
vanish), the clusters where an intent has no answer yet (the task may appear),
and the clusters where runs wait for an Auto Scaling group (instances
register). `look` reads exactly those and says why a pass is needed now, or
None. It never writes: the pass it triggers records what changed.

Cost of one look: per cluster with open tasks, one DescribeTasks per 100 of
them (never one for a finished run); one ListTasks page per 100 running tasks
of this owner only where an intent is unanswered; one ListContainerInstances
page per 100 instances only where runs wait for room. With nothing in
flight, `Watch.empty` is true and the loop does not look at all.

A task's ECS status is compared by stage, not by name: ECS moves a task
through PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING,
DEPROVISIONING and STOPPED, and only three of those steps change a run
(it starts running, it stops, it vanishes); the others would cost a pass
each and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.model.identity import started_by
from controller.model.run import LedgerView
from controller.observe.ecs import clusters_with_open_intents, open_tasks


class TaskStage(StrEnum):
    """The part of a task's life that matters to its run."""

    WAITING = "waiting"
    RUNNING = "running"
    STOPPED = "stopped"


_WAITING_STATUSES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})


def stage_of(last_status: str) -> TaskStage:
    """The stage of an ECS lastStatus (unknown statuses count as running: not an end)."""
    if last_status == "STOPPED":
        return TaskStage.STOPPED
    if last_status in _WAITING_STATUSES:
        return TaskStage.WAITING
    return TaskStage.RUNNING


@dataclass(frozen=True)
class Watch:
    """What the next look reads: derived from the ledger after each pass."""

    #: cluster -> task ARN -> the stage the ledger last recorded
    tasks: Mapping[str, Mapping[str, TaskStage]] = field(default_factory=dict)
    #: cluster -> every task ARN the ledger knows there, for clusters with an
    #: unanswered intent: a running task of ours outside it is news
    intents: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: cluster -> container instances the pass counted, for clusters where
    #: runs wait for an Auto Scaling group
    instances: Mapping[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when nothing is in flight: no look is worth its calls."""
        return not (self.tasks or self.intents or self.instances)

    @property
    def active_tasks(self) -> int:
        """How many open tasks a look describes."""
        return sum(len(arns) for arns in self.tasks.values())


def watch_of(view: LedgerView, instances: Mapping[str, int] | None = None) -> Watch:
    """The watch for the ledger as a pass left it (and the instance counts it saw)."""
    runs = view.runs.values()
    tasks = {
        cluster: {arn: stage_of(task.last_status) for arn, task in sorted(by_arn.items())}
        for cluster, by_arn in sorted(open_tasks(runs).items())
    }
    intents: dict[str, frozenset[str]] = {}
    for cluster in sorted(clusters_with_open_intents(runs)):
        intents[cluster] = frozenset(
            t.arn
            for r in runs
            for a in r.attempts
            if str(a.request.get("cluster", "")) == cluster
            for t in a.tasks
        )
    return Watch(tasks=tasks, intents=intents, instances=dict(instances or {}))


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def look(
    ecs: EcsGateway,
    ecs_instances: EcsInstanceGateway | None,
    watch: Watch,
    owner: str,
) -> str | None:
    """Why a pass is needed now (the first change seen), or None when nothing changed.

    Raises ControllerError when ECS cannot be read; the caller decides.
    """
    for cluster, recorded in watch.tasks.items():
        found, missing = ecs.describe_tasks(cluster, list(recorded))
        for task in found:
            stage = stage_of(task.record.last_status)
            if recorded.get(task.arn, stage) != stage:
                return f"task {_short(task.arn)} {task.record.last_status}"
        if missing:
            return f"task {_short(missing[0])} vanished"
        described = {t.arn for t in found}
        unknown = [arn for arn in recorded if arn not in described]
        if unknown:
            return f"task {_short(unknown[0])} vanished"
    for cluster, known in watch.intents.items():
        running = ecs.list_tasks(cluster, started_by(owner), "RUNNING")
        new = sorted(set(running) - known)
        if new:
            return f"task {_short(new[0])} appeared in {cluster}"
    if ecs_instances is not None:
        for cluster, before in watch.instances.items():
            now = len(ecs_instances.list_container_instances(cluster))
            if now != before:
                return f"container instances in {cluster}: {before} -> {now}"
    return None
