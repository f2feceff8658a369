"""Fidelity patches over moto's ECS and Auto Scaling models.

moto is a rough model of ECS (DESIGN.md §11). The controller's end-to-end
tests depend on a few behaviours moto does not have, so the sandbox replaces
single methods of moto's objects with versions that behave like real AWS.
Each `patch_*` function below installs one such change on a `PatchStack`;
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

The task lifecycle (the simulated agent) lives in `agent.py`, Auto Scaling
instances joining ECS in `fleet.py`; this module wires them into moto.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from moto.autoscaling.exceptions import ValidationError
from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException, InvalidParameterException

if TYPE_CHECKING:
    from controller.clock import Clock
    from controller.sandbox.agent import SimulatedAgent

#: moto's default account: credentials "testing" map to it.
ACCOUNT_ID = "123456789012"

NO_CONTAINER_INSTANCES = "No Container Instances were found in your cluster."
TASK_NOT_FOUND = "The referenced task was not found."
#: How long ECS remembers a RunTask clientToken (per cluster).
CLIENT_TOKEN_LIFETIME = timedelta(hours=24)
#: ECS's limits on DescribeTasks and ListTasks page sizes.
DESCRIBE_TASKS_LIMIT = 100
LIST_TASKS_PAGE = 100


class PatchStack:
    """Attribute replacements on moto objects, undone in reverse order."""

    def __init__(self) -> None:
        # (target, name, had its own attribute, original value)
        self._undo: list[tuple[Any, str, bool, Any]] = []

    def replace(self, target: Any, name: str, replacement: Any) -> None:
        """Set `target.name` to `replacement` until `uninstall_all()`."""
        own = vars(target)
        self._undo.append((target, name, name in own, own.get(name)))
        setattr(target, name, replacement)

    def wrap(self, target: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
        """Replace `target.name` by `wrapper(current value)`; patches stack up."""
        self.replace(target, name, wrapper(getattr(target, name)))

    def uninstall_all(self) -> None:
        """Put every original back, newest patch first."""
        while self._undo:
            target, name, had_own, original = self._undo.pop()
            if had_own:
                setattr(target, name, original)
            elif name in vars(target):
                # An inherited attribute (or none): drop our shadowing copy.
                delattr(target, name)

    def __len__(self) -> int:
        return len(self._undo)


# --- a. container instance and task resources ---------------------------------------------


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


# --- b. placement failures ------------------------------------------------------------------


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


# --- c. clientToken idempotency --------------------------------------------------------------


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


# --- DescribeTasks and ListTasks -------------------------------------------------------------


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


# --- d. the task lifecycle -------------------------------------------------------------------


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


# --- e. Auto Scaling -------------------------------------------------------------------------


def patch_desired_capacity_bounds(stack: PatchStack, autoscaling: Any) -> None:
    """SetDesiredCapacity must stay within MinSize..MaxSize.

    Real AWS: ValidationError "New SetDesiredCapacity value N is above max
    value M for the AutoScalingGroup." (or "below min value"), and
    ValidationError for an unknown group. moto: accepts any value and
    launches that many instances; an unknown group is an HTTP 500.
    """

    def wrapper(inner: Callable[[str, int | None], None]) -> Callable[[str, int | None], None]:
        def set_desired_capacity(group_name: str, desired_capacity: int | None) -> None:
            group = autoscaling.autoscaling_groups.get(group_name)
            if group is None:
                raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
            if desired_capacity is not None and desired_capacity > group.max_size:
                raise ValidationError(
                    f"New SetDesiredCapacity value {desired_capacity} is above max value "
                    f"{group.max_size} for the AutoScalingGroup."
                )
            if desired_capacity is not None and desired_capacity < group.min_size:
                raise ValidationError(
                    f"New SetDesiredCapacity value {desired_capacity} is below min value "
                    f"{group.min_size} for the AutoScalingGroup."
                )
            inner(group_name, desired_capacity)

        return set_desired_capacity

    stack.wrap(autoscaling, "set_desired_capacity", wrapper)


# --- DynamoDB: conditional writes are atomic --------------------------------------------

#: One lock for every DynamoDB write of every moto backend in this process.
_DYNAMODB_WRITES = threading.RLock()  # re-entrant: moto's batch and transact writes call put_item
DYNAMODB_WRITE_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
)


def patch_atomic_dynamodb_writes(stack: PatchStack, backend_cls: Any) -> None:
    """DynamoDB checks a write's condition and applies it as one step; moto does not.

    moto evaluates `ConditionExpression` and then stores the item without a
    lock, so two threads (the moto server's request threads, or in-process
    callers) can both pass `attribute_not_exists(pk)` and both "win" — a race
    real DynamoDB never loses. The ledger's exactly-once claim rests on that
    atomicity, so every write method of the backend class is serialised.
    Patched on the class: it applies to in-process moto in this process too.
    """
    for name in DYNAMODB_WRITE_METHODS:
        stack.wrap(backend_cls, name, _serialised)


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    def write(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITES:
            return method(*args, **kwargs)

    return write
