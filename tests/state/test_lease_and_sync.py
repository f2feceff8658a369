"""The files `controller run` keeps next to the SQLite ledger: its lease and its sync record."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.state import ledger_file
from controller.state.file_lock import FileLease, LeaseHeld, lease_path
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
    refused = pytest.raises(LeaseHeld, match=rf"pid {os.getpid()}, `controller run`\).*one pass")
    with FileLease(path, "controller run"), refused:
        FileLease(path).acquire()
    with FileLease(path):  # released: free again
        pass


def test_a_waiting_writer_gives_up_after_its_timeout_naming_the_holder(tmp_path: Path) -> None:
    path = lease_path(tmp_path / "state.db")
    with FileLease(path, "controller reconcile --once"):
        started = time.monotonic()
        with pytest.raises(LeaseHeld) as refused:
            FileLease(path).acquire(timeout=0.3)
        assert time.monotonic() - started >= 0.3
    message = str(refused.value)
    assert f"pid {os.getpid()}, `controller reconcile --once`" in message
    assert "still after waiting 0.3s (--lock-timeout)" in message


def test_a_waiting_writer_gets_the_lock_once_the_holder_releases_it(tmp_path: Path) -> None:
    path = lease_path(tmp_path / "state.db")
    holder = FileLease(path, "controller run").acquire()
    waiting = threading.Event()
    got: list[FileLease] = []

    def wait_for_it() -> None:
        waiting.set()
        got.append(FileLease(path, "controller reconcile --once").acquire(timeout=30))

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    assert waiting.wait(10)
    assert not got  # still held: the waiter waits
    holder.release()
    waiter.join(timeout=10)  # bounded: the wait ends with the release, not the timeout
    assert not waiter.is_alive()
    assert len(got) == 1
    assert path.read_text() == f"{os.getpid()} controller reconcile --once\n"
    got[0].release()


def test_the_lock_is_keyed_by_the_resolved_ledger_path(tmp_path: Path) -> None:
    real = tmp_path / "state.db"
    real.touch()
    alias = tmp_path / "alias.db"
    alias.symlink_to(real)
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(tmp_path)
    assert lease_path(alias) == lease_path(real) == lease_path(linked_dir / "state.db")
    # Not yet created: the directories still resolve, so the lock is the same.
    assert lease_path(linked_dir / "new.db") == lease_path(tmp_path / "new.db")
    with FileLease(lease_path(real)), pytest.raises(LeaseHeld):
        FileLease(lease_path(alias)).acquire()


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
