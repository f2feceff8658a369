"""The files `controller run` keeps next to the SQLite ledger: its lease and its sync record."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.state import ledger_file
from controller.state.lease import FileLease, LeaseHeld, lease_path
from controller.state.sync import (
    SyncRecord,
    read_sync_record,
    short_revision,
    sync_record_path,
    write_sync_record,
)


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = lease_path(tmp_path / "state.db")
    assert path.name == "state.db.lock"
    # flock locks belong to an open file: a second open in this very
    # process is refused like another process would be.
    refused = pytest.raises(LeaseHeld, match=rf"pid {os.getpid()}.*only one replica")
    with FileLease(path), refused:
        FileLease(path).acquire()
    with FileLease(path):  # released: free again
        pass


def test_the_sync_record_round_trips_and_summarises(tmp_path: Path) -> None:
    ledger = ledger_file(f"sqlite:{tmp_path / 'state.db'}")
    assert ledger is not None
    path = sync_record_path(ledger)
    assert read_sync_record(path) is None
    record = SyncRecord(
        revision="0123456789abcdef0123456789abcdef01234567",
        at=datetime(2026, 11, 28, 3, 30, tzinfo=UTC),
        source="manifests/",
        pass_id="ab12-3",
        ok=True,
    )
    write_sync_record(path, record)
    assert read_sync_record(path) == record
    assert record.summary() == "synced to 0123456 at 2026-11-28T03:30:00Z"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_damaged_sync_record_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "state.db.sync.json"
    path.write_text("{not json")
    assert read_sync_record(path) is None


def test_short_revisions() -> None:
    assert short_revision("sha256:00aa11bb22cc33dd") == "sha256:00aa11bb22cc33dd"
    assert short_revision("f" * 40) == "fffffff"
    assert ledger_file("dynamodb://table") is None
