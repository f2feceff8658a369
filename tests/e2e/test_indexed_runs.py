"""Indexed runs through the real CLI on the sandbox (issue 17): shards, slots, one revision.

`reconcile --once` drives a JobRun of `completions` indexes against moto's
server with the fake clock; what ECS holds (tasks, their tags and
overrides, the family's revisions) is read from the sandbox directly.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

INDEXED = "  completions: 5\n  parallelism: 2\n"


def described(world: World) -> list[dict[str, Any]]:
    """Every task of this owner, described with its tags."""
    arns = world.all_tasks()
    if not arns:
        return []
    ecs = world.sandbox.client("ecs", counted=False)
    tasks: list[dict[str, Any]] = ecs.describe_tasks(cluster="batch", tasks=arns, include=["TAGS"])[
        "tasks"
    ]
    return tasks


def test_five_indexes_two_at_a_time_share_one_revision_and_each_gets_its_index(
    world: World,
) -> None:
    world.write("shards.yaml", job("shards", duration=10, extra=INDEXED))
    assert world.reconcile().returncode == 0
    run = world.run("shards")
    assert run["indexCounts"] == {"completed": 0, "failed": 0, "running": 0, "pending": 5}
    assert [i["index"] for i in run["indexes"]] == [0, 1]
    most_at_once = 0
    for _ in range(20):
        live = [t for t in described(world) if t["lastStatus"] != "STOPPED"]
        most_at_once = max(most_at_once, len(live))
        if world.run("shards")["phase"] == "Succeeded":
            break
        world.clock.advance(6)
        assert world.reconcile().returncode == 0
    run = world.run("shards")
    assert (run["phase"], run["reason"]) == ("Succeeded", "Completed"), run
    assert run["indexCounts"] == {"completed": 5, "failed": 0, "running": 0, "pending": 0}
    assert most_at_once == 2

    tasks = described(world)
    assert len(tasks) == 5  # one task per index: nothing started twice
    revisions = {t["taskDefinitionArn"] for t in tasks}
    assert len(revisions) == 1
    ecs = world.sandbox.client("ecs", counted=False)
    assert len(ecs.list_task_definitions(familyPrefix="shards")["taskDefinitionArns"]) == 1
    indexes = []
    for task in tasks:
        tags = {t["key"]: t["value"] for t in task["tags"]}
        overrides = task["overrides"]["containerOverrides"]
        environment = {e["name"]: e["value"] for o in overrides for e in o.get("environment", [])}
        assert environment["JOB_COMPLETION_INDEX"] == tags["ecs-job-controller/index"]
        assert tags["ecs-job-controller/run-id"] == "1"
        indexes.append(int(tags["ecs-job-controller/index"]))
    assert sorted(indexes) == [0, 1, 2, 3, 4]

    shown = world.cli("status", "shards")
    assert shown.returncode == 0, shown.stderr
    assert "indexes of shards/1:" in shown.stdout
    assert shown.stdout.count("every success container exited 0") == 5
    # Index records are never runs of their own.
    assert [r["runId"] for r in world.status()["runs"] if r["name"] == "shards"] == ["1"]


def test_stop_cancels_every_index_of_an_indexed_run(world: World) -> None:
    world.write("shards.yaml", job("shards", duration=600, extra=INDEXED))
    assert world.reconcile().returncode == 0
    world.clock.advance(5)
    assert world.reconcile().returncode == 0
    assert len(world.tasks("RUNNING")) == 2
    stopped = world.cli("stop", "shards", "--reason", "wrong month")
    assert stopped.returncode == 0, stopped.stderr
    world.clock.advance(5)
    assert world.reconcile().returncode == 0
    run = world.run("shards")
    assert (run["phase"], run["reason"]) == ("Failed", "Cancelled"), run
    assert world.tasks("RUNNING") == []
    assert len(world.all_tasks()) == 2  # no index started after the stop


@pytest.mark.parametrize(
    "step", ["after-register", "after-intent", "after-run-task", "after-record"]
)
def test_a_crash_at_any_step_never_yields_two_tasks_for_one_index(world: World, step: str) -> None:
    world.write("shards.yaml", job("shards", duration=300, extra="  completions: 3\n"))
    crashed = world.reconcile(CONTROLLER_TEST_CRASH_AT=step)
    assert crashed.returncode == -9, (step, crashed.stderr)
    for _ in range(3):
        again = world.reconcile()
        assert again.returncode == 0, again.stderr
        world.clock.advance(1)
    tasks = described(world)
    indexes = sorted(
        int(t["value"])
        for task in tasks
        for t in task["tags"]
        if t["key"] == "ecs-job-controller/index"
    )
    assert indexes == [0, 1, 2]
    run = world.run("shards")
    assert run["phase"] == "Running"
    assert [len(i["attempts"]) for i in run["indexes"]] == [1, 1, 1]
