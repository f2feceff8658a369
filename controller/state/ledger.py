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

from datetime import datetime
from typing import Protocol

from controller.errors import ControllerError
from controller.model.manifest import RunKey
from controller.model.run import Event, LedgerView, RevisionRecord, RunRecord

__all__ = ["Ledger", "LedgerConflict", "LedgerView"]


class LedgerConflict(ControllerError):
    """Someone else saved this run since we read it: re-read and re-plan."""


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
