"""Capacity through the CLI: one bin-packed scale-out for all waiting tasks, never +1 per poll."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, job
from tests.e2e.conftest import scaling_world as make_scaling_world

pytestmark = pytest.mark.e2e


def asg_job(name: str, cpu: int, memory: int) -> str:
    text = job(
        name,
        duration=600,
        extra="  capacity: {autoScalingGroup: batch-asg, maxPendingSeconds: 900}\n",
    )
    return text.replace("cpu: '256'", f"cpu: '{cpu}'").replace(
        "memory: '512'", f"memory: '{memory}'"
    )


@pytest.fixture
def scaling_world(world: World) -> World:
    # A fresh cluster whose only capacity is the Auto Scaling group.
    return make_scaling_world(world, max_size=10)


def test_seven_waiting_tasks_get_one_bin_packed_scale_out(scaling_world: World) -> None:
    world = scaling_world
    sizes = [(1024, 2048)] * 4 + [(512, 1024)] * 3  # 5.5 instances of cpu in all
    for i, (cpu, memory) in enumerate(sizes):
        world.write(f"j{i}.yaml", asg_job(f"j{i}", cpu, memory))
    world.reconcile()  # 2 fit on the one instance, 5 cannot be placed
    placed = [r for r in world.status()["runs"] if r["attempts"][-1]["taskArns"]]
    assert len(placed) == 2
    world.sandbox.reset_calls()
    plan = world.cli("diff")
    assert "SetDesiredCapacity batch-asg 1 -> 3" in plan.stdout
    world.clock.advance(15)
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    assert world.sandbox.calls[("autoscaling", "SetDesiredCapacity")] == 1
    world.clock.advance(1)
    world.reconcile()
    waiting = [r for r in world.status()["runs"] if r["reason"] == "ScalingOut"]
    assert len(waiting) == 5
    asg: Any = world.sandbox.client("autoscaling", counted=False)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 3
    # While the new instances launch, passes ask for nothing more (no +1 loop).
    for _ in range(3):
        world.clock.advance(5)
        world.reconcile()
    assert world.sandbox.calls[("autoscaling", "SetDesiredCapacity")] == 1
    # They register; the waiting runs are placed on the next passes.
    for _ in range(6):
        world.clock.advance(20)
        world.reconcile()
    runs = world.status()["runs"]
    assert all(r["phase"] == "Running" for r in runs), [(r["name"], r["reason"]) for r in runs]
    assert world.sandbox.calls[("autoscaling", "SetDesiredCapacity")] == 1


def test_a_task_larger_than_any_instance_is_unschedulable_at_once(scaling_world: World) -> None:
    world = scaling_world
    world.write("big.yaml", asg_job("big", 4096, 2048))
    world.reconcile()
    world.clock.advance(15)
    world.reconcile()
    run = world.run("big")
    assert (run["phase"], run["reason"]) == ("Failed", "Unschedulable")
    assert "more than one instance of batch-asg has" in run["message"]
