"""A simulated ECS container agent: what happens to a task after RunTask.

Real ECS hands each task to the agent on a container instance (or to
Fargate), which starts its containers and reports each container's exit code
when it ends; the task stops when an essential container exits, and ECS
forgets a stopped task about an hour later. moto models none of that (a task
is RUNNING at once, has one container, and drifts to STOPPED one state per
DescribeTasks). This agent plays the part on the sandbox clock, lazily: it
acts only when `tick(now)` is called, which the sandbox does before every
request it serves and in `Sandbox.tick()`. No threads, so tests are
deterministic: only the (fake) clock moves time.

What a task does is scripted by **sandbox-only** environment variables in
its container definitions, with RunTask `overrides.containerOverrides[]
.environment` applied on top. Real ECS gives them no meaning; a real
container would simply see them in its environment.

``SANDBOX_DURATION_SECONDS``
    How long the container runs after RunTask (default 1). The task stops
    when its first essential container ends.
``SANDBOX_EXIT_CODE``
    The container's exit code (default 0), or a comma list of codes, one per
    attempt (the task's ``ecs-job-controller/attempt`` tag picks the entry,
    the last one repeats): ``"3,0"`` fails the first attempt and succeeds on
    the retry.
``SANDBOX_STOP_CODE``
    Optional: stop the task for an infrastructure reason instead, e.g.
    ``TaskFailedToStart`` (never runs) or ``SpotInterruption``; then no
    container has an exit code. A comma list is one entry per attempt, as
    for the exit code, an empty entry meaning a normal run:
    ``"SpotInterruption,"`` interrupts the first attempt only.

A task's life here: PENDING in the RunTask response; RUNNING from the next
tick on (`startedAt` = `createdAt`: pulling images takes no time); STOPPED
at `createdAt` + duration with stopCode EssentialContainerExited and every
container's own exit code; forgotten `forget_after` later (gone from
ListTasks, MISSING in DescribeTasks). StopTask stops it at once with stopCode
UserInitiated and exit code 137 for containers that were running.

Containers that use the ``awslogs`` driver get two log lines (start, exit)
in their stream ``PREFIX/CONTAINER/TASK_ID`` when the log group exists, so
`controller logs` has something to show.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import Container
from moto.moto_api._internal import mock_random

from controller.sandbox.ecs_events import EcsEventEmitter

#: moto's container model, untyped here: mypy sees moto's CloudFormation
#: base class as abstract, though moto itself instantiates it.
_CONTAINER_MODEL: Any = Container

DURATION_VARIABLE = "SANDBOX_DURATION_SECONDS"
EXIT_CODE_VARIABLE = "SANDBOX_EXIT_CODE"
STOP_CODE_VARIABLE = "SANDBOX_STOP_CODE"
DEFAULT_DURATION_SECONDS = 1.0

#: Exit code of a container killed by StopTask (SIGKILL after the stop timeout).
KILLED_EXIT_CODE = 137
ESSENTIAL_EXITED_REASON = "Essential container in task exited"
USER_STOPPED_REASON = "Task stopped by user"

#: ECS's stop codes for infrastructure stops, and the stoppedReason the
#: sandbox reports with them (modelled on real messages, marked as simulated).
INFRASTRUCTURE_STOPS = {
    "TaskFailedToStart": (
        "CannotPullContainerError: simulated by the sandbox (SANDBOX_STOP_CODE=TaskFailedToStart)"
    ),
    "SpotInterruption": "Your Spot Task was interrupted. (simulated by the sandbox)",
    "TerminationNotice": "Host EC2 instance terminated. (simulated by the sandbox)",
    "ServiceSchedulerInitiated": "Stopped by the service scheduler. (simulated by the sandbox)",
}


@dataclass(frozen=True)
class ContainerScript:
    """What one container of a task will do."""

    name: str
    essential: bool
    duration: timedelta
    exit_code: int


@dataclass(frozen=True)
class TaskScript:
    """What a task will do, read from its containers' sandbox variables."""

    containers: tuple[ContainerScript, ...]
    stop_code: str | None

    @property
    def duration(self) -> timedelta:
        """Time from RunTask until the first essential container ends."""
        essential = [c.duration for c in self.containers if c.essential]
        return min(essential or [c.duration for c in self.containers])

    @property
    def fails_to_start(self) -> bool:
        """Whether the task never reaches RUNNING."""
        return self.stop_code == "TaskFailedToStart"


def effective_environment(
    container_definition: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, str]:
    """Return a container's environment: its definition's, RunTask's override on top."""
    environment = {
        e["name"]: e.get("value", "") for e in container_definition.get("environment") or []
    }
    for override in (overrides or {}).get("containerOverrides") or []:
        if override.get("name") == container_definition.get("name"):
            environment.update(
                {e["name"]: e.get("value", "") for e in override.get("environment") or []}
            )
    return environment


def _number(environment: Mapping[str, str], name: str, default: float) -> float:
    value = environment.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise InvalidParameterException(
            f"sandbox: {name} must be a number, got {value!r}"
        ) from None


def _exit_code(environment: Mapping[str, str], attempt: int) -> float:
    value = environment.get(EXIT_CODE_VARIABLE)
    if value is None or "," not in value:
        return _number(environment, EXIT_CODE_VARIABLE, 0)
    codes = [code.strip() for code in value.split(",")]
    chosen = codes[min(attempt, len(codes)) - 1]
    return _number({EXIT_CODE_VARIABLE: chosen}, EXIT_CODE_VARIABLE, 0)


def _stop_code(environment: Mapping[str, str], attempt: int) -> str | None:
    """The SANDBOX_STOP_CODE entry of `attempt`: None for an empty one (the task runs)."""
    value = environment.get(STOP_CODE_VARIABLE)
    if value is None or "," not in value:
        return value
    codes = [code.strip() for code in value.split(",")]
    return codes[min(attempt, len(codes)) - 1] or None


def script_for(
    container_definitions: list[dict[str, Any]],
    overrides: Mapping[str, Any] | None,
    attempt: int = 1,
) -> TaskScript:
    """Read the sandbox variables of every container; reject malformed values."""
    containers: list[ContainerScript] = []
    stop_code: str | None = None
    for definition in container_definitions:
        environment = effective_environment(definition, overrides)
        duration = _number(environment, DURATION_VARIABLE, DEFAULT_DURATION_SECONDS)
        exit_code = _exit_code(environment, attempt)
        if duration < 0 or exit_code != int(exit_code):
            raise InvalidParameterException(
                f"sandbox: {DURATION_VARIABLE} must be >= 0 and {EXIT_CODE_VARIABLE} an integer"
            )
        code = _stop_code(environment, attempt)
        if code is not None:
            if code not in INFRASTRUCTURE_STOPS:
                raise InvalidParameterException(
                    f"sandbox: {STOP_CODE_VARIABLE} must be one of {sorted(INFRASTRUCTURE_STOPS)}"
                )
            stop_code = stop_code or code
        containers.append(
            ContainerScript(
                name=definition["name"],
                essential=definition.get("essential", True) is not False,
                duration=timedelta(seconds=duration),
                exit_code=int(exit_code),
            )
        )
    return TaskScript(tuple(containers), stop_code)


@dataclass
class _Run:
    """A task the agent looks after, with its script."""

    task: Any
    task_definition: Any
    script: TaskScript


class SimulatedAgent:
    """Moves sandbox tasks through PENDING, RUNNING and STOPPED, and forgets them."""

    def __init__(
        self,
        ecs: Any,
        *,
        forget_after: timedelta,
        logs: Any = None,
        events: EcsEventEmitter | None = None,
    ) -> None:
        self._ecs = ecs
        self._logs = logs
        #: where state changes go as ECS events (None: nobody listens)
        self._events = events
        self._forget_after = forget_after
        self._runs: dict[str, _Run] = {}
        self._pending: list[str] = []
        # Heaps of (when, sequence, task ARN); the sequence keeps ties in order.
        self._stops: list[tuple[datetime, int, str]] = []
        self._forgets: list[tuple[datetime, int, str]] = []
        self._sequence = itertools.count()

    def script(
        self, task_definition: Any, overrides: Mapping[str, Any] | None, attempt: int = 1
    ) -> TaskScript:
        """Read the script of a task about to start (rejects malformed sandbox variables)."""
        return script_for(task_definition.container_definitions, overrides, attempt)

    def adopt(self, task: Any, task_definition: Any, script: TaskScript, now: datetime) -> None:
        """Take over a task moto just created: PENDING, one container per definition."""
        task.status = "PENDING"
        task.created_at = now
        task.started_at = None
        task.stopping_at = task.stopped_at = task.execution_stopped_at = None
        task.stop_code = None
        task.stopped_reason = None
        if not task.launch_type and not task.capacity_provider_name:
            task.launch_type = "EC2"
        # What the task reserves, in plain units as ECS reports them ("1 vCPU" -> "1024").
        requirements = task.resource_requirements or {}
        task.cpu = str(requirements.get("CPU", 0))
        task.memory = str(requirements.get("MEMORY", 0))
        task.containers = [
            self._container(task, task_definition, definition)
            for definition in task_definition.container_definitions
        ]
        self._runs[task.task_arn] = _Run(task, task_definition, script)
        self._pending.append(task.task_arn)
        heapq.heappush(self._stops, (now + script.duration, next(self._sequence), task.task_arn))
        self._changed(task, now)

    def _changed(self, task: Any, now: datetime) -> None:
        if self._events is not None:
            self._events.task_changed(task, now)

    def _container(self, task: Any, task_definition: Any, definition: Mapping[str, Any]) -> Any:
        # moto's Container model describes the first container definition
        # only; build one per definition and correct its fields.
        container = _CONTAINER_MODEL(task_definition)
        container.container_arn = (
            f"arn:aws:ecs:{task.region_name}:{self._ecs.account_id}:container/"
            f"{task.cluster_name}/{task.id}/{mock_random.uuid4()}"
        )
        container.task_arn = task.task_arn
        container.name = definition["name"]
        container.image = definition.get("image")
        container.cpu = str(definition.get("cpu") or 0)
        container.memory = _optional_str(definition.get("memory"))
        container.memory_reservation = _optional_str(definition.get("memoryReservation"))
        container.last_status = "PENDING"
        container.exitCode = None  # moto's attribute name; no exit code until it stops
        container.reason = None
        container.health_status = "UNKNOWN"
        return container

    def tick(self, now: datetime) -> None:
        """Bring every task up to `now`: start, stop and forget what is due."""
        pending, self._pending = self._pending, []
        for arn in pending:
            run = self._runs.get(arn)
            if run and run.task.status == "PENDING" and not run.script.fails_to_start:
                self._start(run, now)
        while self._stops and self._stops[0][0] <= now:
            when, _, arn = heapq.heappop(self._stops)
            run = self._runs.get(arn)
            if run and run.task.status != "STOPPED":
                if run.task.status == "PENDING" and not run.script.fails_to_start:
                    self._start(run, when)  # started and ended between two ticks
                self._finish_by_script(run, when)
        while self._forgets and self._forgets[0][0] <= now:
            _, _, arn = heapq.heappop(self._forgets)
            run = self._runs.pop(arn, None)
            if run:
                self._ecs.tasks.get(run.task.cluster_name, {}).pop(arn, None)

    def stop_by_user(self, task: Any, reason: str | None, now: datetime) -> None:
        """StopTask: stop at once, killing running containers; a STOPPED task stays as it is."""
        if task.status == "STOPPED":
            return
        for container in task.containers:
            if container.last_status == "RUNNING":
                container.exitCode = KILLED_EXIT_CODE
            container.last_status = "STOPPED"
        self._stopped(task, "UserInitiated", reason or USER_STOPPED_REASON, now)

    def stop_infrastructure(self, task: Any, stop_code: str, reason: str, now: datetime) -> None:
        """Stop a task for an infrastructure reason (its instance went away): no exit codes."""
        if task.status == "STOPPED":
            return
        for container in task.containers:
            container.last_status = "STOPPED"
        self._stopped(task, stop_code, reason, now)

    def tasks_on(self, container_instance_arn: str) -> list[Any]:
        """List the agent's not yet stopped tasks on one container instance."""
        return [
            run.task
            for run in self._runs.values()
            if run.task.container_instance_arn == container_instance_arn
            and run.task.status != "STOPPED"
        ]

    def _start(self, run: _Run, now: datetime) -> None:
        task = run.task
        task.status = "RUNNING"
        task.started_at = task.created_at
        for container in task.containers:
            container.last_status = "RUNNING"
            self._log(run, container.name, "started (sandbox)", task.created_at)
        self._changed(task, now)

    def _finish_by_script(self, run: _Run, when: datetime) -> None:
        task, script = run.task, run.script
        codes = {c.name: c.exit_code for c in script.containers}
        for container in task.containers:
            container.last_status = "STOPPED"
            if script.stop_code is None:
                container.exitCode = codes[container.name]
                self._log(
                    run, container.name, f"exited with code {container.exitCode} (sandbox)", when
                )
            elif script.fails_to_start:
                container.reason = INFRASTRUCTURE_STOPS[script.stop_code]
        if script.stop_code is None:
            self._stopped(task, "EssentialContainerExited", ESSENTIAL_EXITED_REASON, when)
        else:
            self._stopped(task, script.stop_code, INFRASTRUCTURE_STOPS[script.stop_code], when)

    def _stopped(self, task: Any, stop_code: str, reason: str, when: datetime) -> None:
        task.status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stop_code = stop_code
        task.stopped_reason = reason
        task.stopping_at = task.stopped_at = task.execution_stopped_at = when
        self._release(task)
        self._changed(task, when)
        heapq.heappush(
            self._forgets, (when + self._forget_after, next(self._sequence), task.task_arn)
        )

    def _release(self, task: Any) -> None:
        # Give the task's cpu, memory and ports back to its instance, as
        # moto's own StopTask does.
        if not task.container_instance_arn:
            return
        instances = self._ecs.container_instances.get(task.cluster_name, {})
        instance = instances.get(task.container_instance_arn.split("/")[-1])
        if instance is not None:
            self._ecs.update_container_instance_resources(
                instance, task.resource_requirements, removing=True
            )
            self._ecs.update_cluster_resources(self._ecs.clusters[task.cluster_name], -1)

    def _log(self, run: _Run, container_name: str, message: str, when: datetime) -> None:
        # One line in the container's awslogs stream, if its log group exists.
        if self._logs is None:
            return
        definition = next(
            d for d in run.task_definition.container_definitions if d["name"] == container_name
        )
        configuration = definition.get("logConfiguration") or {}
        options = configuration.get("options") or {}
        group = self._logs.groups.get(options.get("awslogs-group"))
        if configuration.get("logDriver") != "awslogs" or group is None:
            return
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{container_name}/{run.task.id}" if prefix else run.task.id
        self._logs.ensure_log_stream(group.name, stream)
        # Straight to the stream: the backend's PutLogEvents drops events more
        # than 14 days from the wall clock, and a fake clock can be anywhere.
        event = {
            "timestamp": int(when.timestamp() * 1000),
            "message": f"{container_name} {message}",
        }
        group.streams[stream].put_log_events([event])


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
