"""The SQLite ledger: the default store, one local file and zero setup (DESIGN.md §9).

Why SQLite: a single controller needs durable, transactional memory of its
runs and nothing else to install. Why these choices:

* **WAL with `synchronous=FULL`.** WAL lets the metrics thread read while the
  loop writes. FULL (not NORMAL) because an attempt's intent must survive a
  power loss once `save` has returned: the start protocol (DESIGN.md §4) sends
  RunTask right after, and an intent lost to a rolled-back WAL frame would let
  a restarted controller start the same attempt under a token it no longer
  remembers. The price is one fsync per commit, a few per pass.
* **`BEGIN IMMEDIATE` for every write.** The version check and the write happen
  under SQLite's single write lock, so two ledgers on one file (two processes
  by mistake, or a test) can never both claim an attempt; a deferred
  transaction could read, then fail to upgrade with SQLITE_BUSY mid-way.
* **One connection behind a lock.** The loop thread writes and a metrics
  thread reads; serialising them on one connection (`check_same_thread=False`)
  is simpler than a connection per thread, whose connections could only be
  closed by their own threads. Every operation is short, so the wait is too.
* **Normal tables, not JSON blobs, for runs, attempts and tasks,** so that
  `sqlite3 state.db` answers "which run owns this task ARN" or "which intents
  were never submitted" without code. Only values that ECS defines (the
  RunTask request, the frozen spec, exit codes by container) are JSON.
* **Datetimes as fixed-width ISO 8601 UTC text** (`...T12:00:00.000001+00:00`):
  readable, exact to the microsecond, and sorted as text in time order.
* **`view()` decodes only what changed.** The loop reads the whole ledger
  every pass; every save bumps a run's version, so a run whose version is
  unchanged since the last view is reused instead of decoded again.
* **Versioned schema.** `PRAGMA user_version` is the number of migration steps
  applied; `MIGRATIONS` lists the steps in order and is applied on open, in one
  transaction. A file written by a newer controller is refused, not guessed at.
* **Private files.** The ledger holds frozen task definitions and RunTask
  overrides, environment values included, so a new file is created with mode
  0600 (SQLite gives its `-wal` and `-shm` the mode of the database file) and
  a directory created for it with 0700. An existing file keeps its mode.
* **Damage is refused at open.** Every open runs `PRAGMA quick_check`: it
  reads every page once (about 3 ms per MB, the cost of one `view()`), so a
  truncated or overwritten file is refused with one line saying what to do
  (`LedgerDamaged`) before a pass has done half its work, and `controller
  run` does not start on it. Damage appearing later is reported the same way
  by whichever operation meets it.
* **Read-only opens** (`read_only=True`: `status`, `diff`, `logs`, dry runs)
  use SQLite's `mode=ro`, so nothing can be written through them: no file or
  directory is created (a missing file reads as an empty ledger and sets
  `missing`), the schema is not migrated, and `query_only` refuses writes.
  A file of an older schema is read as it is: each table a later migration
  step adds is stood in for by an empty TEMP table of the same name (TEMP
  tables live in the connection, not the file); columns a later step added
  to an existing table (v3: a run's origin and cancel request) read as the
  defaults that step gives old rows. One effect remains outside our control: when no other
  connection has the file open, SQLite creates its `-wal` and `-shm`
  companions (empty, mode of the file) and a read-only connection cannot
  remove them; the next writer uses and removes them.
* **Errors are ours.** Every operation (and the open) turns SQLite's errors
  into the controller's kinds: a lock held past `busy_timeout`, a full disk
  or an I/O error is a TransientError (the loop retries the pass); a damaged
  file is LedgerDamaged and a file that cannot be opened or written a
  TerminalError (both exit 2 on the command line). Anything else (a
  constraint violation, a closed ledger) is a bug and stays sqlite3's.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from controller.errors import ControllerError, TerminalError, TransientError
from controller.model.capacity import IdleInstance
from controller.model.manifest import Kind, RunKey
from controller.model.notify import NotificationRecord
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
from controller.state.encoding import (
    from_text,
    optional_datetime,
    optional_text,
    to_json,
    to_text,
)
from controller.state.ledger import LedgerConflict, LedgerView, PassSummary

#: One schema step, from version N to N+1; runs inside the migration transaction.
Migration = Callable[[sqlite3.Connection], None]


def _schema_v1(db: sqlite3.Connection) -> None:
    """Create the first schema: runs, attempts, tasks, events, schedules, revisions."""
    statements = (
        """
        CREATE TABLE runs (
            name                TEXT NOT NULL,
            run_id              TEXT NOT NULL,
            kind                TEXT NOT NULL,
            phase               TEXT NOT NULL,
            reason              TEXT NOT NULL,
            message             TEXT NOT NULL,
            created_at          TEXT NOT NULL,
            updated_at          TEXT NOT NULL,
            spec_digest         TEXT NOT NULL,
            frozen_spec         TEXT,              -- JSON object; NULL until the first attempt
            task_definition_arn TEXT,
            not_before          TEXT,
            pending_since       TEXT,
            finished_at         TEXT,
            version             INTEGER NOT NULL CHECK (version > 0),
            PRIMARY KEY (name, run_id)
        )
        """,
        """
        CREATE TABLE attempts (
            name                TEXT NOT NULL,
            run_id              TEXT NOT NULL,
            number              INTEGER NOT NULL,
            client_token        TEXT NOT NULL,
            task_definition_arn TEXT NOT NULL,
            request             TEXT NOT NULL,     -- JSON: the exact RunTask parameters
            intent_at           TEXT NOT NULL,
            submitted           INTEGER NOT NULL CHECK (submitted IN (0, 1)),
            placement_failures  TEXT NOT NULL,     -- JSON array of strings
            outcome             TEXT,
            message             TEXT NOT NULL,
            finished_at         TEXT,
            PRIMARY KEY (name, run_id, number),
            FOREIGN KEY (name, run_id) REFERENCES runs (name, run_id) ON DELETE CASCADE
        )
        """,
        """
        CREATE TABLE tasks (
            name           TEXT NOT NULL,
            run_id         TEXT NOT NULL,
            number         INTEGER NOT NULL,
            position       INTEGER NOT NULL,       -- order within the attempt
            arn            TEXT NOT NULL,
            last_status    TEXT NOT NULL,
            exit_codes     TEXT NOT NULL,          -- JSON object: container -> code or null
            stop_code      TEXT,
            stopped_reason TEXT,
            started_at     TEXT,
            stopped_at     TEXT,
            missing        INTEGER NOT NULL CHECK (missing IN (0, 1)),
            PRIMARY KEY (name, run_id, number, position),
            FOREIGN KEY (name, run_id, number)
                REFERENCES attempts (name, run_id, number) ON DELETE CASCADE
        )
        """,
        # Adopting a task found in ECS starts from its ARN.
        "CREATE INDEX tasks_by_arn ON tasks (arn)",
        """
        CREATE TABLE events (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- log order, never reused
            at      TEXT NOT NULL,
            name    TEXT,
            run_id  TEXT,
            reason  TEXT NOT NULL,
            message TEXT NOT NULL,
            CHECK ((name IS NULL) = (run_id IS NULL))
        )
        """,
        # `status NAME/RUN_ID` reads the newest events of one run.
        "CREATE INDEX events_by_run ON events (name, run_id, id)",
        """
        CREATE TABLE cron_schedules (
            name           TEXT PRIMARY KEY,
            last_scheduled TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE revisions (
            arn       TEXT PRIMARY KEY,
            family    TEXT NOT NULL,
            revision  INTEGER NOT NULL,
            spec_hash TEXT NOT NULL,
            owner     TEXT,
            status    TEXT NOT NULL,
            tagged_hash TEXT
        )
        """,
        # Pruning works family by family.
        "CREATE INDEX revisions_by_family ON revisions (family, revision)",
    )
    for statement in statements:
        db.execute(statement)


def _schema_v2(db: sqlite3.Connection) -> None:
    """Add the last pass's summary: one row, replaced by every pass, read by `status`."""
    # The parts are JSON because the row is written and read whole; json_each
    # still answers "which files were invalid" in plain SQL.
    db.execute(
        """
        CREATE TABLE pass_summary (
            id        INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the last pass
            at        TEXT NOT NULL,
            revision  TEXT NOT NULL,
            invalid   TEXT NOT NULL,     -- JSON array of {path, line, message}
            warnings  TEXT NOT NULL,     -- JSON array of {message, at}
            cron_jobs TEXT NOT NULL      -- JSON array of the CronJobs' schedules
        )
        """
    )


def _schema_v3(db: sqlite3.Connection) -> None:
    """Add each run's origin and its cancel request (`controller oneshot`, `trigger`, `stop`)."""
    # Old rows are manifest runs with no cancel request: the defaults say so.
    for statement in (
        "ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'manifest'",
        "ALTER TABLE runs ADD COLUMN cancel_by TEXT",  # NULL: no cancel request
        "ALTER TABLE runs ADD COLUMN cancel_reason TEXT",
        "ALTER TABLE runs ADD COLUMN cancel_at TEXT",
    ):
        db.execute(statement)


def _schema_v4(db: sqlite3.Connection) -> None:
    """Add scale-in's memory: idle clocks, last scale-outs, and the groups the last pass saw."""
    db.execute(
        """
        CREATE TABLE idle_instances (
            instance_id    TEXT PRIMARY KEY,   -- the EC2 instance id
            grp            TEXT NOT NULL,      -- its Auto Scaling group
            cluster        TEXT NOT NULL,
            idle_since     TEXT NOT NULL,
            draining_since TEXT                -- set once the controller decided to release it
        )
        """
    )
    db.execute(
        """
        CREATE TABLE scale_outs (
            grp TEXT PRIMARY KEY,
            at  TEXT NOT NULL                  -- this controller's last SetDesiredCapacity
        )
        """
    )
    # Beside pass_summary rather than a new column of it: a read-only open
    # of an older file stands in an empty TEMP table for a missing table,
    # which it cannot do for a missing column.
    db.execute(
        """
        CREATE TABLE pass_capacity (
            id     INTEGER PRIMARY KEY CHECK (id = 1),  -- one row, written with pass_summary
            reports TEXT NOT NULL                       -- JSON array of the group reports
        )
        """
    )


def _schema_v5(db: sqlite3.Connection) -> None:
    """Add run notifications: each rule's watermark, and each notification's intent and publish."""
    db.execute(
        """
        CREATE TABLE notify_watermarks (
            scope     TEXT NOT NULL,           -- a manifest name, or '*' for --notify-sns
            topic_arn TEXT NOT NULL,
            since     TEXT NOT NULL,           -- runs finished before are never announced
            PRIMARY KEY (scope, topic_arn)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE notifications (
            id           TEXT PRIMARY KEY,     -- sha256 of owner/name/runId/phase/topic
            name         TEXT NOT NULL,
            run_id       TEXT NOT NULL,
            topic_arn    TEXT NOT NULL,
            phase        TEXT NOT NULL,
            intent_at    TEXT NOT NULL,
            message_id   TEXT,                 -- NULL: intent recorded, not known published
            published_at TEXT
        )
        """
    )


#: Schema steps in order: entry i takes a file from version i to i+1. Append
#: new steps; never edit a released one (files in the field already ran it).
#: A step runs inside the migration transaction, so it must not commit (no
#: executescript): all pending steps and the new user_version land together.
MIGRATIONS: tuple[Migration, ...] = (
    _schema_v1,
    _schema_v2,
    _schema_v3,
    _schema_v4,
    _schema_v5,
)

#: The columns `_schema_v3` added, and what a read-only open of an older file
#: reads in their place (the defaults the step gives old rows).
_V3_COLUMNS: Final = ("origin", "cancel_by", "cancel_reason", "cancel_at")
_V3_STAND_INS: Final = "'manifest', NULL, NULL, NULL"


class SchemaVersionError(TerminalError):
    """The ledger file was written by a newer controller."""


class LedgerDamaged(TerminalError):
    """The ledger file is damaged (truncated, overwritten) or not a SQLite database at all."""


_DEFAULT_BUSY_TIMEOUT_SECONDS: Final = 10.0
#: Beyond this many changed runs, view() decodes the whole table at once.
_DECODE_ALL_ABOVE: Final = 500
#: How often to retry switching a file that another connection is switching to WAL.
_WAL_RETRY_SECONDS: Final = 0.005

_RUN_COLUMNS: Final = (
    "name, run_id, kind, phase, reason, message, created_at, updated_at, spec_digest,"
    " frozen_spec, task_definition_arn, not_before, pending_since, finished_at, version,"
    " origin, cancel_by, cancel_reason, cancel_at"
)
_ATTEMPT_COLUMNS: Final = (
    "name, run_id, number, client_token, task_definition_arn, request, intent_at,"
    " submitted, placement_failures, outcome, message, finished_at"
)
_TASK_COLUMNS: Final = (
    "name, run_id, number, position, arn, last_status, exit_codes, stop_code,"
    " stopped_reason, started_at, stopped_at, missing"
)
_EVENT_COLUMNS: Final = "at, name, run_id, reason, message"

# The queries are built once from the constant column lists above; nothing
# here ever comes from input (values are always bound as parameters).
_SELECT_RUNS: Final = f"SELECT {_RUN_COLUMNS} FROM runs"  # noqa: S608
_SELECT_ATTEMPTS: Final = f"SELECT {_ATTEMPT_COLUMNS} FROM attempts"  # noqa: S608
_SELECT_TASKS: Final = f"SELECT {_TASK_COLUMNS} FROM tasks"  # noqa: S608
_ONE_RUN: Final = " WHERE name = ? AND run_id = ?"
_INSERT_RUN: Final = f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 19)})"  # noqa: S608
_UPDATE_RUN: Final = (
    "UPDATE runs SET kind = ?, phase = ?, reason = ?, message = ?, created_at = ?,"
    " updated_at = ?, spec_digest = ?, frozen_spec = ?, task_definition_arn = ?,"
    " not_before = ?, pending_since = ?, finished_at = ?, version = ?,"
    " origin = ?, cancel_by = ?, cancel_reason = ?, cancel_at = ?"
    " WHERE name = ? AND run_id = ?"
)
_INSERT_ATTEMPT: Final = f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 12)})"  # noqa: S608
_INSERT_TASK: Final = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({', '.join('?' * 12)})"  # noqa: S608
_NEWEST_EVENTS: Final = f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT ?"  # noqa: S608
_NEWEST_EVENTS_OF_RUN: Final = (
    f"SELECT {_EVENT_COLUMNS} FROM events"  # noqa: S608
    " WHERE name = ? AND run_id = ? ORDER BY id DESC LIMIT ?"
)


class SqliteLedger:
    """The `Ledger` on one SQLite file in WAL mode; safe to share between threads."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = _DEFAULT_BUSY_TIMEOUT_SECONDS,
        read_only: bool = False,
    ) -> None:
        """Open the ledger at `path`, creating (privately) and migrating it unless `read_only`.

        `busy_timeout` is how many seconds to wait for another connection's
        write lock before giving up with a TransientError. A read-only ledger
        creates, migrates and writes nothing; where there is no file it reads
        as empty and `missing` is True (see the module docstring).
        """
        self.path = Path(path)
        self.read_only = read_only
        #: True when a read-only open found no file: the ledger reads as empty
        self.missing = read_only and not self.path.exists()
        self._lock = threading.Lock()
        self._closed = False
        #: The runs the last view() decoded, reused while their version is
        #: unchanged (see view); guarded by _lock like the connection.
        self._decoded: dict[RunKey, RunRecord] = {}
        #: how runs are read: every column, unless an older file is open read-only
        self._select_runs: str = _SELECT_RUNS
        with self._errors_mapped():
            self._db = self._connect(busy_timeout)
            try:
                if read_only:
                    self._open_read_only(busy_timeout)
                else:
                    self._configure(busy_timeout)
                    self._migrate()
                self._check_integrity()
            except BaseException:
                self._db.close()
                raise

    # -- opening -----------------------------------------------------------

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        """The connection: to the file (created privately), read-only, or in memory if missing."""
        # isolation_level=None: the sqlite3 module must not open transactions
        # behind our back; every transaction here is an explicit BEGIN.
        if self.missing:
            return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if self.read_only:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            return sqlite3.connect(
                uri, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=True
            )
        _create_private(self.path)
        return sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )

    def _configure(self, busy_timeout: float) -> None:
        """Set the per-connection pragmas; the journal mode is stored in the file."""
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = self._enter_wal(busy_timeout)
        if mode != "wal":
            # WAL needs shared memory, so network file systems refuse it;
            # without it readers would block the loop's writes.
            raise TerminalError(
                f"{self.path}: SQLite refused WAL mode (journal_mode={mode});"
                " put the ledger on a local file system"
            )
        db.execute("PRAGMA synchronous = FULL")  # see the module docstring
        db.execute("PRAGMA foreign_keys = ON")

    def _enter_wal(self, busy_timeout: float) -> str:
        """Switch the file to WAL (a no-op once it is) and return the journal mode."""
        # Switching needs an exclusive lock, and SQLite reports a concurrent
        # switch (two controllers creating the file at once) as busy without
        # calling the busy handler; so wait here, as the handler would have.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                return str(self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise  # mapped by the caller: busy past the deadline is transient
                time.sleep(_WAL_RETRY_SECONDS)

    def _open_read_only(self, busy_timeout: float) -> None:
        """Ready a read-only connection: no WAL switch, no migration, writes refused."""
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not self.missing:
            self._refuse_newer(self._user_version(), len(MIGRATIONS))
        present = {
            str(name)
            for (name,) in db.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        }
        for name, statement in _schema_tables().items():
            if name not in present:
                # A table added by a later step (or no file at all): read as empty.
                db.execute("CREATE TEMP TABLE" + statement.removeprefix("CREATE TABLE"))
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(runs)")}
        if not set(_V3_COLUMNS) <= columns:
            # A file from before schema v3: its runs have no origin nor cancel
            # request, which is what the step's defaults say.
            self._select_runs = _SELECT_RUNS.replace(", ".join(_V3_COLUMNS), _V3_STAND_INS)
        db.execute("PRAGMA query_only = ON")

    def _check_integrity(self) -> None:
        """Refuse a damaged file at open rather than half-way through a pass."""
        if self.missing:
            return
        rows = self._db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            found = " ".join(str(rows[0][0]).split())[:200] if rows else "no answer"
            raise LedgerDamaged(self._damaged(f"integrity check: {found}"))

    def _migrate(self) -> None:
        """Bring the schema to len(MIGRATIONS), or refuse a file from a newer controller."""
        known = len(MIGRATIONS)
        found = self._user_version()
        if found == known:
            return  # the usual open: no write lock needed
        self._refuse_newer(found, known)
        # Under the write lock, so two processes opening a fresh file do not
        # both run a step; re-read, as the other one may have just finished.
        with self._transaction("BEGIN IMMEDIATE") as db:
            found = self._user_version()
            self._refuse_newer(found, known)
            for version in range(found, known):
                MIGRATIONS[version](db)
            # The header write is part of the transaction: all steps or none.
            db.execute(f"PRAGMA user_version = {known}")

    def _user_version(self) -> int:
        """Return the number of migration steps already applied to the file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, found: int, known: int) -> None:
        """Raise SchemaVersionError if the file's schema is newer than this code."""
        if found > known:
            raise SchemaVersionError(
                f"{self.path} has ledger schema version {found}, but this controller"
                f" knows versions up to {known}: upgrade the controller to use this ledger"
            )

    # -- transactions ------------------------------------------------------

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        """Run a block in one transaction under the thread lock; roll back on any error."""
        with self._lock, self._errors_mapped():
            if self._closed:
                raise sqlite3.ProgrammingError(f"the ledger {self.path} is closed")
            db = self._db
            try:
                db.execute(begin)
                yield db
                db.execute("COMMIT")
            except BaseException:
                # COMMIT itself can fail (busy, disk full) and leave the
                # transaction open; never leave it open for the next caller.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextmanager
    def _errors_mapped(self) -> Iterator[None]:
        """Raise the controller's error kinds instead of sqlite3's (see the module docstring)."""
        try:
            yield
        except sqlite3.Error as error:
            mapped = self._mapped(error)
            if mapped is None:
                raise  # a bug here, not a property of the file
            raise mapped from error

    def _mapped(self, error: sqlite3.Error) -> ControllerError | None:
        """The controller's error for a SQLite error, or None for a bug."""
        code = "_".join(str(getattr(error, "sqlite_errorname", "")).split("_")[:2])
        where = f"the ledger {self.path}"
        if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            return TransientError(f"{where} is locked by another connection: {error}")
        if code in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            return LedgerDamaged(self._damaged(str(error)))
        if code in ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_NOMEM"):
            return TransientError(f"{where}: {error}")
        if code == "SQLITE_READONLY":
            why = "it is open read-only" if self.read_only else "check the file's permissions"
            return TerminalError(f"{where} cannot be written ({error}): {why}")
        if code in ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"):
            return TerminalError(f"cannot open {where}: {error}")
        return None

    def _damaged(self, detail: str) -> str:
        """One line: which file is damaged, how, and what to do about it."""
        return (
            f"the ledger {self.path} is damaged or not a ledger database ({detail}):"
            f" check --state; restore the file from a backup, or salvage it with"
            f" `sqlite3 {self.path} .recover`; moving it aside starts an empty ledger"
            " (its run history is lost)"
        )

    # -- the Ledger protocol -----------------------------------------------

    def view(self) -> LedgerView:
        """Read every run, CronJob schedule and revision in one snapshot."""
        with self._transaction("BEGIN") as db:
            runs = self._current_runs(db)
            cron = {
                name: from_text(at)
                for name, at in db.execute("SELECT name, last_scheduled FROM cron_schedules")
            }
            revisions = {
                row[0]: RevisionRecord(
                    arn=row[0],
                    family=row[1],
                    revision=row[2],
                    spec_hash=row[3],
                    owner=row[4],
                    status=row[5],
                    tagged_hash=row[6],
                )
                for row in db.execute(
                    "SELECT arn, family, revision, spec_hash, owner, status, tagged_hash"
                    " FROM revisions"
                )
            }
            idle = {
                row[0]: IdleInstance(
                    instance_id=row[0],
                    group=row[1],
                    cluster=row[2],
                    idle_since=from_text(row[3]),
                    draining_since=optional_datetime(row[4]),
                )
                for row in db.execute(
                    "SELECT instance_id, grp, cluster, idle_since, draining_since"
                    " FROM idle_instances"
                )
            }
            scale_outs = {
                grp: from_text(at) for grp, at in db.execute("SELECT grp, at FROM scale_outs")
            }
        return LedgerView(
            runs=runs,
            cron_last_scheduled=cron,
            revisions=revisions,
            idle_instances=idle,
            scale_outs=scale_outs,
        )

    def _current_runs(self, db: sqlite3.Connection) -> dict[RunKey, RunRecord]:
        """Return every run, decoding only those saved since the last view.

        The loop calls view() every pass, and decoding 10,000 runs costs
        about half a second; a pass changes a few. Every save bumps the
        version, so a run whose version is unchanged is the record decoded
        last time (records are immutable, so sharing them is safe). Records
        are only ever cached as read back, never as passed to save().
        """
        versions = {
            RunKey.from_id_text(name, run_id): version
            for name, run_id, version in db.execute("SELECT name, run_id, version FROM runs")
        }
        decoded = self._decoded
        stale = {key for key, version in versions.items() if _version(decoded, key) != version}
        if len(stale) > _DECODE_ALL_ABOVE:
            # one pass beats thousands of small queries
            runs = _load_runs(db, None, self._select_runs)
        else:
            runs = {key: decoded[key] for key in versions if key not in stale}
            for key in stale:
                runs.update(_load_runs(db, key, self._select_runs))
        # Runs deleted since (none today) drop out with the old dict.
        self._decoded = runs
        return runs

    def get(self, key: RunKey) -> RunRecord | None:
        """Return one run with its attempts and tasks, or None."""
        with self._transaction("BEGIN") as db:
            return _load_runs(db, key, self._select_runs).get(key)

    def save(self, run: RunRecord) -> RunRecord:
        """Store `run` whole if the stored version is `run.version`; return it with version + 1."""
        # Encode first: a value the ledger cannot store (a naive datetime, a
        # request that is not JSON) fails before the write lock is taken.
        key = (run.key.name, run.key.id_text)
        new_version = run.version + 1
        values = _run_values(run)
        extras = _run_extras(run)
        attempt_rows = [(*key, *_attempt_values(a)) for a in run.attempts]
        task_rows = [
            (*key, attempt.number, position, *_task_values(task))
            for attempt in run.attempts
            for position, task in enumerate(attempt.tasks)
        ]
        with self._transaction("BEGIN IMMEDIATE") as db:
            row = db.execute(
                "SELECT version FROM runs WHERE name = ? AND run_id = ?", key
            ).fetchone()
            stored = 0 if row is None else int(row[0])
            if stored != run.version:
                raise LedgerConflict(_conflict_message(run, stored))
            if row is None:
                db.execute(_INSERT_RUN, (*key, *values, new_version, *extras))
            else:
                db.execute(_UPDATE_RUN, (*values, new_version, *extras, *key))
            # The record is saved whole: its attempts and tasks replace the old ones.
            db.execute("DELETE FROM tasks WHERE name = ? AND run_id = ?", key)
            db.execute("DELETE FROM attempts WHERE name = ? AND run_id = ?", key)
            db.executemany(_INSERT_ATTEMPT, attempt_rows)
            db.executemany(_INSERT_TASK, task_rows)
        return replace(run, version=new_version)

    def append_event(self, event: Event) -> None:
        """Add one event to the end of the log."""
        name, run_id = (event.run.name, event.run.id_text) if event.run else (None, None)
        row = (to_text(event.at), name, run_id, event.reason, event.message)
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT INTO events (at, name, run_id, reason, message) VALUES (?, ?, ?, ?, ?)",
                row,
            )

    def events(self, key: RunKey | None = None, limit: int = 100) -> list[Event]:
        """Return the newest `limit` events (of one run, if given), oldest first."""
        if limit <= 0:
            return []  # SQLite reads a negative LIMIT as "no limit"
        with self._transaction("BEGIN") as db:
            if key is None:
                rows = db.execute(_NEWEST_EVENTS, (limit,)).fetchall()
            else:
                rows = db.execute(_NEWEST_EVENTS_OF_RUN, (key.name, key.id_text, limit)).fetchall()
        return [
            Event(
                at=from_text(at),
                run=None if name is None else RunKey.from_id_text(name, run_id),
                reason=reason,
                message=message,
            )
            for at, name, run_id, reason, message in reversed(rows)
        ]

    def set_cron_last_scheduled(self, name: str, at: datetime) -> None:
        """Remember the newest occurrence of a CronJob already handled."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT INTO cron_schedules (name, last_scheduled) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET last_scheduled = excluded.last_scheduled",
                (name, to_text(at)),
            )

    def put_revision(self, revision: RevisionRecord) -> None:
        """Remember a described revision, replacing what was known under its ARN."""
        row = (
            revision.arn,
            revision.family,
            revision.revision,
            revision.spec_hash,
            revision.owner,
            revision.status,
            revision.tagged_hash,
        )
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT OR REPLACE INTO revisions"
                " (arn, family, revision, spec_hash, owner, status, tagged_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def forget_revision(self, arn: str) -> None:
        """Drop a revision that was deleted; forgetting an unknown one does nothing."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute("DELETE FROM revisions WHERE arn = ?", (arn,))

    def put_idle_instance(self, instance: IdleInstance) -> None:
        """Remember (or replace) an instance's idle clock and drain decision."""
        row = (
            instance.instance_id,
            instance.group,
            instance.cluster,
            to_text(instance.idle_since),
            optional_text(instance.draining_since),
        )
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT OR REPLACE INTO idle_instances"
                " (instance_id, grp, cluster, idle_since, draining_since) VALUES (?, ?, ?, ?, ?)",
                row,
            )

    def forget_idle_instance(self, instance_id: str) -> None:
        """Drop an instance's idle clock; an unknown id does nothing."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute("DELETE FROM idle_instances WHERE instance_id = ?", (instance_id,))

    def record_scale_out(self, group: str, at: datetime) -> None:
        """Remember when this controller last scaled `group` out."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT INTO scale_outs (grp, at) VALUES (?, ?)"
                " ON CONFLICT (grp) DO UPDATE SET at = excluded.at",
                (group, to_text(at)),
            )

    def record_pass_summary(self, summary: PassSummary) -> None:
        """Replace the last pass's summary (one row, and its scale-in groups' row)."""
        document = summary.as_document()
        row = (
            document["at"],
            document["revision"],
            to_json(document["invalid"]),
            to_json(document["warnings"]),
            to_json(document["cronJobs"]),
        )
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT OR REPLACE INTO pass_summary"
                " (id, at, revision, invalid, warnings, cron_jobs) VALUES (1, ?, ?, ?, ?, ?)",
                row,
            )
            db.execute(
                "INSERT OR REPLACE INTO pass_capacity (id, reports) VALUES (1, ?)",
                (to_json(document["capacityGroups"]),),
            )

    def pass_summary(self) -> PassSummary | None:
        """Return the last pass's summary; None before the first pass or in an older file."""
        try:
            with self._transaction("BEGIN") as db:
                row = db.execute(
                    "SELECT at, revision, invalid, warnings, cron_jobs FROM pass_summary"
                ).fetchone()
                groups = db.execute("SELECT reports FROM pass_capacity").fetchone()
        except sqlite3.OperationalError as error:
            # A file not migrated yet (opened read-only, by `status`) has no table.
            if "no such table" in str(error):
                return None
            raise
        if row is None:
            return None
        return PassSummary.from_document(
            {
                "at": row[0],
                "revision": row[1],
                "invalid": _from_json(row[2]),
                "warnings": _from_json(row[3]),
                "cronJobs": _from_json(row[4]),
                "capacityGroups": _from_json(groups[0]) if groups else [],
            }
        )

    def notify_watermarks(self) -> dict[tuple[str, str], datetime]:
        """Return when each notification rule (scope, topic) was first seen configured."""
        with self._transaction("BEGIN") as db:
            rows = db.execute("SELECT scope, topic_arn, since FROM notify_watermarks").fetchall()
        return {(scope, topic): from_text(since) for scope, topic, since in rows}

    def set_notify_watermark(self, scope: str, topic_arn: str, at: datetime) -> None:
        """Remember when a rule was first seen configured; a known rule keeps its instant."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT OR IGNORE INTO notify_watermarks (scope, topic_arn, since)"
                " VALUES (?, ?, ?)",
                (scope, topic_arn, to_text(at)),
            )

    def notifications(self) -> dict[str, NotificationRecord]:
        """Return every notification record, by notification id."""
        with self._transaction("BEGIN") as db:
            rows = db.execute(
                "SELECT id, name, run_id, topic_arn, phase, intent_at, message_id, published_at"
                " FROM notifications"
            ).fetchall()
        return {
            row[0]: NotificationRecord(
                notification_id=row[0],
                run=RunKey(row[1], row[2]),
                topic_arn=row[3],
                phase=Phase(row[4]),
                intent_at=from_text(row[5]),
                message_id=row[6],
                published_at=optional_datetime(row[7]),
            )
            for row in rows
        }

    def record_notification_intent(self, record: NotificationRecord) -> None:
        """Record a notification about to be published; an existing record is kept as it is."""
        row = (
            record.notification_id,
            record.run.name,
            record.run.run_id,
            record.topic_arn,
            record.phase.value,
            to_text(record.intent_at),
        )
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT OR IGNORE INTO notifications"
                " (id, name, run_id, topic_arn, phase, intent_at) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

    def record_notification_published(
        self, notification_id: str, message_id: str, at: datetime
    ) -> None:
        """Record that SNS accepted a notification whose intent is recorded."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "UPDATE notifications SET message_id = ?, published_at = ? WHERE id = ?",
                (message_id, to_text(at), notification_id),
            )

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"


# -- encoding ----------------------------------------------------------------


#: Decodes the compact JSON `to_json` writes; raw_decode skips json.loads'
#: whitespace regexes, a third of view()'s time with 10,000 runs.
_JSON: Final = json.JSONDecoder()


def _from_json(text: str) -> Any:
    """Decode JSON written by `to_json`."""
    return _JSON.raw_decode(text)[0]


def _run_values(run: RunRecord) -> tuple[Any, ...]:
    """Encode the `runs` columns after (name, run_id) and before version."""
    return (
        run.kind.value,
        run.phase.value,
        run.reason.value,
        run.message,
        to_text(run.created_at),
        to_text(run.updated_at),
        run.spec_digest,
        None if run.frozen_spec is None else to_json(run.frozen_spec),
        run.task_definition_arn,
        optional_text(run.not_before),
        optional_text(run.pending_since),
        optional_text(run.finished_at),
    )


def _run_extras(run: RunRecord) -> tuple[Any, ...]:
    """Encode the `runs` columns after version (origin and cancel request, schema v3)."""
    cancel = run.cancel
    return (
        run.origin.value,
        None if cancel is None else cancel.by,
        None if cancel is None else cancel.reason,
        None if cancel is None else to_text(cancel.at),
    )


def _attempt_values(attempt: AttemptRecord) -> tuple[Any, ...]:
    """Encode the `attempts` columns after (name, run_id)."""
    return (
        attempt.number,
        attempt.client_token,
        attempt.task_definition_arn,
        to_json(attempt.request),
        to_text(attempt.intent_at),
        int(attempt.submitted),
        to_json(list(attempt.placement_failures)),
        None if attempt.outcome is None else attempt.outcome.value,
        attempt.message,
        optional_text(attempt.finished_at),
    )


def _task_values(task: TaskRecord) -> tuple[Any, ...]:
    """Encode the `tasks` columns after (name, run_id, number, position)."""
    return (
        task.arn,
        task.last_status,
        to_json(dict(task.exit_codes)),
        task.stop_code,
        task.stopped_reason,
        optional_text(task.started_at),
        optional_text(task.stopped_at),
        int(task.missing),
    )


def _conflict_message(run: RunRecord, stored: int) -> str:
    """Explain why a save was refused, in words an operator can act on."""
    if run.version == 0:
        return f"run {run.key} already exists (version {stored}): it was saved by someone else"
    if stored == 0:
        return f"run {run.key} is not stored, but the record has version {run.version}"
    return (
        f"run {run.key} was saved by someone else (stored version {stored},"
        f" the record has {run.version}): re-read it and plan again"
    )


def _create_private(path: Path) -> None:
    """Create the ledger file with mode 0600 (its directory 0700) unless it exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _schema_tables() -> dict[str, str]:
    """The CREATE TABLE statement of every table the current schema has, by name."""
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for step in MIGRATIONS:
            step(scratch)
        rows = scratch.execute(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'"
        ).fetchall()
    finally:
        scratch.close()
    return {str(name): str(statement) for name, statement in rows}


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Tell whether another connection held a lock for longer than busy_timeout."""
    name = str(getattr(error, "sqlite_errorname", ""))
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))  # with extended codes


# -- decoding ----------------------------------------------------------------


def _version(runs: Mapping[RunKey, RunRecord], key: RunKey) -> int | None:
    """Return the version of `key` in `runs`, or None if it is not there."""
    run = runs.get(key)
    return None if run is None else run.version


def _load_runs(
    db: sqlite3.Connection, key: RunKey | None, select_runs: str = _SELECT_RUNS
) -> dict[RunKey, RunRecord]:
    """Every run (or the one of `key`) with attempts and tasks; call inside a transaction.

    `select_runs` reads the `runs` columns (an older file opened read-only
    reads stand-ins for the columns it lacks).
    """
    where, params = ("", ()) if key is None else (_ONE_RUN, (key.name, key.id_text))

    # Three flat queries grouped in Python beat a join here: a join would
    # repeat every run's large JSON columns once per task.
    tasks: defaultdict[tuple[str, str, int], list[TaskRecord]] = defaultdict(list)
    for row in db.execute(
        _SELECT_TASKS + where + " ORDER BY name, run_id, number, position", params
    ):
        tasks[(row[0], row[1], row[2])].append(_task(row))

    attempts: defaultdict[tuple[str, str], list[AttemptRecord]] = defaultdict(list)
    for row in db.execute(_SELECT_ATTEMPTS + where + " ORDER BY name, run_id, number", params):
        attempt_tasks = tasks.get((row[0], row[1], row[2]), ())
        attempts[(row[0], row[1])].append(_attempt(row, tuple(attempt_tasks)))

    runs: dict[RunKey, RunRecord] = {}
    for row in db.execute(select_runs + where, params):
        run = _run(row, tuple(attempts.get((row[0], row[1]), ())))
        runs[run.key] = run
    return runs


def _task(row: Sequence[Any]) -> TaskRecord:
    """Decode a TaskRecord from a `tasks` row."""
    exit_codes: Mapping[str, int | None] = _from_json(row[6])
    return TaskRecord(
        arn=row[4],
        last_status=row[5],
        exit_codes=exit_codes,
        stop_code=row[7],
        stopped_reason=row[8],
        started_at=optional_datetime(row[9]),
        stopped_at=optional_datetime(row[10]),
        missing=bool(row[11]),
    )


def _attempt(row: Sequence[Any], tasks: tuple[TaskRecord, ...]) -> AttemptRecord:
    """Decode an AttemptRecord from an `attempts` row and its tasks."""
    return AttemptRecord(
        number=row[2],
        client_token=row[3],
        task_definition_arn=row[4],
        request=_from_json(row[5]),
        intent_at=from_text(row[6]),
        tasks=tasks,
        submitted=bool(row[7]),
        placement_failures=tuple(_from_json(row[8])),
        outcome=None if row[9] is None else AttemptOutcome(row[9]),
        message=row[10],
        finished_at=optional_datetime(row[11]),
    )


def _run(row: Sequence[Any], attempts: tuple[AttemptRecord, ...]) -> RunRecord:
    """Decode a RunRecord from a `runs` row and its attempts."""
    return RunRecord(
        key=RunKey.from_id_text(row[0], row[1]),
        kind=Kind(row[2]),
        phase=Phase(row[3]),
        reason=Reason(row[4]),
        message=row[5],
        created_at=from_text(row[6]),
        updated_at=from_text(row[7]),
        spec_digest=row[8],
        frozen_spec=None if row[9] is None else _from_json(row[9]),
        task_definition_arn=row[10],
        attempts=attempts,
        not_before=optional_datetime(row[11]),
        pending_since=optional_datetime(row[12]),
        finished_at=optional_datetime(row[13]),
        version=row[14],
        origin=RunOrigin(row[15]),
        cancel=None
        if row[16] is None
        else CancelRequest(by=row[16], reason=row[17] or "", at=from_text(row[18])),
    )
