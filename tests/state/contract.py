"""The contract every ledger passes (DESIGN.md §9), whatever stores it.

The start protocol's exactly-once promise rests on these properties, not on
any one database: a run saved is read back unchanged, a stale or duplicate
save is refused, two ledgers racing for one attempt never both win, and all
of it survives a restart. Subclass `LedgerContract` and override `make_ledger`
with a factory that opens one more ledger on one fresh store per test:

    class TestSqliteLedger(LedgerContract):
        @pytest.fixture
        def make_ledger(self, tmp_path: Path) -> Callable[[], Ledger]:
            return lambda: SqliteLedger(tmp_path / "state.db")

The suite closes every ledger it opened; `close` must be harmless to repeat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.model.capacity import GroupReport, IdleInstance
from controller.model.identity import client_token
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
from controller.state.ledger import (
    CronSchedule,
    GuardWarning,
    Ledger,
    LedgerConflict,
    LedgerView,
    ManifestError,
    PassSummary,
)

T0 = datetime(2026, 3, 1, 2, 3, 4, 567890, tzinfo=UTC)
OWNER = "contract"
TOPIC = "arn:aws:sns:eu-west-1:1:ops"


def at(seconds: float) -> datetime:
    """T0 plus `seconds`: readable offsets in test data."""
    return T0 + timedelta(seconds=seconds)


def pending_run(key: RunKey, kind: Kind = Kind.JOB_RUN) -> RunRecord:
    """A run as the planner first records it: no attempts, most fields unset."""
    return RunRecord(
        key=key,
        kind=kind,
        phase=Phase.PENDING,
        reason=Reason.WAITING,
        message="",
        created_at=T0,
        updated_at=T0,
        spec_digest="d" * 64,
    )


def intent(key: RunKey, number: int = 1) -> AttemptRecord:
    """An attempt as step 1 of the start protocol records it: before RunTask."""
    return AttemptRecord(
        number=number,
        client_token=client_token(OWNER, key, number),
        task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/etl:7",
        request={"cluster": "batch", "count": 1, "startedBy": f"ejc/{OWNER}"},
        intent_at=at(number),
    )


def full_run(key: RunKey) -> RunRecord:
    """A run that uses every field: two attempts, tasks, Nones, empties and unicode."""
    failed = AttemptRecord(
        number=1,
        client_token=client_token(OWNER, key, 1),
        task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/etl:7",
        request={
            "cluster": "batch",
            "taskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/etl:7",
            "count": 2,
            "overrides": {"containerOverrides": [{"name": "main", "command": ["run", "--día"]}]},
            "tags": [{"key": "ecs-job-controller/attempt", "value": "1"}],
            "enableExecuteCommand": False,
            "ratio": 0.25,
            "nothing": None,
        },
        intent_at=at(0.000001),
        tasks=(
            TaskRecord(
                arn="arn:aws:ecs:eu-west-1:123456789012:task/batch/aaaa",
                last_status="STOPPED",
                exit_codes={"main": 3, "sidecar": None, "log-router": 0},
                stop_code="EssentialContainerExited",
                stopped_reason="Essential container in task exited",
                started_at=at(10.5),
                stopped_at=at(70.999999),
            ),
            TaskRecord(
                arn="arn:aws:ecs:eu-west-1:123456789012:task/batch/bbbb",
                last_status="STOPPED",
                missing=True,
            ),
        ),
        submitted=True,
        outcome=AttemptOutcome.APPLICATION_FAILURE,
        message="main exited 3 — «ünïcödé» 🚀",
        finished_at=at(71),
    )
    running = AttemptRecord(
        number=2,
        client_token=client_token(OWNER, key, 2),
        task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/etl:7",
        request={},
        intent_at=at(100),
        tasks=(TaskRecord(arn="arn:aws:ecs:eu-west-1:123456789012:task/batch/cccc"),),
        submitted=True,
        placement_failures=("RESOURCE:MEMORY", "AGENT"),
    )
    return RunRecord(
        key=key,
        kind=Kind.CRON_JOB,
        phase=Phase.RUNNING,
        reason=Reason.RUNNING,
        message="attempt 2 of 3\nsecond line\ttab",
        created_at=at(-1),
        updated_at=at(100.000001),
        spec_digest="e" * 64,
        frozen_spec={"cluster": "batch", "count": 2, "taskDefinition": {"family": "etl"}},
        task_definition_arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/etl:7",
        attempts=(failed, running),
        not_before=at(90),
        pending_since=at(95),
        finished_at=None,
        origin=RunOrigin.MANUAL,
        cancel=CancelRequest(by="ana@ci-runner-7", reason="wrong «month» 🚀", at=at(101)),
    )


def busy_pass_summary() -> PassSummary:
    """A pass summary that uses every field, with unicode and several of each."""
    return PassSummary(
        at=at(30.000001),
        revision="0123456789abcdef0123456789abcdef01234567",
        invalid=(
            ManifestError("jobs/bad.yaml", 8, "/spec/backofLimit: unknown field — «typo»"),
            ManifestError("jobs/worse.yaml", 1, "not UTF-8"),
        ),
        warnings=(
            GuardWarning("the source is empty: nothing orphaned", at(10)),
            GuardWarning("2 of 3 known manifests would be orphaned", at(30.000001)),
        ),
        cron_jobs=(
            CronSchedule("nightly", "30 3 * * *", "Asia/Tokyo", False, "Forbid", 3, 1),
            CronSchedule("hourly", "@hourly", "UTC", True, "Replace", 0, 50),
        ),
        capacity_groups=(
            GroupReport(
                name="batch-asg",
                min_size=1,
                max_size=10,
                desired=4,
                instances=4,
                idle=("i-0aaa", "i-0bbb"),
                draining=("i-0aaa",),
                next_release="i-0aaa",
                next_release_at=at(40.5),
                message="terminate i-0aaa (drained, still empty)",
            ),
            GroupReport("other-asg", 0, 3, 0, 0, message="at MinSize 0: nothing to release"),
        ),
    )


class LedgerContract:
    """Tests every Ledger implementation must pass; subclasses provide `make_ledger`."""

    @pytest.fixture
    def make_ledger(self) -> Callable[[], Ledger]:
        """Return a factory opening a new ledger on this test's store (override me)."""
        raise NotImplementedError("a LedgerContract subclass must override make_ledger")

    @pytest.fixture
    def reopen(self, make_ledger: Callable[[], Ledger]) -> Iterator[Callable[[], Ledger]]:
        """Open one more ledger on the same store; every one is closed at teardown."""
        opened: list[Ledger] = []

        def open_one() -> Ledger:
            ledger = make_ledger()
            opened.append(ledger)
            return ledger

        yield open_one
        for ledger in opened:
            ledger.close()

    @pytest.fixture
    def ledger(self, reopen: Callable[[], Ledger]) -> Ledger:
        """The ledger most tests use."""
        return reopen()

    # -- runs: round trip ---------------------------------------------------

    def test_unknown_run_is_none(self, ledger: Ledger) -> None:
        assert ledger.get(RunKey("nightly", "nope")) is None

    def test_empty_ledger_has_an_empty_view(self, ledger: Ledger) -> None:
        assert ledger.view() == LedgerView()

    def test_every_field_round_trips(self, ledger: Ledger) -> None:
        run = full_run(RunKey("nightly", "20260301T0200Z"))

        saved = ledger.save(run)

        assert saved == replace(run, version=1)
        assert ledger.get(run.key) == saved

    def test_minimal_run_round_trips_with_its_nones_and_empties(self, ledger: Ledger) -> None:
        run = pending_run(RunKey("once", "1"))

        saved = ledger.save(run)
        loaded = ledger.get(run.key)

        assert loaded == saved == replace(run, version=1)
        assert loaded is not None
        assert loaded.attempts == ()
        assert loaded.frozen_spec is None

    def test_datetimes_come_back_timezone_aware_utc_to_the_microsecond(
        self, ledger: Ledger
    ) -> None:
        # Saved in UTC+05:30, read back in UTC: the same instant.
        india = timezone(timedelta(hours=5, minutes=30))
        created = datetime(2026, 3, 1, 7, 33, 4, 1, tzinfo=india)
        run = replace(pending_run(RunKey("tz", "1")), created_at=created, updated_at=created)

        ledger.save(run)
        loaded = ledger.get(run.key)

        assert loaded is not None
        assert loaded.created_at == created
        assert loaded.created_at.utcoffset() == timedelta(0)
        assert loaded.created_at.microsecond == 1

    def test_exit_codes_keep_none_and_container_order(self, ledger: Ledger) -> None:
        key = RunKey("codes", "1")
        task = TaskRecord(arn="arn:task/1", exit_codes={"z": None, "a": 0, "m": -1})
        attempt = replace(intent(key), tasks=(task,))
        ledger.save(pending_run(key).with_attempt(attempt))

        loaded = ledger.get(key)

        assert loaded is not None
        codes = loaded.attempts[0].tasks[0].exit_codes
        assert codes == {"z": None, "a": 0, "m": -1}
        assert list(codes) == ["z", "a", "m"]

    def test_a_naive_datetime_is_refused(self, ledger: Ledger) -> None:
        # A naive datetime names no instant; storing it would shift deadlines.
        naive = replace(pending_run(RunKey("naive", "1")), created_at=datetime(2026, 1, 1))

        with pytest.raises(ValueError, match="naive"):
            ledger.save(naive)
        assert ledger.get(naive.key) is None

    def test_saving_replaces_attempts_and_tasks_whole(self, ledger: Ledger) -> None:
        run = ledger.save(full_run(RunKey("nightly", "1")))
        fewer = replace(run, attempts=(replace(run.attempts[0], tasks=()),))

        saved = ledger.save(fewer)

        assert ledger.get(run.key) == saved
        assert saved.attempts[0].tasks == ()

    def test_runs_are_kept_apart_by_name_and_run_id(self, ledger: Ledger) -> None:
        # Same run id under two names, and two run ids under one name.
        keys = [RunKey("a", "1"), RunKey("b", "1"), RunKey("a", "2")]
        for key in keys:
            ledger.save(pending_run(key).with_attempt(intent(key)))

        for key in keys:
            loaded = ledger.get(key)
            assert loaded is not None
            assert loaded.key == key
            assert loaded.attempts[0].client_token == client_token(OWNER, key, 1)

    def test_an_indexed_run_and_its_indexes_are_kept_apart_and_read_back_by_key(
        self, ledger: Ledger
    ) -> None:
        run = RunKey("backfill", "2025")
        keys = [run, run.of_index(0), run.of_index(1), run.of_index(10), RunKey("backfill", "2026")]
        for key in keys:
            ledger.save(pending_run(key).with_attempt(intent(key)))
        view = ledger.view()
        assert sorted(view.runs) == sorted(keys)
        for key in keys:
            loaded = ledger.get(key)
            assert loaded is not None
            assert loaded.key == key
            assert loaded.attempts[0].client_token == client_token(OWNER, key, 1)
        assert sorted(view.indexes_of(run)) == [0, 1, 10]
        assert sorted(r.key for r in view.runs_of("backfill")) == [run, RunKey("backfill", "2026")]
        ledger.append_event(Event(at(1), run.of_index(10), "Started", "index 10"))
        assert [e.run for e in ledger.events(run.of_index(10))] == [run.of_index(10)]
        assert ledger.events(run) == []

    # -- runs: optimistic concurrency ---------------------------------------

    def test_versions_count_saves(self, ledger: Ledger) -> None:
        run = pending_run(RunKey("once", "1"))

        first = ledger.save(run)
        second = ledger.save(replace(first, message="again"))

        assert (first.version, second.version) == (1, 2)
        assert ledger.get(run.key) == second

    def test_saving_a_new_run_twice_conflicts(self, ledger: Ledger) -> None:
        run = pending_run(RunKey("once", "1"))
        ledger.save(run)

        with pytest.raises(LedgerConflict):
            ledger.save(replace(run, message="second writer"))

        assert ledger.get(run.key) == replace(run, version=1)

    def test_a_stale_version_conflicts_and_changes_nothing(self, ledger: Ledger) -> None:
        stale = ledger.save(pending_run(RunKey("once", "1")))
        fresh = ledger.save(replace(stale, message="someone else"))

        with pytest.raises(LedgerConflict):
            ledger.save(stale.with_attempt(intent(stale.key)))

        assert ledger.get(stale.key) == fresh
        # Re-read and re-plan: the fresh version is accepted.
        newer = ledger.save(fresh.with_attempt(intent(fresh.key)))
        assert newer.version == 3
        assert ledger.get(fresh.key) == newer

    @pytest.mark.parametrize("version", [-1, 1, 2, 7])
    def test_a_version_for_a_run_not_stored_conflicts(self, ledger: Ledger, version: int) -> None:
        run = replace(pending_run(RunKey("once", "1")), version=version)

        with pytest.raises(LedgerConflict):
            ledger.save(run)

        assert ledger.get(run.key) is None

    @pytest.mark.parametrize("version", [-1, 0, 2, 7])
    def test_a_version_other_than_the_stored_one_conflicts(
        self, ledger: Ledger, version: int
    ) -> None:
        saved = ledger.save(pending_run(RunKey("once", "1")))  # version 1

        with pytest.raises(LedgerConflict):
            ledger.save(replace(saved, message="bad", version=version))

        assert ledger.get(saved.key) == saved

    def test_two_ledgers_claiming_one_attempt_in_turn(self, reopen: Callable[[], Ledger]) -> None:
        key = RunKey("nightly", "20260301T0200Z")
        first, second = reopen(), reopen()
        # Both read "no run yet", both plan attempt 1.
        assert first.get(key) is None
        assert second.get(key) is None

        won = first.save(pending_run(key).with_attempt(intent(key)))
        with pytest.raises(LedgerConflict):
            second.save(replace(pending_run(key), message="b").with_attempt(intent(key)))

        assert second.get(key) == won

    def test_two_ledgers_racing_for_one_attempt_exactly_one_wins(
        self, reopen: Callable[[], Ledger]
    ) -> None:
        ledgers = (reopen(), reopen())
        # Several rounds, as a single race may happen not to overlap.
        for round_ in range(20):
            key = RunKey("race", str(round_))
            # Even rounds race to create the run, odd ones to update a stored run.
            base = pending_run(key)
            if round_ % 2:
                base = ledgers[0].save(base)
            outcomes = self._race(ledgers, base)

            winners = [o for o in outcomes if isinstance(o, RunRecord)]
            losers = [o for o in outcomes if isinstance(o, LedgerConflict)]
            assert len(winners) == 1, outcomes
            assert len(losers) == 1, outcomes
            assert ledgers[0].get(key) == winners[0]
            assert ledgers[1].get(key) == winners[0]

    def test_two_workers_on_one_ledger_racing_for_one_attempt_exactly_one_wins(
        self, ledger: Ledger
    ) -> None:
        # The executor's workers share the pass's one ledger object.
        for round_ in range(20):
            key = RunKey("shared", str(round_))
            base = pending_run(key)
            if round_ % 2:
                base = ledger.save(base)
            outcomes = self._race((ledger, ledger), base)
            winners = [o for o in outcomes if isinstance(o, RunRecord)]
            assert len(winners) == 1, outcomes
            assert ledger.get(key) == winners[0]

    def test_workers_saving_different_runs_at_once_all_land(self, ledger: Ledger) -> None:
        keys = [RunKey(f"w{i}", "1") for i in range(16)]
        barrier = threading.Barrier(len(keys))
        errors: list[BaseException] = []

        def save(key: RunKey) -> None:
            barrier.wait()
            try:
                for _ in range(3):
                    stored = ledger.get(key)
                    ledger.save(stored if stored is not None else pending_run(key))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(k,)) for k in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert {k: r.version for k, r in ledger.view().runs.items()} == dict.fromkeys(keys, 3)

    @staticmethod
    def _race(ledgers: tuple[Ledger, Ledger], base: RunRecord) -> list[object]:
        """Save two different attempt-1 intents of `base` at once, one per ledger."""
        barrier = threading.Barrier(len(ledgers))
        outcomes: list[object] = [None] * len(ledgers)

        def claim(index: int) -> None:
            mine = replace(base, message=f"claimed by {index}").with_attempt(intent(base.key))
            barrier.wait()  # both have read the same version; now both write
            try:
                outcomes[index] = ledgers[index].save(mine)
            except LedgerConflict as conflict:
                outcomes[index] = conflict

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(ledgers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes

    # -- view ---------------------------------------------------------------

    def test_view_holds_every_run_schedule_and_revision(self, ledger: Ledger) -> None:
        runs = [
            ledger.save(full_run(RunKey("nightly", "20260301T0200Z"))),
            ledger.save(pending_run(RunKey("nightly", "20260302T0200Z"), Kind.CRON_JOB)),
            ledger.save(pending_run(RunKey("once", "1"))),
        ]
        ledger.set_cron_last_scheduled("nightly", at(0))
        ledger.set_cron_last_scheduled("hourly", at(3600.000001))
        ledger.set_cron_last_scheduled("nightly", at(86400))  # moves on
        revision = RevisionRecord(
            arn="arn:aws:ecs:eu-west-1:123456789012:task-definition/etl:7",
            family="etl",
            revision=7,
            spec_hash="f" * 64,
            owner=None,
            tagged_hash="e" * 64,
        )
        ledger.put_revision(revision)

        view = ledger.view()

        assert view.runs == {run.key: run for run in runs}
        assert view.cron_last_scheduled == {"nightly": at(86400), "hourly": at(3600.000001)}
        assert view.revisions == {revision.arn: revision}
        assert [r.key.run_id for r in view.runs_of("nightly")] == [
            "20260301T0200Z",
            "20260302T0200Z",
        ]

    # -- revisions ----------------------------------------------------------

    def test_revisions_are_put_replaced_and_forgotten(self, ledger: Ledger) -> None:
        etl7 = RevisionRecord("arn:td/etl:7", "etl", 7, "a" * 64, "team-a")
        etl8 = RevisionRecord("arn:td/etl:8", "etl", 8, "b" * 64, None, "ACTIVE")
        ledger.put_revision(etl7)
        ledger.put_revision(etl8)
        inactive = replace(etl7, status="INACTIVE")
        ledger.put_revision(inactive)

        assert ledger.view().revisions == {etl7.arn: inactive, etl8.arn: etl8}

        ledger.forget_revision(etl7.arn)
        ledger.forget_revision("arn:td/never-seen:1")  # harmless

        assert ledger.view().revisions == {etl8.arn: etl8}

    # -- events -------------------------------------------------------------

    def test_events_read_back_in_order_filtered_and_limited(self, ledger: Ledger) -> None:
        a, b = RunKey("nightly", "1"), RunKey("nightly", "2")
        log = [
            Event(at(0), a, "Created", "run created"),
            Event(at(1), None, "PassFailed", "ListTasks throttled — «retrying»"),
            Event(at(2), b, "Created", "run created"),
            # Appended out of time order: the log keeps append order.
            Event(at(1.5), a, "Started", "task arn:task/1"),
            Event(at(3.000001), a, "Succeeded", "exit 0"),
        ]
        for event in log:
            ledger.append_event(event)

        assert ledger.events() == log
        assert ledger.events(a) == [log[0], log[3], log[4]]
        assert ledger.events(b) == [log[2]]
        assert ledger.events(RunKey("nightly", "3")) == []
        assert ledger.events(limit=2) == log[-2:]
        assert ledger.events(a, limit=2) == [log[3], log[4]]
        assert ledger.events(limit=0) == []
        assert ledger.events(limit=1000) == log

    def test_events_default_to_the_newest_hundred(self, ledger: Ledger) -> None:
        log = [Event(at(i), None, "Tick", str(i)) for i in range(105)]
        for event in log:
            ledger.append_event(event)

        assert ledger.events() == log[5:]

    # -- the pass summary ---------------------------------------------------

    def test_there_is_no_pass_summary_before_the_first_pass(self, ledger: Ledger) -> None:
        assert ledger.pass_summary() is None

    def test_the_pass_summary_round_trips_and_is_replaced_whole(self, ledger: Ledger) -> None:
        busy = busy_pass_summary()
        ledger.record_pass_summary(busy)
        assert ledger.pass_summary() == busy

        healthy = PassSummary(at=at(90), revision="next")
        ledger.record_pass_summary(healthy)

        # Nothing of the previous summary lingers: not its invalid manifests,
        # warnings or CronJobs.
        assert ledger.pass_summary() == healthy
        assert ledger.view().runs == {}  # and it is no run

    def test_the_pass_summary_survives_close_and_reopen(self, reopen: Callable[[], Ledger]) -> None:
        before = reopen()
        before.record_pass_summary(busy_pass_summary())
        before.close()

        assert reopen().pass_summary() == busy_pass_summary()

    # -- scale-in: idle clocks and scale-outs ---------------------------------

    def test_idle_instances_are_put_replaced_and_forgotten(self, ledger: Ledger) -> None:
        idle = IdleInstance("i-0aaa", "batch-asg", "batch", at(10.000001))
        other = IdleInstance("i-0bbb", "other-asg", "etl", at(20))
        ledger.put_idle_instance(idle)
        ledger.put_idle_instance(other)
        assert ledger.view().idle_instances == {"i-0aaa": idle, "i-0bbb": other}

        # The drain decision replaces the record; the idle clock is kept as given.
        draining = replace(idle, draining_since=at(700))
        ledger.put_idle_instance(draining)
        assert ledger.view().idle_instances == {"i-0aaa": draining, "i-0bbb": other}

        ledger.forget_idle_instance("i-0aaa")
        ledger.forget_idle_instance("i-unknown")  # forgetting an unknown one does nothing
        assert ledger.view().idle_instances == {"i-0bbb": other}
        assert ledger.view().runs == {}  # and they are no runs

    def test_idle_clock_times_keep_the_microsecond_and_come_back_utc(self, ledger: Ledger) -> None:
        tokyo = timezone(timedelta(hours=9))
        ledger.put_idle_instance(
            IdleInstance("i-0aaa", "g", "c", at(1.5).astimezone(tokyo), at(2.000001))
        )
        stored = ledger.view().idle_instances["i-0aaa"]
        assert stored.idle_since == at(1.5)
        assert stored.idle_since.utcoffset() == timedelta(0)
        assert stored.draining_since == at(2.000001)

    def test_the_last_scale_out_of_each_group_is_kept(self, ledger: Ledger) -> None:
        ledger.record_scale_out("batch-asg", at(5))
        ledger.record_scale_out("other-asg", at(6))
        ledger.record_scale_out("batch-asg", at(300))
        assert ledger.view().scale_outs == {"batch-asg": at(300), "other-asg": at(6)}

    def test_idle_clocks_and_scale_outs_survive_close_and_reopen(
        self, reopen: Callable[[], Ledger]
    ) -> None:
        # A restart neither resets nor skips an idle clock.
        before = reopen()
        before.put_idle_instance(IdleInstance("i-0aaa", "batch-asg", "batch", at(10), at(620)))
        before.record_scale_out("batch-asg", at(1))
        before.close()

        view = reopen().view()
        assert view.idle_instances == {
            "i-0aaa": IdleInstance("i-0aaa", "batch-asg", "batch", at(10), at(620))
        }
        assert view.scale_outs == {"batch-asg": at(1)}

    # -- durability ---------------------------------------------------------

    def test_everything_survives_close_and_reopen(self, reopen: Callable[[], Ledger]) -> None:
        before = reopen()
        run = before.save(full_run(RunKey("nightly", "1")))
        before.set_cron_last_scheduled("nightly", at(60))
        before.put_revision(RevisionRecord("arn:td/etl:7", "etl", 7, "a" * 64, "me"))
        before.append_event(Event(at(1), run.key, "Started", "attempt 1"))
        before.put_idle_instance(IdleInstance("i-0aaa", "batch-asg", "batch", at(3)))
        before.record_scale_out("batch-asg", at(2))
        view, events = before.view(), before.events()
        before.close()
        before.close()  # closing twice is harmless

        after = reopen()

        assert after.view() == view
        assert after.events() == events
        assert after.get(run.key) == run
        # ...and the restarted controller carries on from the stored version.
        assert after.save(replace(run, message="after restart")).version == 2

    # -- notifications ------------------------------------------------------

    def test_a_notification_goes_from_intent_to_published(self, ledger: Ledger) -> None:
        key = RunKey("nightly", "1")
        record = NotificationRecord("n" * 64, key, TOPIC, Phase.FAILED, at(5))
        assert ledger.notifications() == {}

        ledger.record_notification_intent(record)
        assert ledger.notifications() == {record.notification_id: record}
        assert not ledger.notifications()[record.notification_id].published

        ledger.record_notification_published(record.notification_id, "msg-1", at(6))
        stored = ledger.notifications()[record.notification_id]
        assert stored == replace(record, message_id="msg-1", published_at=at(6))
        assert stored.published

    def test_a_second_intent_keeps_the_first_record(self, ledger: Ledger) -> None:
        key = RunKey("nightly", "1")
        first = NotificationRecord("a" * 64, key, TOPIC, Phase.FAILED, at(5))
        ledger.record_notification_intent(first)
        ledger.record_notification_published(first.notification_id, "msg-1", at(6))

        # A sweep that raced (or repeated) step 1 must not undo step 3.
        ledger.record_notification_intent(replace(first, intent_at=at(9)))

        assert ledger.notifications()[first.notification_id].message_id == "msg-1"
        assert ledger.notifications()[first.notification_id].intent_at == at(5)

    def test_a_watermark_keeps_its_first_instant(self, ledger: Ledger) -> None:
        ledger.set_notify_watermark("*", TOPIC, at(1))
        ledger.set_notify_watermark("*", TOPIC, at(50))
        ledger.set_notify_watermark("nightly", TOPIC, at(2))

        assert ledger.notify_watermarks() == {
            ("*", TOPIC): at(1),
            ("nightly", TOPIC): at(2),
        }

    def test_notifications_survive_close_and_reopen(self, reopen: Callable[[], Ledger]) -> None:
        before = reopen()
        key = RunKey("nightly", "1")
        record = NotificationRecord("b" * 64, key, TOPIC, Phase.FAILED, at(5))
        before.record_notification_intent(record)
        before.set_notify_watermark("*", TOPIC, at(1))
        before.close()

        after = reopen()

        assert after.notifications() == {record.notification_id: record}
        assert after.notify_watermarks() == {("*", TOPIC): at(1)}
