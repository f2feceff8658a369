"""The SQLite ledger: the shared contract, plus what only a file can get wrong.

Beyond `LedgerContract`: the pragmas (WAL, FULL sync, foreign keys), schema
migration on open and refusal of a newer schema, lock contention turning into
a TransientError, sharing one ledger between threads, `open_ledger` URL
parsing, and a property that arbitrary records round-trip unchanged.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import controller.state.sqlite as sqlite_module
from controller.errors import TerminalError, TransientError, UsageError
from controller.model.manifest import Kind, RunKey
from controller.model.run import (
    AttemptOutcome,
    AttemptRecord,
    CancelRequest,
    Event,
    Phase,
    Reason,
    RevisionRecord,
    RunOrigin,
    RunRecord,
    TaskRecord,
)
from controller.state import open_ledger
from controller.state.ledger import Ledger, PassSummary
from controller.state.sqlite import LedgerDamaged, SchemaVersionError, SqliteLedger
from tests.state.contract import T0, LedgerContract, full_run, intent, pending_run


class TestSqliteLedger(LedgerContract):
    """The shared ledger contract, on a file in tmp_path."""

    @pytest.fixture
    def make_ledger(self, tmp_path: Path) -> Callable[[], Ledger]:
        return lambda: SqliteLedger(tmp_path / "state.db")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(db_path) as opened:
        yield opened


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def set_user_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


# -- opening the file --------------------------------------------------------


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    with SqliteLedger(path):
        pass
    assert path.is_file()


def test_the_file_is_in_wal_mode(ledger: SqliteLedger, db_path: Path) -> None:
    # The journal mode is stored in the file: any other connection sees it.
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_commits_are_fsynced_and_foreign_keys_enforced(ledger: SqliteLedger) -> None:
    # Per-connection settings, so only the ledger's own connection can tell.
    assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert ledger._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert ledger._db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_a_new_file_gets_the_current_schema(ledger: SqliteLedger, db_path: Path) -> None:
    assert user_version(db_path) == len(sqlite_module.MIGRATIONS)


def test_an_empty_database_at_version_0_is_migrated(db_path: Path) -> None:
    sqlite3.connect(db_path).close()  # an existing, empty SQLite file
    assert user_version(db_path) == 0

    with SqliteLedger(db_path) as ledger:
        ledger.save(pending_run(RunKey("once", "1")))

    assert user_version(db_path) == len(sqlite_module.MIGRATIONS)


def _add_notes(db: sqlite3.Connection) -> None:
    """A made-up next version: a column and a table, as a real next step might add."""
    db.execute("ALTER TABLE runs ADD COLUMN note TEXT")
    db.execute("CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL)")


def test_an_older_schema_is_migrated_on_open_and_keeps_its_data(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = len(sqlite_module.MIGRATIONS)
    with SqliteLedger(db_path) as v1:
        run = v1.save(full_run(RunKey("nightly", "1")))
        v1.set_cron_last_scheduled("nightly", run.created_at)
    assert user_version(db_path) == current

    monkeypatch.setattr(sqlite_module, "MIGRATIONS", (*sqlite_module.MIGRATIONS, _add_notes))
    with SqliteLedger(db_path) as v2:
        assert v2.get(run.key) == run
        assert v2.view().cron_last_scheduled == {"nightly": run.created_at}
        assert v2.save(replace(run, message="after migration")).version == 2

    assert user_version(db_path) == current + 1
    with sqlite3.connect(db_path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(runs)")]
        assert "note" in columns
        assert db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


def test_a_failing_migration_step_changes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteLedger(db_path) as v1:
        run = v1.save(pending_run(RunKey("once", "1")))

    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE runs ADD COLUMN note TEXT")
        raise RuntimeError("step 2 went wrong halfway")

    monkeypatch.setattr(sqlite_module, "MIGRATIONS", (*sqlite_module.MIGRATIONS, broken))
    with pytest.raises(RuntimeError, match="halfway"):
        SqliteLedger(db_path)

    assert user_version(db_path) == len(sqlite_module.MIGRATIONS) - 1
    with sqlite3.connect(db_path) as db:
        assert "note" not in [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    monkeypatch.undo()
    with SqliteLedger(db_path) as again:
        assert again.get(run.key) == run


def test_a_version_1_file_gains_the_pass_summary_and_keeps_its_runs(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS[:1])
    with SqliteLedger(db_path) as v1:
        # Before the migration (as a read-only opener sees it) there is no table.
        assert v1.pass_summary() is None
    run = replace(pending_run(RunKey("once", "1")), version=1)
    write_old_run(db_path, run)
    assert user_version(db_path) == 1
    monkeypatch.undo()

    with SqliteLedger(db_path) as current:
        assert current.get(run.key) == run
        assert current.pass_summary() is None
        summary = PassSummary(at=run.created_at, revision="abc")
        current.record_pass_summary(summary)
        assert current.pass_summary() == summary
    assert user_version(db_path) == len(sqlite_module.MIGRATIONS)


def write_old_run(path: Path, run: RunRecord) -> None:
    """A run row as a controller before schema v3 wrote it (no origin, no cancel request)."""
    columns = sqlite_module._RUN_COLUMNS.split(", origin")[0]
    values = (run.key.name, run.key.run_id, *sqlite_module._run_values(run), run.version)
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(values))})", values)


def test_a_version_2_file_gains_origin_and_cancel_and_its_runs_read_as_manifest_runs(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS[:2])
    with SqliteLedger(db_path):
        pass
    run = replace(full_run(RunKey("nightly", "1")), origin=RunOrigin.MANIFEST, cancel=None)
    run = replace(run, attempts=(), version=1)
    write_old_run(db_path, run)
    monkeypatch.undo()

    # Read-only (status on a file an older controller wrote): not migrated, still read.
    with SqliteLedger(db_path, read_only=True) as old:
        assert old.view().runs == {run.key: run}
    assert user_version(db_path) == 2

    with SqliteLedger(db_path) as current:
        assert current.get(run.key) == run
        cancelled = replace(
            run, origin=RunOrigin.ONESHOT, cancel=CancelRequest("cli", "why", run.created_at)
        )
        assert current.get(run.key) == run
        saved = current.save(cancelled)
        assert current.get(run.key) == saved
    assert user_version(db_path) == len(sqlite_module.MIGRATIONS)


def test_a_version_2_file_is_read_before_and_after_it_gains_scale_in_tables(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS[:2])
    with SqliteLedger(db_path):
        pass
    monkeypatch.undo()
    run = replace(pending_run(RunKey("once", "1")), version=1)
    write_old_run(db_path, run)  # as a version-2 controller saved it
    with sqlite3.connect(db_path) as db:  # a summary as a version-2 controller wrote it
        db.execute(
            "INSERT INTO pass_summary (id, at, revision, invalid, warnings, cron_jobs)"
            " VALUES (1, ?, 'abc', '[]', '[]', '[]')",
            (T0.isoformat(timespec="microseconds"),),
        )

    # `status` (read-only) on the old file: no idle clocks, a summary without groups.
    with SqliteLedger(db_path, read_only=True) as reader:
        assert reader.view().idle_instances == {}
        assert reader.view().runs == {run.key: run}
        assert reader.pass_summary() == PassSummary(at=T0, revision="abc")
    assert user_version(db_path) == 2

    with SqliteLedger(db_path) as current:
        current.record_scale_out("batch-asg", T0)
        assert current.view().scale_outs == {"batch-asg": T0}
        assert current.pass_summary() == PassSummary(at=T0, revision="abc")
    assert user_version(db_path) == len(sqlite_module.MIGRATIONS)


def test_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    with SqliteLedger(db_path):
        pass
    newer = len(sqlite_module.MIGRATIONS) + 1
    set_user_version(db_path, newer)

    with pytest.raises(SchemaVersionError, match=rf"version {newer}.*upgrade the controller"):
        SqliteLedger(db_path)

    assert user_version(db_path) == newer


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"these are not the pages you are looking for" * 100)

    with pytest.raises(TerminalError, match="not a ledger database"):
        SqliteLedger(db_path)


def open_at_once(path: Path, count: int) -> list[BaseException]:
    """Open `count` ledgers on `path` from as many threads at once; return their errors."""
    barrier = threading.Barrier(count)
    opened: list[SqliteLedger] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(SqliteLedger(path))
        except BaseException as error:  # the caller asserts there are none
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ledger in opened:
        ledger.close()
    return errors


def test_two_ledgers_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    # Several files, as a single race may happen not to overlap.
    for round_ in range(5):
        path = tmp_path / f"state-{round_}.db"

        assert open_at_once(path, 2) == []
        assert user_version(path) == len(sqlite_module.MIGRATIONS)


def test_a_closed_ledger_refuses_to_work(db_path: Path) -> None:
    ledger = SqliteLedger(db_path)
    ledger.close()

    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        ledger.view()


# -- locking and threads ------------------------------------------------------


def test_a_lock_held_too_long_is_a_transient_error(db_path: Path) -> None:
    run = pending_run(RunKey("once", "1"))
    with SqliteLedger(db_path, busy_timeout=0) as ledger:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        with pytest.raises(TransientError, match="locked"):
            ledger.save(run)

        other.execute("ROLLBACK")
        other.close()
        # Nothing was left half-open: the retry succeeds.
        assert ledger.save(run).version == 1


def test_one_ledger_is_shared_by_threads(ledger: SqliteLedger) -> None:
    barrier = threading.Barrier(4)

    def write(thread: int) -> None:
        barrier.wait()
        for i in range(25):
            key = RunKey(f"t{thread}", str(i))
            saved = ledger.save(pending_run(key))
            ledger.save(saved.with_attempt(intent(key)))
            ledger.view()

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    runs = ledger.view().runs
    assert len(runs) == 100
    assert all(run.version == 2 and len(run.attempts) == 1 for run in runs.values())


def test_a_record_the_ledger_cannot_encode_is_refused_before_writing(
    ledger: SqliteLedger,
) -> None:
    key = RunKey("once", "1")
    nan = replace(intent(key), request={"cpu": math.nan})

    with pytest.raises(ValueError, match="JSON"):
        ledger.save(pending_run(key).with_attempt(nan))

    assert ledger.get(key) is None
    assert ledger.save(pending_run(key)).version == 1


def test_tables_answer_operator_questions_in_plain_sql(ledger: SqliteLedger, db_path: Path) -> None:
    run = ledger.save(full_run(RunKey("nightly", "1")))
    arn = run.attempts[0].tasks[1].arn

    with sqlite3.connect(db_path) as db:
        owner = db.execute("SELECT name, run_id, number FROM tasks WHERE arn = ?", (arn,))
        assert owner.fetchall() == [("nightly", "1", 1)]
        status = db.execute("SELECT phase, version FROM runs WHERE name = 'nightly'")
        assert status.fetchall() == [("Running", 1)]


def test_view_reuses_unchanged_runs_and_rereads_changed_ones(db_path: Path) -> None:
    with SqliteLedger(db_path) as ours, SqliteLedger(db_path) as theirs:
        kept = ours.save(full_run(RunKey("nightly", "1")))
        changed = ours.save(full_run(RunKey("nightly", "2")))
        before = ours.view()

        # Another connection (another process, in real life) saves one run.
        newer = theirs.save(replace(changed, message="saved elsewhere"))
        added = theirs.save(pending_run(RunKey("once", "1")))
        view = ours.view()

        assert view.runs == {kept.key: kept, newer.key: newer, added.key: added}
        assert view.runs[kept.key] is before.runs[kept.key]  # not decoded again


def test_view_decodes_everything_when_many_runs_changed(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_DECODE_ALL_ABOVE", 2)
    saved = [ledger.save(full_run(RunKey("nightly", str(i)))) for i in range(5)]
    ledger.view()
    saved[:3] = [ledger.save(replace(run, message="again")) for run in saved[:3]]

    view = ledger.view()

    assert view.runs == {run.key: run for run in saved}


# -- every operation maps a held lock ---------------------------------------------

WRITES: dict[str, Callable[[SqliteLedger], object]] = {
    "save": lambda ledger: ledger.save(pending_run(RunKey("once", "1"))),
    "append_event": lambda ledger: ledger.append_event(Event(NOW, None, "Guard", "held")),
    "set_cron_last_scheduled": lambda ledger: ledger.set_cron_last_scheduled("nightly", NOW),
    "put_revision": lambda ledger: ledger.put_revision(REVISION),
    "forget_revision": lambda ledger: ledger.forget_revision(REVISION.arn),
}
NOW = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
REVISION = RevisionRecord(
    arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/nightly:1",
    family="nightly",
    revision=1,
    spec_hash="0" * 64,
    owner="default",
    status="ACTIVE",
)


@pytest.mark.parametrize("operation", sorted(WRITES))
def test_every_write_meets_a_held_lock_as_a_transient_error(db_path: Path, operation: str) -> None:
    with SqliteLedger(db_path, busy_timeout=0) as ledger:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(TransientError, match="is locked by another connection"):
                WRITES[operation](ledger)
        finally:
            other.execute("ROLLBACK")
            other.close()
        WRITES[operation](ledger)  # nothing was left half-open


@pytest.mark.parametrize("read_only", [False, True])
def test_opening_a_file_locked_exclusively_is_a_transient_error(
    db_path: Path, read_only: bool
) -> None:
    SqliteLedger(db_path).close()
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")  # readers too must wait for this one
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO cron_schedules VALUES ('nightly', '2026-11-28')")
    try:
        with pytest.raises(TransientError, match="is locked by another connection"):
            SqliteLedger(db_path, busy_timeout=0, read_only=read_only)
    finally:
        other.close()


# -- private files ----------------------------------------------------------------


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_ledger_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state.db"
    with SqliteLedger(path) as ledger:
        ledger.save(full_run(RunKey("nightly", "1")))  # environment values, in a real ledger
        companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(companion.exists() for companion in companions)
        assert [mode(p) for p in (path, *companions)] == [0o600, 0o600, 0o600]
    assert mode(path.parent) == 0o700


def test_an_existing_ledger_keeps_its_mode(db_path: Path) -> None:
    sqlite3.connect(db_path).close()
    db_path.chmod(0o640)  # the operator's choice

    SqliteLedger(db_path).close()

    assert mode(db_path) == 0o640


# -- read-only opens ----------------------------------------------------------------


def test_a_read_only_open_of_a_missing_file_creates_nothing_and_reads_empty(
    tmp_path: Path,
) -> None:
    path = tmp_path / "typo" / "state.db"

    with SqliteLedger(path, read_only=True) as ledger:
        assert ledger.missing
        view = ledger.view()
        assert (view.runs, view.cron_last_scheduled, view.revisions) == ({}, {}, {})
        assert ledger.events() == []
        assert ledger.get(RunKey("once", "1")) is None
        with pytest.raises(TerminalError, match="open read-only"):
            ledger.save(pending_run(RunKey("once", "1")))

    assert not path.parent.exists()


def test_a_read_only_open_reads_what_a_writer_wrote_and_writes_nothing(db_path: Path) -> None:
    with SqliteLedger(db_path) as writer:
        run = writer.save(full_run(RunKey("nightly", "1")))
        writer.append_event(Event(NOW, run.key, "Started", "attempt 1"))
        # A live writer (a `controller run`) beside the reader.
        with SqliteLedger(db_path, read_only=True) as reader:
            assert not reader.missing
            assert reader.view().runs == {run.key: run}
            assert [e.message for e in reader.events(run.key)] == ["attempt 1"]
            for write in WRITES.values():
                with pytest.raises(TerminalError, match="open read-only"):
                    write(reader)
        assert writer.view().runs == {run.key: run}
        assert len(writer.events()) == 1


def test_a_read_only_open_neither_migrates_nor_refuses_an_older_schema(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteLedger(db_path) as v1:
        run = v1.save(full_run(RunKey("nightly", "1")))
    # The file of an older controller: it had no events table yet.
    with sqlite3.connect(db_path) as db:
        db.execute("DROP TABLE events")
    written = len(sqlite_module.MIGRATIONS)  # the version that file has
    # And this controller knows a step more (a table another change adds).
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", (*sqlite_module.MIGRATIONS, _add_leases))

    with SqliteLedger(db_path, read_only=True) as ledger:
        assert ledger.view().runs == {run.key: run}
        assert ledger.events() == []  # the missing table reads as empty
        assert ledger._db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0

    assert user_version(db_path) == written
    with sqlite3.connect(db_path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert "leases" not in tables
        assert "events" not in tables


def _add_leases(db: sqlite3.Connection) -> None:
    """A made-up version 2 that adds a table."""
    db.execute("CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL)")


def test_a_read_only_open_refuses_a_newer_schema(db_path: Path) -> None:
    SqliteLedger(db_path).close()
    set_user_version(db_path, len(sqlite_module.MIGRATIONS) + 1)

    with pytest.raises(SchemaVersionError, match="upgrade the controller"):
        SqliteLedger(db_path, read_only=True)


def test_open_ledger_read_only_creates_nothing(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:{tmp_path}/deep/state.db", read_only=True)
    ledger.close()
    assert ledger.missing
    assert list(tmp_path.iterdir()) == []


# -- damaged files --------------------------------------------------------------------


def damage(path: Path, how: str) -> None:
    """Damage a ledger file as a crash, a full disk or a stray write might."""
    data = bytearray(path.read_bytes())
    page = 4096
    if how == "truncated":
        del data[len(data) // 2 :]
    elif how == "overwritten pages":
        # Leave the header and the schema page; wreck the pages after them.
        data[2 * page : 6 * page] = bytes(range(256)) * (4 * page // 256)
    else:
        data[:] = b"these are not the pages you are looking for" * 100
    path.write_bytes(bytes(data))


@pytest.fixture
def big_ledger(db_path: Path) -> Path:
    with SqliteLedger(db_path) as ledger:
        for i in range(200):  # a few hundred pages
            ledger.save(full_run(RunKey(f"job-{i % 7}", str(i))))
    assert db_path.stat().st_size > 100 * 4096
    return db_path


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("how", ["truncated", "overwritten pages", "garbage"])
def test_a_damaged_file_is_refused_at_open_in_one_line(
    big_ledger: Path, how: str, read_only: bool
) -> None:
    damage(big_ledger, how)
    before = big_ledger.read_bytes()

    with pytest.raises(LedgerDamaged) as refused:
        SqliteLedger(big_ledger, read_only=read_only)

    message = str(refused.value)
    assert "\n" not in message
    assert str(big_ledger) in message
    assert "restore the file from a backup" in message
    assert big_ledger.read_bytes() == before  # left as found, for salvage


def test_a_path_that_cannot_be_a_file_is_a_terminal_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()

    with pytest.raises(TerminalError, match="cannot open the ledger"):
        SqliteLedger(tmp_path / "state.db")


# -- open_ledger --------------------------------------------------------------


def test_open_ledger_takes_a_relative_sqlite_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    ledger = open_ledger("sqlite:.controller/state.db")
    try:
        assert isinstance(ledger, SqliteLedger)
        assert ledger.path == Path(".controller/state.db")
    finally:
        ledger.close()
    assert (tmp_path / ".controller" / "state.db").is_file()


def test_open_ledger_takes_an_absolute_sqlite_path(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:{tmp_path}/deep/state.db")
    ledger.close()
    assert (tmp_path / "deep" / "state.db").is_file()


def test_open_ledger_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    open_ledger("sqlite:~/state.db").close()
    assert (tmp_path / "state.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:", "names no file"),
        ("sqlite:///var/lib/state.db", "write sqlite:PATH"),
        ("", "expected sqlite:PATH"),
        ("state.db", "expected sqlite:PATH"),
        ("postgres://db/ledger", r"expected sqlite:PATH .* or dynamodb://TABLE"),
        ("dynamodb:jobs", "expected sqlite:PATH"),
    ],
)
def test_open_ledger_refuses_what_it_cannot_open(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        open_ledger(url)


# -- property: any record round-trips --------------------------------------------

offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
# Fixed offsets: every one names the same instant as its UTC reading (a zone
# with DST would make ambiguous times compare unequal across zones, PEP 495).
aware = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=4)
sqlite_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)

tasks = st.builds(
    TaskRecord,
    arn=st.text(),
    last_status=st.sampled_from(["PROVISIONING", "RUNNING", "STOPPED"]) | st.text(),
    exit_codes=st.dictionaries(st.text(), st.none() | st.integers(-(2**31), 2**31 - 1)),
    stop_code=st.none() | st.text(),
    stopped_reason=st.none() | st.text(),
    started_at=st.none() | aware,
    stopped_at=st.none() | aware,
    missing=st.booleans(),
)


def attempts(number: int) -> st.SearchStrategy[AttemptRecord]:
    """Attempt `number` with everything else arbitrary."""
    return st.builds(
        AttemptRecord,
        number=st.just(number),
        client_token=st.text(),
        task_definition_arn=st.text(),
        request=json_objects,
        intent_at=aware,
        tasks=st.lists(tasks, max_size=3).map(tuple),
        submitted=st.booleans(),
        placement_failures=st.lists(st.text(), max_size=3).map(tuple),
        outcome=st.none() | st.sampled_from(AttemptOutcome),
        message=st.text(),
        finished_at=st.none() | aware,
    )


@st.composite
def runs(draw: st.DrawFn) -> RunRecord:
    """Draw an arbitrary run whose attempts have distinct numbers, in order (as with_attempt)."""
    numbers = sorted(draw(st.lists(sqlite_ints, unique=True, max_size=4)))
    return RunRecord(
        key=RunKey(draw(st.text(max_size=5)), draw(st.text(max_size=5))),
        kind=draw(st.sampled_from(Kind)),
        phase=draw(st.sampled_from(Phase)),
        reason=draw(st.sampled_from(Reason)),
        message=draw(st.text()),
        created_at=draw(aware),
        updated_at=draw(aware),
        spec_digest=draw(st.text()),
        frozen_spec=draw(st.none() | json_objects),
        task_definition_arn=draw(st.none() | st.text()),
        attempts=tuple(draw(attempts(n)) for n in numbers),
        not_before=draw(st.none() | aware),
        pending_since=draw(st.none() | aware),
        finished_at=draw(st.none() | aware),
    )


# One ledger serves every example (a fresh file each would make the property
# slow); short keys make examples revisit stored runs, so the property also
# covers overwriting one record with another.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(run=runs())
def test_any_run_round_trips_unchanged(ledger: SqliteLedger, run: RunRecord) -> None:
    stored = ledger.get(run.key)
    run = replace(run, version=0 if stored is None else stored.version)

    saved = ledger.save(run)

    assert saved == replace(run, version=run.version + 1)
    assert ledger.get(run.key) == saved
    assert ledger.view().runs[run.key] == saved


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    event=st.builds(
        Event,
        at=aware,
        run=st.none() | st.builds(RunKey, st.text(), st.text()),
        reason=st.text(),
        message=st.text(),
    )
)
def test_any_event_round_trips_unchanged(ledger: SqliteLedger, event: Event) -> None:
    ledger.append_event(event)

    assert ledger.events(limit=1) == [event]
    if event.run is not None:
        assert ledger.events(event.run, limit=1) == [event]


def test_a_version_4_file_reads_no_notifications_until_it_gains_their_tables(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS[:4])
    with SqliteLedger(db_path) as v4:
        v4.save(pending_run(RunKey("once", "1")))
    monkeypatch.undo()

    # `status` (read-only) on the old file: empty stand-ins, nothing migrated.
    with SqliteLedger(db_path, read_only=True) as reader:
        assert reader.notifications() == {}
        assert reader.notify_watermarks() == {}
        assert len(reader.view().runs) == 1
    assert user_version(db_path) == 4

    with SqliteLedger(db_path) as current:
        current.set_notify_watermark("*", "arn:aws:sns:eu-west-1:123456789012:ops", T0)
        assert current.notify_watermarks() == {("*", "arn:aws:sns:eu-west-1:123456789012:ops"): T0}
        assert len(current.view().runs) == 1
    assert user_version(db_path) == len(sqlite_module.MIGRATIONS) == 5
