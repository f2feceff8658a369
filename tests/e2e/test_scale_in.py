"""Scale-in through the CLI: after a burst the group goes back to MinSize, never losing a task.

The sandbox's fake clock drives both sides (CONTROLLER_TEST_NOW), so the
idle period passes without sleeping. The sandbox keeps a record of every
instance that left the group and how many tasks it still ran then.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.model.identity import TAG_SCALE_IN
from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

GROUP = "batch-asg"


def burst_job(name: str) -> str:
    # 640 CPU units: three fit one 2048-unit instance, so twelve need four.
    text = job(
        name,
        duration=120,
        extra=f"  capacity: {{autoScalingGroup: {GROUP}, maxPendingSeconds: 900}}\n",
    )
    return text.replace("cpu: '256'", "cpu: '640'").replace("memory: '512'", "memory: '1024'")


def opted_in_world(world: World, tags: dict[str, str]) -> World:
    world.sandbox.reset()
    world.sandbox.create_cluster("batch")
    world.sandbox.create_auto_scaling_group(
        GROUP,
        "batch",
        min_size=1,
        max_size=10,
        desired=1,
        instance_cpu=2048,
        instance_memory=4096,
        registration_delay_seconds=30,
        tags=tags,
    )
    assert world.clock is not None
    world.clock.advance(31)
    world.sandbox.tick()
    return world


def desired(world: World) -> int:
    asg: Any = world.sandbox.client("autoscaling", counted=False)
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    return int(found["AutoScalingGroups"][0]["DesiredCapacity"])


def burst_until_done(world: World) -> None:
    """Twelve runs at once: the group scales 1 -> 4 and every run succeeds."""
    assert world.clock is not None
    for i in range(12):
        world.write(f"b{i:02d}.yaml", burst_job(f"b{i:02d}"))
    world.reconcile()  # three fit the one instance, nine cannot be placed
    for _ in range(20):
        world.clock.advance(15)
        done = world.reconcile()
        assert done.returncode in (0, 1), done.stderr
        if all(r["phase"] == "Succeeded" for r in world.status()["runs"]):
            break
    runs = world.status()["runs"]
    assert [r["phase"] for r in runs] == ["Succeeded"] * 12, [
        (r["name"], r["reason"]) for r in runs
    ]
    assert world.sandbox.calls[("autoscaling", "SetDesiredCapacity")] == 1
    assert desired(world) == 4


def test_a_burst_scales_out_then_the_idle_instances_go_back_to_min_size(world: World) -> None:
    world = opted_in_world(world, {TAG_SCALE_IN: world.owner})
    assert world.clock is not None
    burst_until_done(world)
    world.sandbox.reset_calls()

    # Nothing is released before the idle period (600 s by default).
    world.clock.advance(60)
    world.reconcile()
    assert desired(world) == 4
    group = world.status()["capacityGroups"][0]
    assert (group["name"], group["instances"], len(group["idle"])) == (GROUP, 4, 4)
    assert group["nextRelease"]["at"] is not None
    plan = world.cli("diff")
    assert "DRAINING" not in plan.stdout

    # Then one instance per pass is drained, and terminated on a later pass.
    drained_seen = False
    for _ in range(30):
        world.clock.advance(60)
        done = world.reconcile()
        assert done.returncode == 0, done.stderr
        drained_seen = drained_seen or "DRAINING" in done.stdout
        if desired(world) == 1 and not world.status()["capacityGroups"][0]["draining"]:
            break
    assert drained_seen
    assert desired(world) == 1
    calls = world.sandbox.calls
    assert calls[("autoscaling", "TerminateInstanceInAutoScalingGroup")] == 3
    assert calls[("ecs", "UpdateContainerInstancesState")] == 3
    assert calls[("autoscaling", "SetDesiredCapacity")] == 0

    # Never an instance that still had a task: the sandbox's record of
    # every instance that left the group, and every task's end.
    retired = world.sandbox.retired_instances
    assert len(retired) == 3
    assert all(r.running_tasks == 0 for r in retired), retired
    ecs: Any = world.sandbox.client("ecs", counted=False)
    stopped = world.tasks("STOPPED")
    described = ecs.describe_tasks(cluster="batch", tasks=stopped[:100])["tasks"]
    assert len(described) == 12
    assert {t["stopCode"] for t in described} == {"EssentialContainerExited"}

    group = world.status()["capacityGroups"][0]
    assert (group["desired"], group["instances"], group["draining"]) == (1, 1, [])
    assert group["nextRelease"] is None
    # Further passes leave MinSize alone and read no container instance
    # (the first one stops the last instance's idle clock).
    world.clock.advance(60)
    world.reconcile()
    world.sandbox.reset_calls()
    world.clock.advance(3600)
    world.reconcile()
    assert world.sandbox.calls[("ecs", "DescribeContainerInstances")] == 0
    assert world.sandbox.calls[("autoscaling", "DescribeAutoScalingGroups")] == 1


def test_a_group_without_the_tag_is_never_scaled_in(world: World) -> None:
    world = opted_in_world(world, {})
    assert world.clock is not None
    burst_until_done(world)
    world.sandbox.reset_calls()
    for _ in range(15):
        world.clock.advance(120)
        world.reconcile()
    assert desired(world) == 4
    assert world.sandbox.calls[("autoscaling", "TerminateInstanceInAutoScalingGroup")] == 0
    assert world.sandbox.calls[("ecs", "DescribeContainerInstances")] == 0
    # No group is opted in: status's document is DESIGN.md §8's, without capacityGroups.
    assert "capacityGroups" not in world.status()


def test_no_scale_in_releases_nothing(world: World) -> None:
    world = opted_in_world(world, {TAG_SCALE_IN: world.owner})
    assert world.clock is not None
    burst_until_done(world)
    for _ in range(15):
        world.clock.advance(120)
        done = world.cli("reconcile", "--once", "--no-scale-in")
        assert done.returncode == 0, done.stderr
    assert desired(world) == 4
    assert world.sandbox.retired_instances == []
