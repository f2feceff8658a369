"""RunTask's clientToken idempotency and the rest of its response (fidelity patch c).

The controller's exactly-once start rests on ECS's clientToken: a RunTask
repeated with the same token within 24 hours returns the first call's tasks
and starts nothing. moto ignores the token; `ClientTokens` remembers it on
the sandbox's clock. The RunTask response patch also returns placement
`failures` (`placement.py`), honours `propagateTags` and defaults an awsvpc
configuration's security groups, as ECS does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException

from controller.sandbox.patches.stack import PatchStack

if TYPE_CHECKING:
    from controller.clock import Clock

#: How long ECS remembers a RunTask clientToken (per cluster).
CLIENT_TOKEN_LIFETIME = timedelta(hours=24)


class ConflictException(ECSException):
    """ECS's answer to a clientToken reused with different RunTask parameters."""

    def __init__(self, resource_ids: list[str]) -> None:
        super().__init__(
            "ConflictException",
            "The RunTask request could not be processed due to conflicts. The provided "
            "clientToken is already in use with a different RunTask request. The resourceIds "
            "are the existing task ARNs which are already associated with the clientToken.",
        )
        # Serialized as the error's `resourceIds` member, as in the ECS API model.
        self.resourceIds = resource_ids


@dataclass(frozen=True)
class IssuedRun:
    """What one RunTask with a clientToken produced."""

    parameters: Mapping[str, Any]
    tasks: list[Any]
    failures: list[dict[str, str]]
    issued_at: datetime


class ClientTokens:
    """RunTask clientTokens seen per cluster in the last 24 hours (sandbox clock).

    Real ECS: a RunTask repeated with the same clientToken within 24 hours on
    the same cluster returns the tasks of the first call and starts nothing;
    with different parameters it fails with ConflictException. moto ignores
    the token and starts new tasks on every call. A call that placed no task
    is not remembered, so a retry after a capacity failure can still place
    (AWS does not document this case; it is what the controller's retry of
    an unschedulable attempt needs).
    """

    def __init__(self) -> None:
        self._issued: dict[tuple[str, str], IssuedRun] = {}

    def lookup(
        self, cluster: str, token: str, parameters: Mapping[str, Any], now: datetime
    ) -> IssuedRun | None:
        """Return the earlier run of this token (None if new or expired); raise if it differs."""
        issued = self._issued.get((cluster, token))
        if issued is None:
            return None
        if now - issued.issued_at >= CLIENT_TOKEN_LIFETIME:
            del self._issued[(cluster, token)]
            return None
        if dict(issued.parameters) != dict(parameters):
            raise ConflictException([task.task_arn for task in issued.tasks])
        return issued

    def remember(
        self,
        cluster: str,
        token: str,
        *,
        parameters: Mapping[str, Any],
        tasks: list[Any],
        failures: list[dict[str, str]],
        now: datetime,
    ) -> None:
        """Record what a RunTask with this token produced (only if it started a task)."""
        if tasks:
            self._issued[(cluster, token)] = IssuedRun(dict(parameters), list(tasks), failures, now)


def cluster_name(cluster: str | None) -> str:
    """Return the short name of a cluster given by name or ARN (ECS's default: "default")."""
    return (cluster or "default").split("/")[-1]


#: RunTask request members that decide what is started (all but clientToken).
RUN_TASK_PARAMETERS = (
    "cluster",
    "taskDefinition",
    "count",
    "overrides",
    "startedBy",
    "tags",
    "launchType",
    "networkConfiguration",
    "group",
    "platformVersion",
    "capacityProviderStrategy",
    "propagateTags",
    "placementConstraints",
    "placementStrategy",
    "enableECSManagedTags",
    "enableExecuteCommand",
    "referenceId",
    "volumeConfigurations",
)


def propagate_task_definition_tags(task: Any, task_definition: Any) -> None:
    """Add the task definition's tags to a task (RunTask tags win on equal keys)."""
    keys = {tag["key"] for tag in task.tags}
    task.tags = list(task.tags) + [t for t in task_definition.tags or [] if t["key"] not in keys]


def patch_run_task_response(
    stack: PatchStack, response_cls: Any, tokens: ClientTokens, clock: Clock
) -> None:
    """RunTask's wire behaviour: failures, clientToken, propagateTags, default security group.

    Real ECS: the response carries placement `failures`; a repeated
    clientToken returns the first call's tasks (see `ClientTokens`);
    `propagateTags: TASK_DEFINITION` copies the task definition's tags to the
    tasks; an awsvpc configuration without `securityGroups` gets the VPC's
    default group. moto: `failures` is always empty, clientToken and
    propagateTags are ignored, and a missing `securityGroups` is an HTTP 500.
    """

    def run_task(self: Any) -> ActionResult:
        parameters = {name: self._get_param(name) for name in RUN_TASK_PARAMETERS}
        parameters["cluster"] = cluster_name(parameters["cluster"])
        parameters["count"] = parameters["count"] or 1
        awsvpc = (parameters["networkConfiguration"] or {}).get("awsvpcConfiguration")
        if awsvpc is not None:
            awsvpc.setdefault("securityGroups", [])
        token = self._get_param("clientToken")
        now = clock.now()
        if token:
            issued = tokens.lookup(parameters["cluster"], token, parameters, now)
            if issued is not None:
                return ActionResult({"tasks": issued.tasks, "failures": issued.failures})
        tasks = self.ecs_backend.run_task(
            parameters["cluster"],
            parameters["taskDefinition"],
            parameters["count"],
            parameters["overrides"],
            parameters["startedBy"],
            parameters["tags"],
            parameters["launchType"],
            parameters["networkConfiguration"],
            parameters["group"],
            parameters["platformVersion"],
            parameters["capacityProviderStrategy"],
        )
        failures: list[dict[str, str]] = list(getattr(tasks, "failures", []))
        if parameters["propagateTags"] == "TASK_DEFINITION":
            task_definition = self.ecs_backend.describe_task_definition(
                parameters["taskDefinition"]
            )
            for task in tasks:
                propagate_task_definition_tags(task, task_definition)
        if token:
            tokens.remember(
                parameters["cluster"],
                token,
                parameters=parameters,
                tasks=list(tasks),
                failures=failures,
                now=now,
            )
        return ActionResult({"tasks": list(tasks), "failures": failures})

    stack.replace(response_cls, "run_task", run_task)
