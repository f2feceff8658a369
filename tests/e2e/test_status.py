"""`controller status` tells the whole state: runs, CronJobs, invalid manifests, guards, sync.

Through the real CLI on the sandbox. What status shows besides the runs comes
from the summary the last pass recorded in the ledger, so it still shows it
when the source cannot be read.
"""

from __future__ import annotations

import json
import shutil

import pytest

from controller.state.sync import SyncRecord, sync_record_path, write_sync_record
from tests.e2e.conftest import World, cron_job, job
from tests.e2e.conftest import scaling_world as make_scaling_world

pytestmark = pytest.mark.e2e


def cron(name: str, *, schedule: str = "30 3 * * *", extra: str = "") -> str:
    return cron_job(name, schedule=schedule, extra=extra, duration=5)


def at_minute(world: World, seconds_past: int) -> None:
    """Move the clock to `seconds_past` seconds after the next whole minute."""
    now = world.clock.now()
    world.clock.advance(60 - now.second - now.microsecond / 1e6 + seconds_past)


def test_json_keeps_runs_and_adds_cron_jobs_invalid_warnings_and_sync(world: World) -> None:
    world.write("a.yaml", job("a"))
    world.write("nightly.yaml", cron("nightly", extra="  timeZone: Asia/Tokyo\n"))
    world.write("bad.yaml", job("bad", extra="  backofLimit: 2\n"))
    assert world.reconcile().returncode == 1  # one manifest is invalid

    document = world.status()

    assert list(document) == ["runs", "cronJobs", "invalid", "warnings", "sync", "capacityGroups"]
    [run] = document["runs"]
    assert {"kind", "name", "runId", "phase", "reason", "message", "taskDefinitionArn"} <= set(run)
    assert run["name"] == "a"
    assert set(run["attempts"][0]) == {
        "number",
        "taskArns",
        "exitCodes",
        "stopCode",
        "startedAt",
        "stoppedAt",
    }
    assert document["cronJobs"] == [
        {
            "name": "nightly",
            "schedule": "30 3 * * *",
            "timeZone": "Asia/Tokyo",
            "suspend": False,
            "concurrencyPolicy": "Forbid",
            "lastScheduleTime": None,
            "nextScheduleTime": document["cronJobs"][0]["nextScheduleTime"],
        }
    ]
    assert document["cronJobs"][0]["nextScheduleTime"].endswith("T18:30:00Z")  # 03:30 in Tokyo
    [invalid] = document["invalid"]
    assert (invalid["path"], invalid["line"]) == (str(world.manifests / "bad.yaml"), 8)
    assert "/spec/backofLimit" in invalid["message"]
    assert document["warnings"] == []
    assert document["sync"] is None


def test_json_sync_is_the_sync_record(world: World) -> None:
    record = SyncRecord(
        "0123456789abcdef0123456789abcdef01234567", world.clock.now(), "src", "p1", True
    )
    path = sync_record_path(world.root / "state.db")
    write_sync_record(path, record)
    world.reconcile()
    assert world.status()["sync"] == json.loads(path.read_text())


def test_last_schedule_time_is_the_newest_occurrence_that_ran(world: World) -> None:
    world.write("c.yaml", cron("tick", schedule="* * * * *"))
    at_minute(world, 30)
    world.reconcile()  # first sight: nothing scheduled yet
    assert world.status()["cronJobs"][0]["lastScheduleTime"] is None
    at_minute(world, 2)
    world.reconcile()
    [run] = world.status()["runs"]
    document = world.status()
    due = run["runId"]  # YYYYMMDDTHHMMZ
    expected = f"{due[0:4]}-{due[4:6]}-{due[6:8]}T{due[9:11]}:{due[11:13]}:00Z"
    assert document["cronJobs"][0]["lastScheduleTime"] == expected
    assert document["cronJobs"][0]["nextScheduleTime"] > expected


def test_status_needs_no_source(world: World) -> None:
    world.write("nightly.yaml", cron("nightly"))
    world.write("bad.yaml", job("bad", extra="  backofLimit: 2\n"))
    world.reconcile()
    shutil.rmtree(world.manifests)  # a status run where the checkout is not

    document = world.status()

    assert [c["name"] for c in document["cronJobs"]] == ["nightly"]
    assert document["cronJobs"][0]["nextScheduleTime"].endswith("T03:30:00Z")
    assert [i["path"] for i in document["invalid"]] == [str(world.manifests / "bad.yaml")]
    shown = world.cli("status")
    assert shown.returncode == 0, shown.stderr
    assert "CronJob nightly: '30 3 * * *' in UTC, next run at " in shown.stdout


def test_a_cron_job_made_invalid_keeps_the_version_the_last_pass_loaded(world: World) -> None:
    world.write("nightly.yaml", cron("nightly"))
    world.reconcile()
    world.write("nightly.yaml", cron("nightly", extra="  schedul: oops\n"))
    assert [c["name"] for c in world.status()["cronJobs"]] == ["nightly"]


def test_plain_status_lists_invalid_manifests_under_the_table(world: World) -> None:
    world.write("a.yaml", job("a"))
    world.write("bad.yaml", job("bad", extra="  backofLimit: 2\n"))
    world.reconcile()

    shown = world.cli("status")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    table = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    invalid = next(i for i, line in enumerate(lines) if "bad.yaml:8: /spec/backofLimit" in line)
    assert invalid > table + 1  # below the run of `a`
    assert "invalid manifest" in lines[invalid - 1]
    # Fixed and reconciled: the list is gone.
    (world.manifests / "bad.yaml").unlink()
    world.reconcile()
    assert "bad.yaml" not in world.cli("status").stdout


def test_a_guard_warning_disappears_once_a_later_pass_is_healthy(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    removed = {name: (world.manifests / f"{name}.yaml").read_text() for name in ("a", "b")}
    for name in removed:
        (world.manifests / f"{name}.yaml").unlink()
    world.reconcile()
    assert world.cli("status").stdout.startswith("warning: 2 of 3 known manifests")

    for name, text in removed.items():
        world.write(f"{name}.yaml", text)
    assert world.reconcile().returncode == 0

    assert "warning:" not in world.cli("status").stdout
    assert world.status()["warnings"] == []


def test_json_warnings_are_the_guards_of_the_last_pass(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    for name in ("a", "b"):
        (world.manifests / f"{name}.yaml").unlink()
    world.reconcile()
    [warning] = world.status()["warnings"]
    assert warning.startswith("2 of 3 known manifests would be orphaned")


def test_status_name_prints_the_message_whole(world: World) -> None:
    reference = "nothere-" + "x" * 80 + ":1"
    world.write(
        "ref.yaml",
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        "metadata: {name: ref}\n"
        "spec:\n"
        "  cluster: batch\n"
        "  launchType: EC2\n"
        f"  taskDefinitionRef: {reference}\n",
    )
    world.reconcile()
    message = world.run("ref")["message"]
    assert len(message) > 70

    listed = world.cli("status")
    one = world.cli("status", "ref")

    assert message not in listed.stdout  # the full list cuts long messages
    assert message in one.stdout


# -- attempts and placement tries ---------------------------------------------


@pytest.fixture
def scaling_world(world: World) -> World:
    """A cluster whose only capacity is an Auto Scaling group of one instance."""
    return make_scaling_world(world, max_size=4)


def whole_instance_job(name: str) -> str:
    text = job(
        name,
        duration=600,
        extra="  capacity: {autoScalingGroup: batch-asg, maxPendingSeconds: 900}\n",
    )
    return text.replace("cpu: '256'", "cpu: '2048'").replace("memory: '512'", "memory: '4096'")


def test_attempts_count_only_attempts_that_ran_a_task(scaling_world: World) -> None:
    world = scaling_world
    world.write("first.yaml", whole_instance_job("first"))
    world.write("second.yaml", whole_instance_job("second"))
    world.reconcile()  # first takes the one instance; second cannot be placed
    for _ in range(12):  # scale out, wait for the instance, retry
        world.clock.advance(20)
        world.reconcile()
        if world.run("second")["attempts"][-1]["taskArns"]:
            break
    second = world.run("second")
    assert second["attempts"][-1]["taskArns"], second
    tries = len(second["attempts"]) - 1
    assert tries >= 1

    rows = {line.split()[0]: line for line in world.cli("status").stdout.splitlines()}
    column = rows["NAME"].index("ATTEMPTS")
    assert rows["first"][column:].split()[0] == "1"
    plural = "try" if tries == 1 else "tries"
    assert rows["second"][column:].startswith(f"1 (+{tries} {plural})")
    # The JSON keeps every attempt (their numbers are in the task tags) and counts the tries.
    assert second["tries"] == tries
    assert world.run("first")["tries"] == 0
