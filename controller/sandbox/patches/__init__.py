"""Fidelity patches over moto's ECS, Auto Scaling and DynamoDB models.

moto is a rough model of ECS (DESIGN.md §11). The controller's end-to-end
tests depend on a few behaviours moto does not have, so the sandbox replaces
single methods of moto's objects with versions that behave like real AWS.
Each `patch_*` function installs one such change on a `PatchStack`;
its docstring says what real AWS does and what moto does instead. Removing
the stack puts every original back, so several sandboxes can run one after
the other in one process.

Two kinds of target are patched:

* backend *instances* (`ecs_backends[account][region]`, ...): only the
  sandbox's account and region change; a moto reset drops these patches
  together with the backend, which is why `Sandbox.reset()` reinstalls them;
* the ECS *response class*, where the wire format itself is wrong (RunTask
  and DescribeTasks never return failures, ListTasks ignores ECS's default
  filter and pagination). These are class attributes, so while a sandbox is
  running they also apply to in-process moto in the same process.

One module per behaviour:

* `stack`: the `PatchStack` every patch is installed on;
* `resources`: what a task reserves on a container instance, and its size;
* `placement`: RunTask's placement failures on container instances;
* `tokens`: RunTask's clientToken idempotency and the rest of its response;
* `wire`: DescribeTasks (MISSING failures) and ListTasks (filter, pages);
* `lifecycle`: new tasks and StopTask handed to the simulated agent;
* `autoscaling`: SetDesiredCapacity within MinSize..MaxSize, and
  TerminateInstanceInAutoScalingGroup's refusals (below MinSize, no member);
* `draining`: UpdateContainerInstancesState's state-change events (what
  moto already does right about DRAINING is pinned by its test);
* `dynamodb`: conditional writes that are atomic.

The task lifecycle itself (the simulated agent) lives in `agent.py`, Auto
Scaling instances joining ECS in `fleet.py`; this package wires them into
moto. It exports what the rest of the sandbox installs and uses.
"""

from controller.sandbox.patches.autoscaling import (
    patch_desired_capacity_bounds,
    patch_terminate_instance,
)
from controller.sandbox.patches.draining import patch_container_instance_state
from controller.sandbox.patches.dynamodb import patch_atomic_dynamodb_writes
from controller.sandbox.patches.lifecycle import patch_task_lifecycle
from controller.sandbox.patches.placement import patch_placement
from controller.sandbox.patches.resources import patch_task_resources, set_instance_resources
from controller.sandbox.patches.stack import PatchStack
from controller.sandbox.patches.tokens import ClientTokens, patch_run_task_response
from controller.sandbox.patches.wire import ACCOUNT_ID, patch_describe_tasks, patch_list_tasks

__all__ = [
    "ACCOUNT_ID",
    "ClientTokens",
    "PatchStack",
    "patch_atomic_dynamodb_writes",
    "patch_container_instance_state",
    "patch_describe_tasks",
    "patch_desired_capacity_bounds",
    "patch_list_tasks",
    "patch_placement",
    "patch_run_task_response",
    "patch_task_lifecycle",
    "patch_task_resources",
    "patch_terminate_instance",
    "set_instance_resources",
]
