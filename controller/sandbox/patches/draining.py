"""Draining container instances: UpdateContainerInstancesState (fidelity patch f).

Scale-in sets an idle container instance DRAINING before its EC2 instance is
terminated, so that ECS places no new task on it meanwhile. What moto does
already matches ECS and is only pinned by a test (`tests/sandbox/
test_draining.py`): UpdateContainerInstancesState accepts ACTIVE and
DRAINING (anything else is InvalidParameterException), answers an unknown
instance with a MISSING failure, and RunTask places tasks on ACTIVE
instances only, so a draining instance gets none (the sandbox's placement
patch reports a cluster whose instances all drain as having none). Tasks
already on a draining instance keep running: ECS stops only *service*
tasks there, and a RunTask task is no service task.

What it lacks is the event: real ECS emits an `ECS Container Instance State
Change` whenever an instance's status changes, and moto emits none, so the
patch reports each changed instance to the sandbox's event emitter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from controller.sandbox.patches.stack import PatchStack

if TYPE_CHECKING:
    from controller.clock import Clock
    from controller.sandbox.ecs_events import EcsEventEmitter

_Update = Callable[[str, list[str], str], tuple[list[Any], list[Any]]]


def patch_container_instance_state(
    stack: PatchStack, ecs: Any, events: EcsEventEmitter, clock: Clock
) -> None:
    """Emit a container-instance state change for each instance whose status changes.

    Real ECS: UpdateContainerInstancesState to DRAINING (or back to ACTIVE)
    emits `ECS Container Instance State Change` with the new status. moto:
    changes the status and emits nothing.
    """

    def wrapper(inner: _Update) -> _Update:
        def update(cluster_str: str, ids: list[str], status: str) -> tuple[list[Any], list[Any]]:
            cluster = ecs._get_cluster(cluster_str)
            found = ecs.container_instances.get(cluster.name, {})
            before = {key: ci.status for key, ci in found.items()}
            changed, failures = inner(cluster_str, ids, status)
            now = clock.now()
            for instance in changed:
                key = str(instance.container_instance_arn).rsplit("/", 1)[-1]
                if before.get(key) != instance.status:
                    events.instance_changed(instance, cluster.arn, now)
            return changed, failures

        return update

    stack.wrap(ecs, "update_container_instances_state", wrapper)
