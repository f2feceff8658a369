"""DescribeTasks and ListTasks as ECS answers them on the wire.

moto's DescribeTasks searches every cluster by substring and never answers
MISSING; its ListTasks ignores ECS's default `desiredStatus` filter and never
paginates. The controller's observation depends on both (a vanished task,
a cluster with more than 100 tasks), so these response handlers are
replaced on moto's ECS response class.
"""

from __future__ import annotations

import base64
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException

from controller.sandbox.patches.stack import PatchStack

#: moto's default account: credentials "testing" map to it.
ACCOUNT_ID = "123456789012"


#: ECS's limits on DescribeTasks and ListTasks page sizes.
DESCRIBE_TASKS_LIMIT = 100
LIST_TASKS_PAGE = 100


def task_arn(region: str, cluster: str, task_id: str) -> str:
    """Return the (long format) ARN of a task."""
    return f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task/{cluster}/{task_id}"


def patch_describe_tasks(stack: PatchStack, response_cls: Any) -> None:
    """DescribeTasks answers MISSING for tasks it does not know.

    Real ECS: looks the tasks up in the given cluster only, returns unknown
    (or forgotten) ones as `failures: [{"arn": ..., "reason": "MISSING"}]`,
    and rejects more than 100 tasks per call. moto: searches every cluster by
    substring, never returns failures, has no limit, and advances each
    described task's state (see `agent.py` for how task state moves here).
    """

    def describe_tasks(self: Any) -> ActionResult:
        ecs = self.ecs_backend
        cluster = ecs._get_cluster(self._get_param("cluster", "default"))
        references: list[str] = self._get_param("tasks", [])
        if not references:
            raise InvalidParameterException("Tasks cannot be empty.")
        if len(references) > DESCRIBE_TASKS_LIMIT:
            raise InvalidParameterException(
                f"Tasks cannot have more than {DESCRIBE_TASKS_LIMIT} elements."
            )
        by_id = {task.id: task for task in ecs.tasks.get(cluster.name, {}).values()}
        tasks: list[Any] = []
        failures: list[dict[str, str]] = []
        for reference in references:
            task_id = reference.split("/")[-1]
            if task_id in by_id:
                tasks.append(by_id[task_id])
            else:
                arn = reference if reference.startswith("arn:") else None
                arn = arn or task_arn(ecs.region_name, cluster.name, task_id)
                failures.append({"arn": arn, "reason": "MISSING"})
        if "TAGS" in self._get_param("include", []):
            self._include_in_response("DescribeTasksResponse.tasks.Task.tags")
        else:
            self._exclude_from_response("DescribeTasksResponse.tasks.Task.tags")
        return ActionResult({"tasks": tasks, "failures": failures})

    stack.replace(response_cls, "describe_tasks", describe_tasks)


def page_token(offset: int) -> str:
    """Encode a ListTasks offset as an opaque nextToken."""
    return base64.urlsafe_b64encode(f"sandbox:{offset}".encode()).decode()


def page_offset(token: str | None) -> int:
    """Decode the offset a ListTasks nextToken stands for."""
    if not token:
        return 0
    try:
        prefix, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        if prefix == "sandbox":
            return int(offset)
    except ValueError:
        pass
    raise InvalidParameterException("Invalid nextToken.")


def patch_list_tasks(stack: PatchStack, response_cls: Any) -> None:
    """ListTasks with ECS's default filter, exact cluster match and pagination.

    Real ECS: without `desiredStatus` only tasks whose desired status is
    RUNNING are listed; STOPPED tasks are listed with
    `desiredStatus=STOPPED` until ECS forgets them; pages hold at most
    `maxResults` (default and maximum 100) ARNs with a `nextToken`. moto:
    lists every task when `desiredStatus` is absent, matches the cluster by
    substring ("batch" also lists "batch-2"), and never paginates.
    """

    def list_tasks(self: Any) -> ActionResult:
        ecs = self.ecs_backend
        cluster_str = self._get_param("cluster", "default")
        cluster = ecs._get_cluster(cluster_str)
        tasks = ecs.list_tasks(
            cluster_str,
            self._get_param("containerInstance"),
            self._get_param("family"),
            self._get_param("startedBy"),
            self._get_param("serviceName"),
            self._get_param("desiredStatus") or "RUNNING",
        )
        launch_type = self._get_param("launchType")
        arns = [
            task.task_arn
            for task in tasks
            if task.cluster_arn == cluster.arn
            and (not launch_type or task.launch_type == launch_type)
        ]
        page = min(int(self._get_param("maxResults") or LIST_TASKS_PAGE), LIST_TASKS_PAGE)
        start = page_offset(self._get_param("nextToken"))
        result: dict[str, Any] = {"taskArns": arns[start : start + page]}
        if start + page < len(arns):
            result["nextToken"] = page_token(start + page)
        return ActionResult(result)

    stack.replace(response_cls, "list_tasks", list_tasks)
