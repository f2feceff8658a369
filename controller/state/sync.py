"""The sync record: which source revision the loop last reconciled, and when.

`controller run` writes it after every pass that read the source, and
`controller status` prints it as its first line ("synced to abc1234 at
…"). It is a small JSON file next to the SQLite ledger (`<ledger>.sync.json`)
rather than ledger events, so a pass every resync period does not grow the
event log, and `status -o json` keeps its shape. Written atomically
(temporary file + rename): a reader never sees half a record.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class SyncRecord:
    """The last pass's source revision."""

    revision: str
    at: datetime
    source: str
    pass_id: str
    ok: bool

    def summary(self) -> str:
        """`synced to abc1234 at 2026-11-28T03:30:00Z` (plus the outcome when it failed)."""
        when = self.at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        line = f"synced to {short_revision(self.revision)} at {when}"
        return line if self.ok else f"{line} (last pass had errors)"


def sync_record_path(ledger: Path) -> Path:
    """Where the sync record of the SQLite ledger `ledger` lives: `<ledger>.sync.json`."""
    return ledger.with_name(ledger.name + ".sync.json")


def short_revision(revision: str) -> str:
    """A Git commit abbreviated as Git does (7 hex digits); other revisions unchanged."""
    return revision[:7] if _GIT_SHA.match(revision) else revision


def write_sync_record(path: Path, record: SyncRecord) -> None:
    """Replace the record at `path` atomically."""
    document = {**asdict(record), "at": record.at.astimezone(UTC).isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".sync-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_sync_record(path: Path) -> SyncRecord | None:
    """The record at `path`; None when there is none (or it cannot be understood)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return SyncRecord(
            revision=str(document["revision"]),
            at=datetime.fromisoformat(str(document["at"])),
            source=str(document["source"]),
            pass_id=str(document["pass_id"]),
            ok=bool(document["ok"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
