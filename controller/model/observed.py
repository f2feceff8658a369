"""What a pass saw in AWS, as pure values (the planner's second input).

`controller.observe` fills these in through the gateways; `controller.plan`
reads them. Keeping them here, free of boto3, is what lets a planner test be
a table of (desired, observed, ledger, now) with no AWS at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.model.identity import TAG_ATTEMPT, TAG_INDEX, TAG_OWNER, TAG_RUN, TAG_RUN_ID
from controller.model.manifest import RunKey
from controller.model.run import RevisionRecord, TaskRecord


@dataclass(frozen=True)
class ObservedTask:
    """One ECS task as DescribeTasks reports it, with its tags."""

    record: TaskRecord
    cluster: str
    task_definition_arn: str
    started_by: str | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        """The task ARN."""
        return self.record.arn

    def attempt_of(self, owner: str) -> tuple[RunKey, int] | None:
        """(run key, attempt) from our tags, if this owner started the task."""
        if self.tags.get(TAG_OWNER) != owner:
            return None
        name, run_id, attempt, index = (
            self.tags.get(TAG_RUN),
            self.tags.get(TAG_RUN_ID),
            self.tags.get(TAG_ATTEMPT),
            self.tags.get(TAG_INDEX),
        )
        if name is None or run_id is None or attempt is None or not attempt.isdigit():
            return None
        if index is not None and not index.isdigit():
            return None
        return RunKey(name, run_id, None if index is None else int(index)), int(attempt)


@dataclass(frozen=True)
class ResolvedRef:
    """A taskDefinitionRef resolved to a revision, or why it could not be."""

    ref: str
    arn: str | None
    essential_containers: tuple[str, ...] = ()
    #: every container of the revision (an index's JOB_COMPLETION_INDEX override names each)
    containers: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ObservedState:
    """ECS as seen by one pass: only what the plan needs."""

    #: tasks described this pass, by ARN
    tasks: Mapping[str, ObservedTask] = field(default_factory=dict)
    #: task ARNs ECS no longer knows (aged out, or never existed)
    missing_tasks: frozenset[str] = frozenset()
    #: family -> its ACTIVE revisions, for families with runs about to start
    families: Mapping[str, tuple[RevisionRecord, ...]] = field(default_factory=dict)
    #: taskDefinitionRef -> the revision it names
    refs: Mapping[str, ResolvedRef] = field(default_factory=dict)
    #: clusters whose task list could not be read this pass: no conclusions
    #: about their tasks may be drawn (a vanished task is not a failure)
    unreadable_clusters: frozenset[str] = frozenset()
    #: described task-definition inputs of revisions, for changed-field reports
    revision_bodies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def tasks_of_attempt(self, owner: str, key: RunKey, attempt: int) -> list[ObservedTask]:
        """Tasks tagged with this run key and attempt (crash recovery)."""
        return [t for t in self.tasks.values() if t.attempt_of(owner) == (key, attempt)]


@dataclass(frozen=True)
class Needs:
    """What the observer must read for this pass."""

    clusters: frozenset[str]
    families: frozenset[str]
    refs: frozenset[str]
    #: family -> spec hashes wanted in it; when a listed revision already
    #: matches one, the observer need not describe the newest revision to
    #: explain a change
    family_hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Auto Scaling group -> clusters, for groups that runs wait on (only
    #: then is capacity observed at all)
    capacity_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
