"""Placement failures, reported the way RunTask reports them (fidelity patch b).

On container instances, a task that does not fit is left out of RunTask's
`tasks` and every ACTIVE instance is named in `failures` with the resource
it lacks; a cluster without instances is an InvalidParameterException.
`PlacedTasks` carries the failures from the backend to the response
(`tokens.py`), which moto always leaves empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.ecs.exceptions import InvalidParameterException

from controller.sandbox.patches.resources import remaining
from controller.sandbox.patches.stack import PatchStack

NO_CONTAINER_INSTANCES = "No Container Instances were found in your cluster."


class PlacedTasks(list[Any]):
    """The tasks moto placed, with the failures real ECS reports for the rest."""

    def __init__(self, tasks: list[Any], failures: list[dict[str, str]]) -> None:
        super().__init__(tasks)
        self.failures = failures


def active_instances(ecs: Any, cluster_name: str) -> list[Any]:
    """List the ACTIVE container instances of a cluster, in registration order."""
    instances = ecs.container_instances.get(cluster_name, {}).values()
    return [ci for ci in instances if ci.status == "ACTIVE"]


def shortage(container_instance: Any, needs: Mapping[str, Any]) -> str | None:
    """Return the RunTask failure reason for this instance, or None if the task fits."""
    if needs["CPU"] > remaining(container_instance, "CPU"):
        return "RESOURCE:CPU"
    if needs["MEMORY"] > remaining(container_instance, "MEMORY"):
        return "RESOURCE:MEMORY"
    used_ports = set(remaining(container_instance, "PORTS") or [])
    if any(str(port) in used_ports for port in needs["PORTS"]):
        return "RESOURCE:PORTS"
    return None


def places_on_container_instances(
    cluster: Any, launch_type: str | None, strategy: list[dict[str, Any]] | None
) -> bool:
    """Whether RunTask needs container instances (EC2/EXTERNAL, or no launch type nor provider)."""
    if launch_type:
        return launch_type in ("EC2", "EXTERNAL")
    # Capacity providers (including the cluster's default strategy) keep
    # moto's behaviour: managed scaling is not simulated.
    return not strategy and not cluster.default_capacity_provider_strategy


def patch_placement(stack: PatchStack, ecs: Any) -> None:
    """Report unplaceable tasks the way ECS does.

    Real ECS (EC2 launch type, or neither launch type nor capacity provider):
    a cluster without ACTIVE container instances gets InvalidParameterException
    "No Container Instances were found in your cluster."; tasks that do not
    fit are left out of `tasks` and every ACTIVE instance appears in
    `failures` with `RESOURCE:CPU`, `RESOURCE:MEMORY` or `RESOURCE:PORTS`.
    moto: raises a plain exception (HTTP 500, which botocore retries) and
    silently returns fewer tasks. FARGATE needs no instances in either.
    The failures travel to the response on the returned `PlacedTasks`.
    """

    def wrapper(inner: Callable[..., list[Any]]) -> Callable[..., PlacedTasks]:
        def run_task(  # moto's run_task signature: callers pass it positionally
            cluster_str: str,
            task_definition_str: str,
            count: int,
            overrides: dict[str, Any] | None,
            started_by: str,
            tags: list[dict[str, str]] | None,
            launch_type: str | None,
            networking_configuration: dict[str, Any] | None = None,
            group: str | None = None,
            platform_version: str | None = None,
            capacity_provider_strategy: list[dict[str, Any]] | None = None,
        ) -> PlacedTasks:
            cluster = ecs._get_cluster(cluster_str)
            on_instances = places_on_container_instances(
                cluster, launch_type, capacity_provider_strategy
            )
            if on_instances and not active_instances(ecs, cluster.name):
                raise InvalidParameterException(NO_CONTAINER_INSTANCES)
            tasks = inner(
                cluster_str,
                task_definition_str,
                count,
                overrides,
                started_by,
                tags,
                launch_type,
                networking_configuration,
                group,
                platform_version,
                capacity_provider_strategy,
            )
            failures: list[dict[str, str]] = []
            if on_instances and len(tasks) < count:
                task_definition = ecs.describe_task_definition(task_definition_str)
                needs = ecs._calculate_task_resource_requirements(task_definition)
                for instance in active_instances(ecs, cluster.name):
                    reason = shortage(instance, needs)
                    if reason:
                        failures.append({"arn": instance.container_instance_arn, "reason": reason})
            return PlacedTasks(tasks, failures)

        return run_task

    stack.wrap(ecs, "run_task", wrapper)
