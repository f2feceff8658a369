"""Patch a: container instances with chosen resources, consumed and released by tasks."""

from __future__ import annotations

from typing import Any

import pytest
from moto.ecs.exceptions import InvalidParameterException

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.patches.resources import parse_task_cpu, parse_task_memory
from tests.sandbox.helpers import environment, register


def resources(ecs: Any, cluster: str, arn: str, kind: str) -> dict[str, int]:
    instance = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])[
        "containerInstances"
    ][0]
    return {r["name"]: r["integerValue"] for r in instance[kind] if r["name"] in ("CPU", "MEMORY")}


def test_instances_register_exactly_the_resources_asked_for(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("batch")
    arns = sandbox.add_container_instances("batch", 2, cpu=1024, memory=3072)
    assert len(arns) == 2
    assert sorted(ecs.list_container_instances(cluster="batch")["containerInstanceArns"]) == sorted(
        arns
    )
    for arn in arns:
        assert resources(ecs, "batch", arn, "registeredResources") == {"CPU": 1024, "MEMORY": 3072}
        assert resources(ecs, "batch", arn, "remainingResources") == {"CPU": 1024, "MEMORY": 3072}


def test_adding_instances_to_a_missing_cluster_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="create it first"):
        sandbox.add_container_instances("nowhere", 1)


def test_four_tasks_of_256_fill_1024_cpu_and_a_stopped_one_makes_room(
    sandbox: Sandbox, ecs: Any
) -> None:
    sandbox.create_cluster("batch")
    [instance] = sandbox.add_container_instances("batch", 1, cpu=1024, memory=8192)
    register(ecs, cpu="256", memory="512")
    placed = [ecs.run_task(cluster="batch", taskDefinition="job")["tasks"] for _ in range(4)]
    assert all(len(tasks) == 1 for tasks in placed)
    assert resources(ecs, "batch", instance, "remainingResources") == {"CPU": 0, "MEMORY": 6144}

    fifth = ecs.run_task(cluster="batch", taskDefinition="job")
    assert fifth["tasks"] == []
    assert fifth["failures"] == [{"arn": instance, "reason": "RESOURCE:CPU"}]

    ecs.stop_task(cluster="batch", task=placed[0][0]["taskArn"])
    assert resources(ecs, "batch", instance, "remainingResources") == {"CPU": 256, "MEMORY": 6656}
    assert len(ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]) == 1


def test_a_task_ending_by_itself_releases_its_resources(
    sandbox: Sandbox, ecs: Any, clock: FakeClock
) -> None:
    sandbox.create_cluster("batch")
    [instance] = sandbox.add_container_instances("batch", 1, cpu=256, memory=512)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=5)}
    ]
    register(ecs, containerDefinitions=containers)
    assert len(ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]) == 1
    assert ecs.run_task(cluster="batch", taskDefinition="job")["tasks"] == []
    clock.advance(5)
    assert resources(ecs, "batch", instance, "remainingResources") == {"CPU": 256, "MEMORY": 512}
    assert len(ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]) == 1


def test_memory_shortage_is_reported_as_memory(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("batch")
    [instance] = sandbox.add_container_instances("batch", 1, cpu=4096, memory=1024)
    register(ecs, cpu="256", memory="1 GB")
    assert len(ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]) == 1
    second = ecs.run_task(cluster="batch", taskDefinition="job")
    assert second["failures"] == [{"arn": instance, "reason": "RESOURCE:MEMORY"}]


def test_without_task_level_sizes_the_containers_are_summed(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("batch")
    [instance] = sandbox.add_container_instances("batch", 1, cpu=2048, memory=4096)
    containers = [
        {"name": "app", "image": "x", "cpu": 300, "memory": 1000, "memoryReservation": 400},
        {"name": "sidecar", "image": "y", "cpu": 100, "memory": 200},
    ]
    ecs.register_task_definition(family="job", containerDefinitions=containers)
    task = ecs.run_task(cluster="batch", taskDefinition="job")["tasks"][0]
    # memoryReservation is what ECS reserves when a container has one.
    assert resources(ecs, "batch", instance, "remainingResources") == {"CPU": 1648, "MEMORY": 3496}
    assert (task["cpu"], task["memory"]) == ("400", "600")


def test_fixed_host_ports_conflict_and_dynamic_ones_do_not(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("batch")
    [instance] = sandbox.add_container_instances("batch", 1, cpu=4096, memory=8192)
    dynamic = [
        {
            "name": "web",
            "image": "x",
            "memory": 64,
            "portMappings": [{"containerPort": 80, "hostPort": 0}],
        }
    ]
    fixed = [
        {
            "name": "web",
            "image": "x",
            "memory": 64,
            "portMappings": [{"containerPort": 80, "hostPort": 8080}],
        }
    ]
    ecs.register_task_definition(family="dynamic", containerDefinitions=dynamic)
    ecs.register_task_definition(family="fixed", containerDefinitions=fixed)
    for _ in range(2):
        assert len(ecs.run_task(cluster="batch", taskDefinition="dynamic")["tasks"]) == 1
    assert len(ecs.run_task(cluster="batch", taskDefinition="fixed")["tasks"]) == 1
    again = ecs.run_task(cluster="batch", taskDefinition="fixed")
    assert again["failures"] == [{"arn": instance, "reason": "RESOURCE:PORTS"}]


@pytest.mark.parametrize(
    ("value", "units"),
    [("256", 256), ("1 vCPU", 1024), (".25 vcpu", 256), ("2vCPU", 2048), (512, 512)],
)
def test_task_cpu_units(value: str | int, units: int) -> None:
    assert parse_task_cpu(value) == units


@pytest.mark.parametrize(
    ("value", "mib"), [("512", 512), ("2 GB", 2048), ("0.5GB", 512), ("512 MiB", 512)]
)
def test_task_memory_units(value: str, mib: int) -> None:
    assert parse_task_memory(value) == mib


@pytest.mark.parametrize("value", ["lots", "1 TB", ""])
def test_unknown_units_are_rejected(value: str) -> None:
    with pytest.raises(InvalidParameterException):
        parse_task_memory(value)
