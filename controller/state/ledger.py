"""The ledger interface: durable memory the controller cannot re-derive from ECS.

Runs with their attempts (intent, task ARNs, exit codes, stop codes, times),
CronJob bookkeeping, known task-definition revisions and an append-only event
log (DESIGN.md §9). Every implementation (SQLite now, DynamoDB for several
replicas) passes `tests/state/contract.py`.

Runs are saved whole with optimistic concurrency: `save` succeeds only if the
stored version equals the record's, so two controllers can never both record
the intent of the same attempt — the exactly-once start protocol rests on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from controller.errors import ControllerError
from controller.model.manifest import RunKey
from controller.model.run import Event, RevisionRecord, RunRecord


class LedgerConflict(ControllerError):
    """Someone else saved this run since we read it: re-read and re-plan."""


@dataclass(frozen=True)
class LedgerView:
    """A consistent read of the ledger for one pass (the planner's input)."""

    runs: Mapping[RunKey, RunRecord] = field(default_factory=dict)
    #: CronJob name -> last scheduled occurrence already turned into a run
    cron_last_scheduled: Mapping[str, datetime] = field(default_factory=dict)
    revisions: Mapping[str, RevisionRecord] = field(default_factory=dict)

    def runs_of(self, name: str) -> list[RunRecord]:
        """Every run of one manifest name, oldest first."""
        return sorted(
            (r for r in self.runs.values() if r.key.name == name), key=lambda r: r.created_at
        )


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

    def close(self) -> None:
        """Release the store."""
        ...
