"""Container instance and task resources, as ECS counts them (fidelity patch a).

What a task reserves on an EC2 container instance: its task-level `cpu`
and `memory` in ECS's units ("1 vCPU", "2 GB"), else its containers' sums;
dynamic host ports never conflict. Also the instance's registered size,
which moto fixes at 4096 CPU and 7482 MiB whatever the instance type (the
fleet sets it from the instance type, `fleet.py`).
"""

from __future__ import annotations

import re
from typing import Any

from moto.ecs.exceptions import InvalidParameterException

from controller.sandbox.patches.stack import PatchStack


def set_instance_resources(container_instance: Any, cpu: int, memory: int) -> None:
    """Give a registered container instance exactly `cpu` units and `memory` MiB.

    Real ECS: an instance registers the CPU and memory it has (less what the
    agent reserves), and remainingResources shrink as tasks are placed.
    moto: every instance registers 4096 CPU and 7482 MiB, whatever its type.
    """
    for resources in (
        container_instance.registered_resources,
        container_instance.remaining_resources,
    ):
        for resource in resources:
            if resource["name"] == "CPU":
                resource["integerValue"] = cpu
            elif resource["name"] == "MEMORY":
                resource["integerValue"] = memory


def remaining(container_instance: Any, name: str) -> Any:
    """Return how much of one resource (CPU, MEMORY, PORTS) an instance has left."""
    for resource in container_instance.remaining_resources:
        if resource["name"] == name:
            return (
                resource.get("stringSetValue")
                if name.startswith("PORTS")
                else resource["integerValue"]
            )
    return None


_UNITS = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_task_cpu(value: str | int) -> int:
    """Task-level cpu in CPU units: "256" -> 256, "1 vCPU" -> 1024, ".25 vcpu" -> 256."""
    match = _UNITS.match(str(value))
    if not match or match[2].lower() not in ("", "vcpu"):
        raise InvalidParameterException(f"Invalid 'cpu' setting for task: {value!r}.")
    amount = float(match[1])
    return round(amount * 1024) if match[2] else round(amount)


def parse_task_memory(value: str | int) -> int:
    """Task-level memory in MiB: "512" -> 512, "2 GB" -> 2048, "512MB" -> 512."""
    match = _UNITS.match(str(value))
    if not match or match[2].lower() not in ("", "mb", "mib", "gb", "gib"):
        raise InvalidParameterException(f"Invalid 'memory' setting for task: {value!r}.")
    amount = float(match[1])
    return round(amount * 1024) if match[2].lower() in ("gb", "gib") else round(amount)


def task_resource_requirements(task_definition: Any) -> dict[str, Any]:
    """Compute what one task of `task_definition` reserves on an EC2 container instance."""
    containers: list[dict[str, Any]] = task_definition.container_definitions
    cpu = sum(int(c.get("cpu") or 0) for c in containers)
    # ECS reserves memoryReservation when given, else the hard limit.
    memory = sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in containers)
    if task_definition.cpu:
        cpu = parse_task_cpu(task_definition.cpu)
    if task_definition.memory:
        memory = parse_task_memory(task_definition.memory)
    ports: list[int] = []
    if task_definition.network_mode not in ("awsvpc", "host"):
        # hostPort 0 or absent is a dynamic port: it never conflicts. Under
        # awsvpc every task has its own network interface and no host ports.
        ports = [
            int(mapping["hostPort"])
            for c in containers
            for mapping in c.get("portMappings") or []
            if mapping.get("hostPort")
        ]
    return {"CPU": cpu, "MEMORY": memory, "PORTS": ports, "PORTS_UDP": []}


def patch_task_resources(stack: PatchStack, ecs: Any) -> None:
    """Reserve task-level cpu/memory when the task definition has them.

    Real ECS (EC2 launch type): a task reserves its task-level `cpu` and
    `memory` when set ("1 vCPU" and "2 GB" units allowed), else the sum of its
    containers' `cpu` and `memoryReservation` (or `memory`); dynamic host
    ports (0) never conflict. moto: always sums the containers, prefers the
    hard `memory` limit, crashes (HTTP 500) on a container that has neither,
    and reserves host port "0" so a second bridge-mode task never fits.
    """
    stack.replace(ecs, "_calculate_task_resource_requirements", task_resource_requirements)
