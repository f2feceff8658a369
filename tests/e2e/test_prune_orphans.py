"""Pruning and orphans through the CLI: bounded families, guards against mass deletion.

Foreign objects live in the same families and clusters: revisions registered
by hand (no tags) and by another owner, tasks started by hand and by another
owner. No pass may touch them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


def register_foreign(world: World, family: str) -> list[str]:
    ecs: Any = world.sandbox.client("ecs", counted=False)
    arns = []
    for tags in ([], [{"key": "ecs-job-controller/owner", "value": "other-team"}]):
        extra = {"tags": tags} if tags else {}
        answer = ecs.register_task_definition(
            family=family,
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "app", "image": f"foreign:{len(arns)}"}],
            **extra,
        )
        arns.append(answer["taskDefinition"]["taskDefinitionArn"])
    return arns


def active_revisions(world: World, family: str) -> list[str]:
    ecs: Any = world.sandbox.client("ecs", counted=False)
    arns: list[str] = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")[
        "taskDefinitionArns"
    ]
    return arns


def start_foreign_tasks(world: World, arn: str) -> list[str]:
    ecs: Any = world.sandbox.client("ecs", counted=False)
    by_hand = ecs.run_task(cluster="batch", taskDefinition=arn)["tasks"][0]["taskArn"]
    other = ecs.run_task(
        cluster="batch",
        taskDefinition=arn,
        startedBy="ejc/other-team",
        tags=[{"key": "ecs-job-controller/owner", "value": "other-team"}],
    )["tasks"][0]["taskArn"]
    return [by_hand, other]


def test_prune_keeps_the_newest_owned_revisions_and_never_foreign_ones(world: World) -> None:
    foreign = register_foreign(world, "etl")
    for version in range(1, 8):
        world.write(
            "etl.yaml",
            job("etl", duration=1, run_id=str(version)).replace(
                "image: busybox", f"image: b:{version}"
            ),
        )
        done = world.cli("reconcile", "--once", "--keep-revisions", "3")
        assert done.returncode == 0, done.stderr
        world.clock.advance(2)
        world.cli("reconcile", "--once", "--keep-revisions", "3")
    active = active_revisions(world, "etl")
    assert all(arn in active for arn in foreign)
    ours = [a for a in active if a not in foreign]
    assert len(ours) == 3
    assert ours[-1].endswith(":9")  # the newest (2 foreign + 7 ours)
    # A dry run afterwards plans nothing more; --no-prune never prunes.
    assert world.cli("diff").returncode == 0


def test_delete_inactive_removes_only_our_inactive_revisions(world: World) -> None:
    foreign = register_foreign(world, "etl")
    ecs: Any = world.sandbox.client("ecs", counted=False)
    ecs.deregister_task_definition(taskDefinition=foreign[0])
    for version in range(1, 4):
        world.write(
            "etl.yaml",
            job("etl", duration=1, run_id=str(version)).replace("busybox", f"b:{version}"),
        )
        world.cli("reconcile", "--once", "--keep-revisions", "1")
        world.clock.advance(2)
    # Level-triggered: a revision deregistered in one pass is deleted in the next.
    for _ in range(2):
        done = world.cli("reconcile", "--once", "--keep-revisions", "1", "--delete-inactive")
        assert done.returncode == 0, done.stderr
    inactive = ecs.list_task_definitions(familyPrefix="etl", status="INACTIVE")[
        "taskDefinitionArns"
    ]
    assert inactive == [foreign[0]]


def test_deleting_one_manifest_orphans_its_run_and_stops_it_when_asked(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    foreign = start_foreign_tasks(world, active_revisions(world, "a")[0])
    (world.manifests / "a.yaml").unlink()
    done = world.cli("reconcile", "--once", "--stop-orphans")
    assert done.returncode == 0, done.stderr
    run = world.run("a")
    assert (run["phase"], run["reason"]) == ("Failed", "Orphaned")
    assert world.run("b")["phase"] in ("Pending", "Running")
    ecs: Any = world.sandbox.client("ecs", counted=False)
    described = ecs.describe_tasks(
        cluster="batch", tasks=[*foreign, *run["attempts"][0]["taskArns"]]
    )
    status = {t["taskArn"]: t["lastStatus"] for t in described["tasks"]}
    assert status[run["attempts"][0]["taskArns"][0]] == "STOPPED"
    assert all(status[arn] != "STOPPED" for arn in foreign)


def test_without_stop_orphans_an_orphan_keeps_running(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    (world.manifests / "a.yaml").unlink()
    world.clock.advance(5)
    assert world.reconcile().returncode == 0
    run = world.run("a")
    assert (run["phase"], run["reason"]) == ("Running", "Orphaned")
    assert len(world.tasks("RUNNING")) == 3


@pytest.mark.parametrize("remove", [["a", "b", "c"], ["a", "b"]], ids=["all", "two-of-three"])
def test_mass_removal_is_refused_and_nothing_is_stopped(world: World, remove: list[str]) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    for name in remove:
        (world.manifests / f"{name}.yaml").unlink()
    done = world.cli("reconcile", "--once", "--stop-orphans")
    assert done.returncode == 1
    assert "nothing orphaned" in done.stderr or "not treated as removed" in done.stderr
    assert len(world.tasks("RUNNING")) == 3
    assert all(r["reason"] != "Orphaned" for r in world.status()["runs"])


def test_status_shows_the_guard_that_held_orphans_back(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    for name in ("a", "b"):
        (world.manifests / f"{name}.yaml").unlink()
    world.reconcile()
    shown = world.cli("status")
    assert shown.returncode == 0
    assert shown.stdout.startswith("warning: 2 of 3 known manifests would be orphaned")


def test_diff_with_stop_orphans_lists_the_stop_and_changes_nothing(world: World) -> None:
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=3600))
    world.reconcile()
    (world.manifests / "a.yaml").unlink()
    shown = world.cli("plan", "--stop-orphans")
    assert shown.returncode == 1
    assert "StopTask a/1 (1 task(s)): manifest removed from the source" in shown.stdout
    dry = world.cli("reconcile", "--once", "--dry-run", "--stop-orphans")
    assert "would: StopTask a/1" in dry.stdout
    assert len(world.tasks("RUNNING")) == 3
    assert world.run("a")["phase"] != "Failed"
