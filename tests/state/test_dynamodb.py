"""The DynamoDB ledger and its leader lease, on moto in-process.

Beyond `LedgerContract` (run in full against the table): conditional
conflicts between two ledger objects, the item-size refusal, the table
created on first use, `open_ledger("dynamodb://...")`, a property that any
record round-trips, the pure lease decisions as a table, and the elector
acquiring, renewing, expiring, being stolen from and releasing with a
FakeClock, against both an in-memory store and the real table item.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.errors import TerminalError, UsageError
from controller.model.manifest import RunKey
from controller.model.run import Event, RunOrigin
from controller.sandbox import Sandbox
from controller.sandbox.patches import PatchStack, patch_atomic_dynamodb_writes
from controller.state import DynamoDbLedger, dynamodb, open_ledger
from controller.state.dynamodb import MAX_ITEM_BYTES
from controller.state.leader_lease import (
    LeaderElector,
    LeaseKeeper,
    LeaseRecord,
    LeaseSettings,
    LeaseStore,
    Step,
    decide,
)
from controller.state.ledger import Ledger, LedgerConflict
from tests.e2e.conftest import World, job
from tests.state.contract import LedgerContract, full_run, intent, pending_run

REGION = "eu-west-1"
TABLE = "ledger"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, with fake credentials and no endpoint override."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CONTROLLER_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with atomic_mock_aws():
        yield


@contextmanager
def atomic_mock_aws() -> Iterator[None]:
    """moto in-process, with DynamoDB's conditional writes atomic as in AWS.

    moto checks a condition and writes without a lock; without the sandbox's
    patch every racing-claims test here is a coin toss.
    """
    stack = PatchStack()
    patch_atomic_dynamodb_writes(stack, DynamoDBBackend)
    try:
        with mock_aws():
            yield
    finally:
        stack.uninstall_all()


def new_ledger() -> DynamoDbLedger:
    return DynamoDbLedger(TABLE, AwsSession(REGION))


class TestDynamoDbLedger(LedgerContract):
    """The shared ledger contract, on one moto table per test."""

    @pytest.fixture
    def make_ledger(self, aws: None) -> Callable[[], Ledger]:
        return new_ledger


@pytest.fixture
def ledger(aws: None) -> Iterator[DynamoDbLedger]:
    with new_ledger() as opened:
        yield opened


# -- the table --------------------------------------------------------------------


def test_the_table_is_created_on_first_use_with_its_index(aws: None) -> None:
    session = AwsSession(REGION)
    DynamoDbLedger(TABLE, session).close()
    DynamoDbLedger(TABLE, session).close()  # the second open finds it

    table = session.client("dynamodb").describe_table(TableName=TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["events_by_run"]
    assert session.calls[("dynamodb", "CreateTable")] == 1


def test_a_table_without_the_event_index_is_refused(aws: None) -> None:
    session = AwsSession(REGION)
    session.client("dynamodb").create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    with pytest.raises(TerminalError, match="no global secondary index events_by_run"):
        DynamoDbLedger(TABLE, session)


def test_every_call_is_counted_by_the_session(aws: None) -> None:
    session = AwsSession(REGION)
    ledger = DynamoDbLedger(TABLE, session)
    ledger.save(pending_run(RunKey("once", "1")))
    ledger.view()

    assert session.calls[("dynamodb", "PutItem")] == 1
    assert session.calls[("dynamodb", "Query")] == 4  # runs, schedules, revisions, capacity


def test_a_closed_ledger_refuses_to_work(ledger: DynamoDbLedger) -> None:
    ledger.close()
    with pytest.raises(TerminalError, match="closed"):
        ledger.view()


def test_a_read_only_ledger_creates_no_table_and_reads_a_missing_one_as_empty(
    aws: None,
) -> None:
    session = AwsSession(REGION)
    ledger = DynamoDbLedger(TABLE, session, read_only=True)

    assert ledger.missing
    view = ledger.view()
    assert (view.runs, view.cron_last_scheduled, view.revisions) == ({}, {}, {})
    assert ledger.events() == []
    assert ledger.events(RunKey("once", "1")) == []
    assert ledger.get(RunKey("once", "1")) is None
    with pytest.raises(TerminalError, match="open read-only"):
        ledger.save(pending_run(RunKey("once", "1")))
    assert session.client("dynamodb").list_tables()["TableNames"] == []
    assert session.calls[("dynamodb", "CreateTable")] == 0


def test_a_read_only_ledger_reads_the_table_and_refuses_writes(aws: None) -> None:
    with new_ledger() as writer:
        run = writer.save(full_run(RunKey("nightly", "1")))
    reader = open_ledger(f"dynamodb://{TABLE}", read_only=True)

    assert not reader.missing
    assert reader.view().runs == {run.key: run}
    with pytest.raises(TerminalError, match="open read-only"):
        reader.append_event(Event(datetime(2026, 3, 1, tzinfo=UTC), None, "Guard", "no"))
    assert reader.events() == []


# -- runs -----------------------------------------------------------------------------


def test_two_ledger_objects_conflict_on_a_stale_version(aws: None) -> None:
    ours, theirs = new_ledger(), new_ledger()
    key = RunKey("nightly", "1")
    stale = ours.save(pending_run(key))
    theirs.save(replace(stale, message="theirs"))

    with pytest.raises(LedgerConflict, match="stored version 2, the record has 1"):
        ours.save(stale.with_attempt(intent(key)))

    loaded = ours.get(key)
    assert loaded is not None
    assert (loaded.message, loaded.version, loaded.attempts) == ("theirs", 2, ())


def test_a_run_too_large_for_one_item_is_refused_before_writing(ledger: DynamoDbLedger) -> None:
    key = RunKey("huge", "1")
    saved = ledger.save(pending_run(key))
    huge = replace(intent(key), request={"overrides": "x" * MAX_ITEM_BYTES})

    with pytest.raises(TerminalError, match=r"above the ledger's limit of 350,000 bytes"):
        ledger.save(saved.with_attempt(huge))

    assert ledger.get(key) == saved


def test_a_run_just_under_the_limit_is_stored(ledger: DynamoDbLedger) -> None:
    key = RunKey("big", "1")
    big = replace(intent(key), request={"overrides": "x" * (MAX_ITEM_BYTES - 2_000)})

    saved = ledger.save(pending_run(key).with_attempt(big))

    assert ledger.get(key) == saved


def test_view_reuses_unchanged_runs_and_rereads_changed_ones(aws: None) -> None:
    ours, theirs = new_ledger(), new_ledger()
    kept = ours.save(full_run(RunKey("nightly", "1")))
    changed = ours.save(full_run(RunKey("nightly", "2")))
    before = ours.view()

    newer = theirs.save(replace(changed, message="saved elsewhere"))
    view = ours.view()

    assert view.runs == {kept.key: kept, newer.key: newer}
    assert view.runs[kept.key] is before.runs[kept.key]  # not decoded again


def test_view_reads_every_page(ledger: DynamoDbLedger) -> None:
    # ~30 KB a run: 60 runs are about two 1 MB Query pages.
    bulky = {"overrides": "x" * 30_000}
    saved = {}
    for i in range(60):
        key = RunKey("bulk", str(i))
        run = ledger.save(pending_run(key).with_attempt(replace(intent(key), request=bulky)))
        saved[key] = run

    assert ledger.view().runs == saved


def test_events_of_a_run_are_read_through_the_index(ledger: DynamoDbLedger) -> None:
    a = RunKey("nightly", "1")
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(250):  # more than one page of the newest
        ledger.append_event(Event(t0 + timedelta(seconds=i), a if i % 2 else None, "Tick", str(i)))

    assert [e.message for e in ledger.events(a, limit=3)] == ["245", "247", "249"]
    assert [e.message for e in ledger.events(limit=150)] == [str(i) for i in range(100, 250)]


# -- open_ledger ----------------------------------------------------------------------


def test_open_ledger_opens_a_dynamodb_table(aws: None) -> None:
    ledger = open_ledger(f"dynamodb://{TABLE}")
    try:
        assert isinstance(ledger, DynamoDbLedger)
        assert ledger.table == TABLE
        assert ledger.save(pending_run(RunKey("once", "1"))).version == 1
    finally:
        ledger.close()


def test_open_ledger_takes_the_region_from_controller_region(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLLER_REGION", "us-west-2")
    open_ledger(f"dynamodb://{TABLE}").close()

    client = AwsSession("us-west-2").client("dynamodb")
    assert TABLE in client.list_tables()["TableNames"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dynamodb://", "not a DynamoDB table name"),
        ("dynamodb://ab", "not a DynamoDB table name"),
        ("dynamodb://jobs/ledger", "not a DynamoDB table name"),
    ],
)
def test_open_ledger_refuses_a_bad_table_name(aws: None, url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        open_ledger(url)


def test_open_ledger_without_a_region_is_a_usage_error(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(UsageError, match="no AWS region"):
        open_ledger(f"dynamodb://{TABLE}")


# -- property: any record round-trips --------------------------------------------------

aware = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=40
)
@given(
    message=st.text(),
    name=st.text(max_size=5),
    run_id=st.text(max_size=5),
    created=aware,
    exit_codes=st.dictionaries(st.text(), st.none() | st.integers(-(2**31), 2**31 - 1)),
)
def test_any_text_and_times_round_trip(
    ledger: DynamoDbLedger,
    message: str,
    name: str,
    run_id: str,
    created: datetime,
    exit_codes: dict[str, int | None],
) -> None:
    key = RunKey(name, run_id)
    stored = ledger.get(key)
    base = full_run(key)
    task = replace(base.attempts[0].tasks[0], exit_codes=exit_codes)
    run = replace(
        base,
        message=message,
        created_at=created,
        attempts=(replace(base.attempts[0], tasks=(task,)), base.attempts[1]),
        version=0 if stored is None else stored.version,
    )

    saved = ledger.save(run)

    assert ledger.get(key) == saved == replace(run, version=run.version + 1)
    assert ledger.view().runs[key] == saved


# -- the lease: pure decisions ----------------------------------------------------------

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def lease(holder: str, renewed: float = 0.0, duration: float = 15.0) -> LeaseRecord:
    at = T0 + timedelta(seconds=renewed)
    return LeaseRecord(holder, at, at, duration)


@pytest.mark.parametrize(
    ("record", "observed", "now", "want"),
    [
        (None, None, 0, Step.ACQUIRE),  # nobody ever held it
        (lease(""), 0, 1, Step.ACQUIRE),  # released
        (lease("me"), 0, 100, Step.RENEW),  # ours, even if late
        (lease("other"), None, 0, Step.STANDBY),  # first sight: the count starts now
        (lease("other"), 0, 14.999, Step.STANDBY),
        (lease("other"), 0, 15, Step.STEAL),  # a whole duration unrenewed, on our clock
        (lease("other", renewed=-3600), 10, 20, Step.STANDBY),  # skewed holder clock: not yet
        (lease("other", duration=5), 0, 5, Step.STEAL),  # the holder's duration counts
    ],
)
def test_lease_decisions(
    record: LeaseRecord | None, observed: float | None, now: float, want: Step
) -> None:
    observed_at = None if observed is None else T0 + timedelta(seconds=observed)
    assert decide(record, observed_at, "me", T0 + timedelta(seconds=now)) == want


def test_lease_settings_refuse_a_renew_deadline_beyond_the_duration() -> None:
    with pytest.raises(ValueError, match="renew deadline < duration"):
        LeaseSettings(duration_seconds=10, renew_deadline_seconds=10)


# -- the lease: elector against a store ---------------------------------------------------


class MemoryLeaseStore:
    """A LeaseStore in memory, with the same conditional writes as the table item."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self._lock = threading.Lock()

    def read(self) -> LeaseRecord | None:
        return self.record

    def create(self, record: LeaseRecord) -> bool:
        with self._lock:
            if self.record is not None:
                return False
            self.record = record
            return True

    def replace(self, expected: LeaseRecord, new: LeaseRecord) -> bool:
        with self._lock:
            current = self.record
            if current is None or (current.holder, current.renewed_at) != (
                expected.holder,
                expected.renewed_at,
            ):
                return False
            self.record = new
            return True


@pytest.fixture(params=["memory", "dynamodb"])
def make_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], LeaseStore]]:
    """A factory of stores that all see one lease (one per elector, as per replica)."""
    if request.param == "memory":
        shared = MemoryLeaseStore()
        yield lambda: shared
        return
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with atomic_mock_aws():
        yield lambda: new_ledger().lease_store()


def elector(store: LeaseStore, name: str, clock: FakeClock) -> LeaderElector:
    return LeaderElector(store, name, clock, LeaseSettings(15, 10, 2))


def test_acquire_renew_and_release(make_store: Callable[[], LeaseStore]) -> None:
    clock = FakeClock(T0)
    store = make_store()
    a = elector(store, "a", clock)

    assert a.try_acquire_or_renew()
    assert a.is_leader()
    clock.advance(8)
    assert a.try_acquire_or_renew()  # renewed: the deadline moves on
    clock.advance(8)
    assert a.is_leader()
    record = store.read()
    assert record is not None
    assert (record.holder, record.acquired_at, record.renewed_at) == (
        "a",
        T0,
        T0 + timedelta(seconds=8),
    )

    a.release()

    assert not a.is_leader()
    released = store.read()
    assert released is not None
    assert released.holder == ""
    b = elector(make_store(), "b", clock)
    assert b.try_acquire_or_renew()  # released: no need to wait for expiry
    taken = store.read()
    assert taken is not None
    assert (taken.holder, taken.transitions) == ("b", 1)


def test_a_holder_stops_leading_at_its_renew_deadline(
    make_store: Callable[[], LeaseStore],
) -> None:
    clock = FakeClock(T0)
    a = elector(make_store(), "a", clock)
    assert a.try_acquire_or_renew()

    clock.advance(9.999)
    assert a.is_leader()
    clock.advance(0.001)
    assert not a.is_leader()  # before anyone could steal it (15 s)


def test_a_standby_steals_only_after_a_whole_unrenewed_duration(
    make_store: Callable[[], LeaseStore],
) -> None:
    clock = FakeClock(T0)
    a, b = elector(make_store(), "a", clock), elector(make_store(), "b", clock)
    assert a.try_acquire_or_renew()

    for _ in range(10):  # a renews every 2 s: b never gets it
        clock.advance(2)
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
        assert b.holder == "a"

    # a dies; b counts 15 s from the last record it saw change.
    clock.advance(2)
    assert not b.try_acquire_or_renew()
    clock.advance(12.999)
    assert not b.try_acquire_or_renew()
    clock.advance(0.001)
    assert b.try_acquire_or_renew()
    assert b.is_leader()

    # a comes back: it sees b's record and stands by.
    assert not a.try_acquire_or_renew()
    assert not a.is_leader()
    assert a.holder == "b"
    a.release()  # not ours: releasing changes nothing
    assert b.try_acquire_or_renew()


def test_two_contenders_racing_get_exactly_one_leader(
    make_store: Callable[[], LeaseStore],
) -> None:
    clock = FakeClock(T0)
    contenders = [elector(make_store(), name, clock) for name in ("a", "b", "c")]
    barrier = threading.Barrier(len(contenders))
    won: list[str] = []

    def contend(e: LeaderElector) -> None:
        barrier.wait()
        if e.try_acquire_or_renew():
            won.append(e.identity)

    threads = [threading.Thread(target=contend, args=(e,)) for e in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1
    assert [e.identity for e in contenders if e.is_leader()] == won
    record = contenders[0].store.read()
    assert record is not None
    assert record.holder == won[0]


def test_two_electors_stealing_an_expired_lease_at_once_get_one_leader(
    make_store: Callable[[], LeaseStore],
) -> None:
    clock = FakeClock(T0)
    dead = elector(make_store(), "dead", clock)
    b, c = elector(make_store(), "b", clock), elector(make_store(), "c", clock)
    assert dead.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert not c.try_acquire_or_renew()
    clock.advance(15)

    expired = b.store.read()
    assert expired is not None

    assert b.try_acquire_or_renew()
    # c decided on the same expired record: its conditional write must fail...
    late = LeaseRecord("c", clock.now(), clock.now(), 15.0, expired.transitions + 1)
    assert not c.store.replace(expired, late)
    # ...and on its own next try it reads b's record and stands by.
    assert not c.try_acquire_or_renew()
    assert c.holder == "b"
    assert b.is_leader()
    assert not c.is_leader()


def test_runs_survive_alongside_the_lease_item(ledger: DynamoDbLedger) -> None:
    # The lease item shares the table; it must not show up as a run or break a view.
    clock = FakeClock(T0)
    assert elector(ledger.lease_store(), "a", clock).try_acquire_or_renew()
    run = ledger.save(pending_run(RunKey("once", "1")))

    assert ledger.view().runs == {run.key: run}


# -- end to end: the real CLI on the sandbox ----------------------------------------------


@pytest.fixture(scope="module")
def sandbox_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def module_sandbox(sandbox_clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(sandbox_clock) as sandbox:
        yield sandbox


@dataclass
class DynamoDbWorld(World):
    """The e2e World with its ledger in the sandbox's DynamoDB table."""

    @property
    def state(self) -> str:
        return "dynamodb://ledger-e2e"


@pytest.mark.e2e
def test_the_cli_reconciles_into_dynamodb_and_status_reads_it_back(
    module_sandbox: Sandbox, sandbox_clock: FakeClock, tmp_path: Path
) -> None:
    module_sandbox.reset()
    module_sandbox.create_cluster("batch")
    module_sandbox.add_container_instances("batch", 2, cpu=2048, memory=4096)
    (tmp_path / "manifests").mkdir()
    world = DynamoDbWorld(sandbox=module_sandbox, clock=sandbox_clock, root=tmp_path)
    world.write("a.yaml", job("nightly", duration=30))

    first = world.reconcile()
    assert first.returncode == 0, first.stderr
    run = world.run("nightly")
    assert (run["phase"], len(run["attempts"])) == ("Pending", 1)

    world.clock.advance(5)
    assert world.reconcile().returncode == 0
    world.clock.advance(30)
    assert world.reconcile().returncode == 0
    run = world.run("nightly")
    assert (run["phase"], run["reason"]) == ("Succeeded", "Completed")
    assert run["attempts"][0]["exitCodes"] == {"app": 0}
    assert len(world.all_tasks()) == 1  # three passes, one task
    tables = module_sandbox.client("dynamodb", counted=False).list_tables()["TableNames"]
    assert "ledger-e2e" in tables
    assert not (tmp_path / "state.db").exists()


def test_the_keeper_reports_leadership_changes(make_store: Callable[[], LeaseStore]) -> None:
    clock = FakeClock(T0)
    holder = elector(make_store(), "a", clock)
    assert holder.try_acquire_or_renew()
    changes: list[bool] = []
    keeper = LeaseKeeper(elector(make_store(), "b", clock), changes.append)

    assert not keeper.step()  # first try: standing by is reported too
    clock.advance(2)
    keeper.step()
    assert changes == [False]
    clock.advance(15)  # a stopped renewing
    assert keeper.step()
    assert keeper.leading
    assert changes == [False, True]

    keeper.stop()  # releases

    assert not keeper.leading
    record = keeper.elector.store.read()
    assert record is not None
    assert record.holder == ""


def test_a_run_item_written_before_origins_and_cancel_requests_reads_as_a_manifest_run() -> None:
    """Items an older controller wrote have neither key in their body: the defaults apply."""
    run = replace(full_run(RunKey("nightly", "1")), version=3)
    body = dynamodb._encode_run(run)
    del body["origin"], body["cancel"]
    item = {"name": "nightly", "run_id": "1", "version": 3, "body": json.dumps(body)}

    decoded = dynamodb._decode_run(item)

    assert decoded == replace(run, origin=RunOrigin.MANIFEST, cancel=None)
