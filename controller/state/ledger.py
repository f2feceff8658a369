"""The ledger interface: durable memory the controller cannot re-derive from ECS.

Runs with their attempts (intent, task ARNs, exit codes, stop codes, times),
CronJob bookkeeping, known task-definition revisions and an append-only event
log (DESIGN.md §9). Every implementation (SQLite now, DynamoDB for several
replicas) passes `tests/state/contract.py`.

Runs are saved whole with optimistic concurrency: `save` succeeds only if the
stored version equals the record's, so two controllers can never both record
the intent of the same attempt — the exactly-once start protocol rests on it.

Scale-in keeps two small things here as well: each idle instance's first-
seen-idle time and drain decision (`IdleInstance`), so that a restart
neither resets nor skips an idle clock, and each group's last scale-out
time, where its cooldown starts.

Besides the runs, the ledger keeps one `PassSummary`: what the last pass saw
that no run holds (the manifests it could not load, the guards that held
deletions back, the CronJobs' schedules). Each pass replaces it whole, so
`controller status` tells the whole state from the ledger alone, without
reading the source.

Run notifications (`controller.plan.notify`) keep two things: each rule's
watermark (when a pass first saw a topic configured, so older runs are
never announced) and one `NotificationRecord` per (run, topic), written
before SNS Publish and completed with the MessageId after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller.errors import ControllerError
from controller.model.capacity import GroupReport, IdleInstance
from controller.model.manifest import (
    ConcurrencyPolicy,
    CronJob,
    JobSpec,
    Metadata,
    RunKey,
    SourceLocation,
)
from controller.model.notify import NotificationRecord
from controller.model.problems import ManifestError
from controller.model.run import Event, LedgerView, RevisionRecord, RunRecord
from controller.state.encoding import from_text, optional_datetime, optional_text, to_text

__all__ = [
    "GUARD_WINDOW",
    "CronSchedule",
    "GroupReport",
    "GuardWarning",
    "IdleInstance",
    "Ledger",
    "LedgerConflict",
    "LedgerReader",
    "LedgerView",
    "ManifestError",
    "PassSummary",
    "RevisionCache",
    "RevisionMemory",
    "group_report_document",
    "group_report_of",
]


class LedgerConflict(ControllerError):
    """Someone else saved this run since we read it: re-read and re-plan."""


#: How long `status` keeps showing a guard that held deletions back, while no
#: pass since was healthy (DESIGN.md §8: "guards of the last day").
GUARD_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class CronSchedule:
    """A CronJob's schedule as the last pass loaded it: what `status` shows without the source."""

    name: str
    schedule: str
    time_zone: str
    suspend: bool
    concurrency_policy: str
    successful_runs_history_limit: int
    failed_runs_history_limit: int

    @classmethod
    def of(cls, cron: CronJob) -> CronSchedule:
        """The schedule data of a loaded CronJob."""
        return cls(
            name=cron.name,
            schedule=cron.schedule,
            time_zone=cron.time_zone,
            suspend=cron.suspend,
            concurrency_policy=cron.concurrency_policy.value,
            successful_runs_history_limit=cron.successful_runs_history_limit,
            failed_runs_history_limit=cron.failed_runs_history_limit,
        )

    def as_cron_job(self) -> CronJob:
        """The CronJob as far as its schedule goes: for `status`, never for planning.

        Its jobTemplate is empty (the summary does not keep it), which is all
        `next_occurrence` and `history` need.
        """
        return CronJob(
            metadata=Metadata(name=self.name),
            schedule=self.schedule,
            time_zone=self.time_zone,
            concurrency_policy=ConcurrencyPolicy(self.concurrency_policy),
            starting_deadline_seconds=None,
            suspend=self.suspend,
            successful_runs_history_limit=self.successful_runs_history_limit,
            failed_runs_history_limit=self.failed_runs_history_limit,
            job_template=JobSpec(cluster=""),
            source=SourceLocation("(recorded by the last pass)", 0),
        )


@dataclass(frozen=True)
class GuardWarning:
    """A guard that held deletions back (orphaning, pruning), and when it last did."""

    message: str
    at: datetime


@dataclass(frozen=True)
class PassSummary:
    """What the last pass saw that no run record holds; replaced whole by every pass."""

    #: when the pass ran
    at: datetime
    #: the source revision it read
    revision: str
    #: the manifests it could not load (`PATH:LINE: message`)
    invalid: tuple[ManifestError, ...] = ()
    #: the guards raised since the last pass that raised none (empty after a
    #: healthy pass), newest last
    warnings: tuple[GuardWarning, ...] = ()
    #: the CronJobs it loaded, by name
    cron_jobs: tuple[CronSchedule, ...] = ()
    #: the scale-in groups it observed, by name
    capacity_groups: tuple[GroupReport, ...] = ()

    def carrying_over(self, previous: PassSummary | None) -> PassSummary:
        """Return the summary with the guards raised since the last healthy pass.

        A pass that raises no guard is healthy and clears them all; one that
        raises some keeps the previous pass's as well (each message once, at
        its newest time), so a guard worded differently from pass to pass is
        not lost, and drops those older than GUARD_WINDOW.
        """
        if not self.warnings or previous is None:
            return self
        latest = {w.message: w for w in previous.warnings if self.at - w.at <= GUARD_WINDOW}
        latest.update((w.message, w) for w in self.warnings)
        kept = tuple(sorted(latest.values(), key=lambda w: w.at))
        return replace(self, warnings=kept)

    def as_document(self) -> dict[str, Any]:
        """The summary as JSON-ready values, as every ledger stores it."""
        return {
            "at": to_text(self.at),
            "revision": self.revision,
            "invalid": [
                {"path": e.path, "line": e.line, "message": e.message} for e in self.invalid
            ],
            "warnings": [{"message": w.message, "at": to_text(w.at)} for w in self.warnings],
            "cronJobs": [
                {
                    "name": c.name,
                    "schedule": c.schedule,
                    "timeZone": c.time_zone,
                    "suspend": c.suspend,
                    "concurrencyPolicy": c.concurrency_policy,
                    "successfulRunsHistoryLimit": c.successful_runs_history_limit,
                    "failedRunsHistoryLimit": c.failed_runs_history_limit,
                }
                for c in self.cron_jobs
            ],
            "capacityGroups": [group_report_document(g) for g in self.capacity_groups],
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PassSummary:
        """Decode what `as_document` wrote."""
        return cls(
            at=from_text(document["at"]),
            revision=document["revision"],
            invalid=tuple(
                ManifestError(e["path"], e["line"], e["message"]) for e in document["invalid"]
            ),
            warnings=tuple(
                GuardWarning(w["message"], from_text(w["at"])) for w in document["warnings"]
            ),
            cron_jobs=tuple(
                CronSchedule(
                    name=c["name"],
                    schedule=c["schedule"],
                    time_zone=c["timeZone"],
                    suspend=c["suspend"],
                    concurrency_policy=c["concurrencyPolicy"],
                    successful_runs_history_limit=c["successfulRunsHistoryLimit"],
                    failed_runs_history_limit=c["failedRunsHistoryLimit"],
                )
                for c in document["cronJobs"]
            ),
            # Summaries written before scale-in existed have no groups.
            capacity_groups=tuple(group_report_of(g) for g in document.get("capacityGroups") or ()),
        )


def group_report_document(report: GroupReport) -> dict[str, Any]:
    """A scale-in group's report as JSON-ready values (the pass summary's and `status`'s)."""
    release = None
    if report.next_release is not None:
        release = {"instanceId": report.next_release, "at": optional_text(report.next_release_at)}
    return {
        "name": report.name,
        "minSize": report.min_size,
        "maxSize": report.max_size,
        "desired": report.desired,
        "instances": report.instances,
        "idle": list(report.idle),
        "draining": list(report.draining),
        "nextRelease": release,
        "message": report.message,
    }


def group_report_of(document: Mapping[str, Any]) -> GroupReport:
    """Decode what `group_report_document` wrote."""
    release = document.get("nextRelease")
    return GroupReport(
        name=document["name"],
        min_size=document["minSize"],
        max_size=document["maxSize"],
        desired=document["desired"],
        instances=document["instances"],
        idle=tuple(document["idle"]),
        draining=tuple(document["draining"]),
        next_release=release["instanceId"] if release else None,
        next_release_at=optional_datetime(release["at"]) if release else None,
        message=document["message"],
    )


class RevisionCache(Protocol):
    """Where observed revisions are remembered (immutable, so a cache by ARN).

    The ledger is one (it keeps them across processes); a dry run passes an
    in-memory one, so observing writes nothing durable.
    """

    def put_revision(self, revision: RevisionRecord) -> None:
        """Remember a described revision."""
        ...


class RevisionMemory:
    """A RevisionCache that forgets at exit: a dry run's, which must write nothing."""

    def __init__(self) -> None:
        self.revisions: dict[str, RevisionRecord] = {}

    def put_revision(self, revision: RevisionRecord) -> None:
        """Remember a described revision for this process only."""
        self.revisions[revision.arn] = revision


class LedgerReader(Protocol):
    """What a pass reads from the ledger before it writes anything."""

    def view(self) -> LedgerView:
        """Read everything the planner needs, consistently."""
        ...


class Ledger(Protocol):
    """Durable store of runs, revisions, schedules and events."""

    def view(self) -> LedgerView:
        """Read everything the planner needs, consistently."""
        ...

    def get(self, key: RunKey) -> RunRecord | None:
        """One run, or None."""
        ...

    def save(self, run: RunRecord) -> RunRecord:
        """Store `run` if the stored version is `run.version`; returns it with the new version.

        A run not yet stored must have version 0. Raises LedgerConflict otherwise.
        """
        ...

    def append_event(self, event: Event) -> None:
        """Add one event to the log."""
        ...

    def events(self, key: RunKey | None = None, limit: int = 100) -> list[Event]:
        """The newest `limit` events (of one run, if given), oldest first."""
        ...

    def set_cron_last_scheduled(self, name: str, at: datetime) -> None:
        """Remember the newest occurrence of a CronJob already handled."""
        ...

    def put_revision(self, revision: RevisionRecord) -> None:
        """Remember a described revision (they are immutable, so this is a cache)."""
        ...

    def forget_revision(self, arn: str) -> None:
        """Drop a revision that was deleted (ECS may reuse its number)."""
        ...

    def put_idle_instance(self, instance: IdleInstance) -> None:
        """Remember (or replace) an instance's idle clock and drain decision, by instance id."""
        ...

    def forget_idle_instance(self, instance_id: str) -> None:
        """Drop an instance's idle clock (busy again, released, or gone); unknown ids do nothing."""
        ...

    def record_scale_out(self, group: str, at: datetime) -> None:
        """Remember when this controller last scaled `group` out (the scale-in cooldown)."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...

    def notify_watermarks(self) -> dict[tuple[str, str], datetime]:
        """When each notification rule (scope, topic ARN) was first seen configured."""
        ...

    def set_notify_watermark(self, scope: str, topic_arn: str, at: datetime) -> None:
        """Remember when a rule was first seen configured; a known rule keeps its first instant."""
        ...

    def notifications(self) -> dict[str, NotificationRecord]:
        """Every notification record (intent, and MessageId once published), by id."""
        ...

    def record_notification_intent(self, record: NotificationRecord) -> None:
        """Step 1 of a notification: record it before Publish; an existing record is kept."""
        ...

    def record_notification_published(
        self, notification_id: str, message_id: str, at: datetime
    ) -> None:
        """Step 3 of a notification: record the MessageId SNS answered."""
        ...

    def record_pass_summary(self, summary: PassSummary) -> None:
        """Replace the last pass's summary with `summary`."""
        ...

    def pass_summary(self) -> PassSummary | None:
        """The summary the last pass recorded; None before the first (or on an older store)."""
        ...
