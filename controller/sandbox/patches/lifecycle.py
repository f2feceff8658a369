"""The task lifecycle: new tasks and StopTask go to the simulated agent (fidelity patch d).

moto runs a task at once, with its first container only, and drifts it
toward STOPPED one state per DescribeTasks. Here every task RunTask or
StartTask creates is handed to the simulated ECS agent (`agent.py`), which
moves it through ECS's states on the sandbox's clock and reports exit
codes; StopTask stops it the way ECS does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.ecs.exceptions import InvalidParameterException

from controller.sandbox.patches.stack import PatchStack

if TYPE_CHECKING:
    from controller.clock import Clock
    from controller.sandbox.agent import SimulatedAgent

TASK_NOT_FOUND = "The referenced task was not found."


def attempt_of(tags: list[dict[str, str]]) -> int:
    """The controller's attempt number from a task's tags (1 when absent or odd)."""
    for tag in tags:
        if tag.get("key") == "ecs-job-controller/attempt" and str(tag.get("value", "")).isdigit():
            return max(1, int(tag["value"]))
    return 1


def patch_task_lifecycle(stack: PatchStack, ecs: Any, agent: SimulatedAgent, clock: Clock) -> None:
    """Hand every new task to the simulated agent, and StopTask too.

    Real ECS: a new task is PENDING with one container per container
    definition; the agent runs it and reports exit codes; StopTask stops a
    running task (exit code 137 for killed containers, stopCode
    UserInitiated), leaves a STOPPED one alone, and answers
    InvalidParameterException for an unknown task. moto: tasks are RUNNING at
    once with the first container only (named after the task definition
    ARN), drift toward STOPPED one state per DescribeTasks, and StopTask on a
    stopped task releases its resources a second time (on an unknown task it
    raises a plain exception, HTTP 500).
    """

    def creating(inner: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        def create(*args: Any, **kwargs: Any) -> list[Any]:
            # Task definition and overrides by name or position, as moto's
            # run_task and start_task take them (both have them 2nd and 4th).
            definition = kwargs.get("task_definition_str", args[1] if len(args) > 1 else None)
            overrides = kwargs.get("overrides", args[3] if len(args) > 3 else None)
            tags = kwargs.get("tags", args[5] if len(args) > 5 else None) or []
            task_definition = ecs.describe_task_definition(definition)
            # Validate the sandbox variables before anything is placed.
            script = agent.script(task_definition, overrides, attempt_of(tags))
            tasks = inner(*args, **kwargs)
            now = clock.now()
            for task in tasks:
                agent.adopt(task, task_definition, script, now)
            return tasks

        return create

    def stop_task(cluster_str: str, task_str: str, reason: str | None) -> Any:
        cluster = ecs._get_cluster(cluster_str)
        task_id = task_str.rsplit("/", maxsplit=1)[-1]
        for task in ecs.tasks.get(cluster.name, {}).values():
            if task.id == task_id:
                agent.stop_by_user(task, reason, clock.now())
                return task
        raise InvalidParameterException(TASK_NOT_FOUND)

    stack.wrap(ecs, "run_task", creating)
    stack.wrap(ecs, "start_task", creating)
    stack.replace(ecs, "stop_task", stop_task)
