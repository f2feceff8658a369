"""`controller trigger` and `controller stop` through the real CLI on the sandbox (issue 15).

trigger: a manual occurrence `NAME/manual-<UTC time>` is recorded and
started at once, the loop follows it like any occurrence, Forbid sees it
running, and the schedule's watermark does not move. stop: the running task
is stopped in the sandbox, the run ends Failed/Cancelled with who and why,
and no pass retries or restarts it. Time is the sandbox's fake clock, which
the CLI follows (CONTROLLER_TEST_NOW).
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, cron_job, job

pytestmark = pytest.mark.e2e


def errors(stderr: str) -> list[str]:
    """stderr without the test hook's announcement."""
    return [line for line in stderr.splitlines() if not line.startswith("warning: CONTROLLER_")]


def manual_run_id(world: World) -> str:
    assert world.clock is not None
    return "manual-" + world.clock.now().strftime("%Y%m%dT%H%M%SZ")


def test_trigger_starts_a_manual_run_now_which_the_loop_follows(world: World) -> None:
    world.write("nightly.yaml", cron_job("nightly", schedule="0 3 * * *", duration=30))
    assert world.reconcile().returncode == 0  # first sight: the watermark is now
    before = world.status()["cronJobs"][0]["lastScheduleTime"]
    world.sandbox.reset_calls()

    done = world.cli("trigger", "nightly")

    assert done.returncode == 0, done.stderr
    key = f"nightly/{manual_run_id(world)}"
    printed_key, arn = done.stdout.split()
    assert printed_key == key
    assert arn.startswith("arn:aws:ecs:")
    run = world.runs()[key]
    assert (run["kind"], run["origin"]) == ("CronJob", "manual")
    assert run["attempts"][0]["taskArns"] == [arn]
    assert world.sandbox.calls[("ecs", "RunTask")] == 1
    # Not a scheduled occurrence: the schedule stays where it was.
    assert world.status()["cronJobs"][0]["lastScheduleTime"] == before

    assert world.clock is not None
    world.clock.advance(31)
    assert world.reconcile().returncode == 0
    run = world.runs()[key]
    assert (run["phase"], run["reason"]) == ("Succeeded", "Completed")
    assert world.status()["cronJobs"][0]["lastScheduleTime"] == before

    again = world.cli("trigger", "nightly", "--run-id", key.split("/")[1])
    assert again.returncode == 0, again.stderr
    assert "recorded before" in again.stderr
    assert world.sandbox.calls[("ecs", "RunTask")] == 1  # idempotent: nothing new


def test_a_scheduled_occurrence_under_forbid_sees_the_manual_run_running(world: World) -> None:
    world.write("every.yaml", cron_job("every", schedule="* * * * *", duration=600))
    assert world.reconcile().returncode == 0
    done = world.cli("trigger", "every", "--run-id", "by-hand")
    assert done.returncode == 0, done.stderr
    world.sandbox.reset_calls()

    assert world.clock is not None
    world.clock.advance(61)  # the next occurrence is due, the manual run still runs
    assert world.reconcile().returncode == 0

    runs = world.runs()
    assert runs["every/by-hand"]["phase"] == "Running"
    assert ("ecs", "RunTask") not in world.sandbox.calls
    started = [r for key, r in runs.items() if key != "every/by-hand" and r["attempts"]]
    assert started == []


def test_trigger_of_an_unknown_cron_job_is_one_line_and_exit_1(world: World) -> None:
    world.write("a.yaml", job("plain"))
    done = world.cli("trigger", "plain")
    assert done.returncode == 1
    assert errors(done.stderr) == [f"error: no CronJob plain in {world.manifests}"], done.stderr


def test_stop_stops_the_task_and_the_run_ends_cancelled_without_retry(world: World) -> None:
    world.write("a.yaml", job("long", duration=600, extra="  backoffLimit: 2\n"))
    assert world.reconcile().returncode == 0
    assert world.clock is not None
    world.clock.advance(5)
    assert world.reconcile().returncode == 0
    assert world.run("long")["phase"] == "Running"
    (task,) = world.tasks("RUNNING")

    done = world.cli("stop", "long", "--reason", "wrong month")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped long/1: Failed (Cancelled): cancelled by ")
    assert world.tasks("RUNNING") == []
    assert world.tasks("STOPPED") == [task]
    run = world.run("long")
    assert (run["phase"], run["reason"]) == ("Failed", "Cancelled")
    assert run["message"].endswith(": wrong month")
    assert run["message"].startswith("cancelled by ")

    # Neither a retry (backoffLimit 2) nor a restart of the cancelled JobRun.
    world.sandbox.reset_calls()
    world.clock.advance(3600)
    assert world.reconcile().returncode == 0
    run = world.run("long")
    assert (run["phase"], run["reason"]) == ("Failed", "Cancelled")
    assert len(run["attempts"]) == 1
    assert ("ecs", "RunTask") not in world.sandbox.calls

    again = world.cli("stop", "long")
    assert again.returncode == 1
    (line,) = errors(again.stderr)
    assert line.startswith("error: nothing to stop: every run of long has ended")

    # A new runId runs again.
    world.write("a.yaml", job("long", duration=600, run_id="2"))
    assert world.reconcile().returncode == 0
    assert world.runs()["long/2"]["attempts"]


def test_stop_of_a_run_that_has_not_started_cancels_it(world: World) -> None:
    world.write("a.yaml", job("held", extra="  suspend: true\n"))
    assert world.reconcile().returncode == 0
    assert world.run("held")["reason"] == "Suspended"

    done = world.cli("stop", "held", "--run-id", "1")

    assert done.returncode == 0, done.stderr
    run = world.run("held")
    assert (run["phase"], run["reason"]) == ("Failed", "Cancelled")
    assert world.all_tasks() == []


@pytest.mark.parametrize("ledger", ["present", "missing"])
def test_stop_with_nothing_to_stop_exits_1(world: World, ledger: str) -> None:
    if ledger == "present":
        world.write("a.yaml", job("other"))
        assert world.reconcile().returncode == 0
    done = world.cli("stop", "nope")
    assert done.returncode == 1
    (line,) = errors(done.stderr)
    assert line.startswith("error: nothing to stop: no ")
