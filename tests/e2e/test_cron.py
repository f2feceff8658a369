"""CronJobs through the CLI on the sandbox: occurrences, Forbid, downtime, status."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, cron_job

pytestmark = pytest.mark.e2e


def cron(name: str, *, schedule: str = "* * * * *", extra: str = "", duration: int = 600) -> str:
    return cron_job(name, schedule=schedule, extra=extra, duration=duration)


def at_minute(world: World, seconds_past: int) -> None:
    """Move the clock to `seconds_past` seconds after the next whole minute."""
    now = world.clock.now()
    delta = 60 - now.second - now.microsecond / 1e6 + seconds_past
    world.clock.advance(delta)


def test_every_minute_starts_each_occurrence_once(world: World) -> None:
    world.write("c.yaml", cron("tick", duration=10, extra="  concurrencyPolicy: Allow\n"))
    at_minute(world, 30)
    world.reconcile()  # first sight: nothing before now counts
    assert world.status()["runs"] == []
    for _ in range(3):
        at_minute(world, 2)
        done = world.reconcile()
        assert done.returncode == 0, done.stderr
        world.reconcile()  # a second pass in the same minute starts nothing more
    runs = world.status()["runs"]
    assert len(runs) == 3
    assert all(r["kind"] == "CronJob" for r in runs)
    assert len(world.all_tasks()) == 3
    assert all(len(r["runId"]) == len("20260101T0001Z") and r["runId"].endswith("Z") for r in runs)


def test_forbid_records_the_occurrence_as_missed_while_one_runs(world: World) -> None:
    world.write("c.yaml", cron("long", duration=3600))
    at_minute(world, 30)
    world.reconcile()
    at_minute(world, 2)
    world.reconcile()
    at_minute(world, 2)
    world.reconcile()
    runs = {r["runId"]: r for r in world.status()["runs"]}
    first, second = sorted(runs)
    assert runs[first]["phase"] in ("Pending", "Running")  # still going
    assert (runs[second]["phase"], runs[second]["reason"]) == ("Failed", "Missed")
    missed = next(r for r in runs.values() if r["reason"] == "Missed")
    assert "concurrencyPolicy Forbid" in missed["message"]
    assert len(world.all_tasks()) == 1


def test_three_hours_down_with_a_ten_minute_deadline_starts_only_the_latest(world: World) -> None:
    extra = "  startingDeadlineSeconds: 600\n  concurrencyPolicy: Allow\n"
    limits = "  failedRunsHistoryLimit: 50\n"
    world.write("c.yaml", cron("sync", schedule="*/10 * * * *", extra=extra + limits, duration=60))
    at_minute(world, 30)
    world.reconcile()
    world.clock.advance(3 * 3600)
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    runs = world.status()["runs"]
    started = [r for r in runs if r["attempts"]]
    missed = [r for r in runs if r["reason"] == "Missed"]
    assert len(started) == 1
    assert len(missed) == 17  # 18 occurrences in 3 h, the latest started
    assert max(r["runId"] for r in runs) == started[0]["runId"]
    assert len(world.all_tasks()) == 1
    # The ledger keeps every Missed run; the default history limit shows 3.
    world.write("c.yaml", cron("sync", schedule="*/10 * * * *", extra=extra, duration=60))
    assert len([r for r in world.status()["runs"] if r["reason"] == "Missed"]) == 3


def test_status_names_the_next_occurrence_in_the_time_zone(world: World) -> None:
    extra = "  timeZone: Asia/Tokyo\n"
    world.write("c.yaml", cron("nightly", schedule="30 3 * * *", extra=extra))
    shown = world.cli("status", "nightly")
    assert shown.returncode == 0, shown.stderr
    assert "CronJob nightly: '30 3 * * *' in Asia/Tokyo, next run at " in shown.stdout
    assert "T18:30:00Z" in shown.stdout  # 03:30 in Tokyo is 18:30 UTC


def test_forbid_starts_the_next_occurrence_once_the_previous_one_finished(world: World) -> None:
    """A 2 s task of an every-minute Forbid CronJob: every occurrence runs, none is Missed.

    The task stops between two passes; the pass after the next occurrence's
    time sees it finished and must start that occurrence, not call it Missed
    because the ledger still said Running.
    """
    world.write("c.yaml", cron("berlin-tick", duration=2))
    at_minute(world, 30)
    world.reconcile()  # first sight
    for _ in range(3):
        at_minute(world, 0)
        done = world.reconcile()
        assert done.returncode == 0, done.stderr
    runs = sorted(world.status()["runs"], key=lambda r: r["runId"])
    assert [(r["phase"], r["reason"]) for r in runs[:2]] == [("Succeeded", "Completed")] * 2
    assert len(runs) == 3
    assert runs[2]["attempts"]  # the newest one started
    assert not [r for r in runs if r["reason"] == "Missed"]
    assert len(world.all_tasks()) == 3


def test_replace_stops_the_running_occurrence_and_says_what_replaced_it(world: World) -> None:
    world.write("c.yaml", cron("swap", duration=3600, extra="  concurrencyPolicy: Replace\n"))
    at_minute(world, 30)
    world.reconcile()
    at_minute(world, 2)
    world.reconcile()
    at_minute(world, 2)
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    old, new = sorted(world.status()["runs"], key=lambda r: r["runId"])
    why = f"concurrencyPolicy Replace: replaced by swap/{new['runId']}"
    assert (old["phase"], old["reason"], old["message"]) == ("Failed", "Cancelled", why)
    assert "--stop-orphans" not in done.stdout
    assert new["attempts"]
    ecs = world.sandbox.client("ecs")
    described = ecs.describe_tasks(cluster="batch", tasks=old["attempts"][0]["taskArns"])
    assert described["tasks"][0]["stoppedReason"] == f"ecs-job-controller: {why}"


def test_replace_leaves_an_occurrence_that_finished_alone(world: World) -> None:
    world.write("c.yaml", cron("swap", duration=2, extra="  concurrencyPolicy: Replace\n"))
    at_minute(world, 30)
    world.reconcile()
    at_minute(world, 2)
    world.reconcile()
    at_minute(world, 2)
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    assert "StopTask" not in done.stdout
    assert "; stop " not in done.stdout  # nor does the schedule decision say it stops one
    old, new = sorted(world.status()["runs"], key=lambda r: r["runId"])
    assert (old["phase"], old["reason"]) == ("Succeeded", "Completed")
    assert new["attempts"]
