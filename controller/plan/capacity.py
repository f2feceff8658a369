"""Capacity planning for runs that ECS could not place (DESIGN.md §6).

Pure: takes the tasks waiting for room and the Auto Scaling groups' state
(`controller.observe.capacity` reads it), returns at most one
SetDesiredCapacity per group. No boto3, no I/O, no clock.

Why plan the whole need at once, and never +1. hako's
`autoscaling_group_for_oneshot` raises desired capacity by one per poll and
never looks at MaxSize: seven waiting tasks that need three instances take
three polls, each one a registration delay (30-90 s) apart, and it happily
asks for more than the group may have. Here the planner packs *every*
waiting task of a group at once and asks for all the instances they need in
one call, capped at MaxSize (and says so), never below the current desired
capacity (someone else may have asked for more), and not at all while
instances it asked for are still launching: they will register soon, and
only then is what they hold known for sure.

Why first-fit-decreasing. Choosing the fewest instances is bin packing
(NP-hard; two resources make it vector bin packing). FFD is the standard
fast answer: sort the tasks largest first, put each into the first instance
it fits (free capacity of the registered instances first, then instances
already on their way, then new ones), open a new instance only when none
fits. In one dimension it uses at most 11/9 OPT + 6/9 instances; with cpu
and memory together every FFD packing has at most one instance that is at
most half full in both resources, so it never needs more than four times the
lower bound ceil(total demand / instance size) and in practice is within a
few percent of it (`bench/capacity.py`). It is O(tasks x instances) and
deterministic, so `diff` and `reconcile` agree.

The FFD key: tasks sort by (cpu, memory) descending — cpu first because batch
tasks on general-purpose instances usually run out of cpu before memory
(256 units of 2048 is an eighth of an m5.large, 512 MiB a sixteenth),
memory to break ties — then by run key ascending, so equal
tasks keep a stable order. Instances are tried in order of instance id.

The plan is an estimate: ECS places tasks with its own strategy, not FFD,
and a new instance may register a little less memory than its instance type
advertises (the kernel keeps some). Every pass plans again from what it
observes, so an estimate that falls short is topped up once the new
instances have registered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from controller.model.capacity import GroupState
from controller.model.manifest import RunKey
from controller.model.taskdef import to_register_input


@dataclass(frozen=True, order=True)
class WaitingTask:
    """One task ECS could not place, and the Auto Scaling group that should make room.

    A run with `count: N` waits with N of these (the same run key).
    """

    run: RunKey
    #: CPU units (1 vCPU = 1024) and MiB the task reserves; see `task_size`
    cpu: int
    memory: int
    group: str


@dataclass(frozen=True)
class NeverFits:
    """A task larger than any instance of its group: Unschedulable at once."""

    task: WaitingTask
    reason: str


@dataclass(frozen=True)
class CapacityDecision:
    """The plan for one group: where each waiting task goes, and at most one SetDesiredCapacity.

    Every waiting task of the group is in exactly one of `fits_free`,
    `fits_launching`, `needs_new` and `never_fits`.
    """

    group: str
    #: the group's desired capacity when observed
    desired: int
    max_size: int
    #: SetDesiredCapacity to this value; None: no request this pass (`reason` says why)
    target: int | None
    #: tasks that fit the free capacity of registered, connected ACTIVE
    #: instances: a RunTask retry should place them without any scaling
    fits_free: tuple[WaitingTask, ...] = ()
    #: tasks that fit instances already requested but not registered yet
    fits_launching: tuple[WaitingTask, ...] = ()
    #: tasks that need room beyond that; `new_instances` is how many
    #: instances FFD packs them into (before any MaxSize cap)
    needs_new: tuple[WaitingTask, ...] = ()
    new_instances: int = 0
    #: tasks larger than one instance of the group, with the reason
    never_fits: tuple[NeverFits, ...] = ()
    #: the tasks of `needs_new` this decision gives no room: beyond MaxSize,
    #: or no request at all (launching, no instance size, group not found)
    without_room: tuple[WaitingTask, ...] = ()
    #: the need exceeded MaxSize: `target` is MaxSize (or no request when
    #: the group is already there); the caller reports it as an event
    capped: bool = False
    #: instances still launching that held back a new request (0: none did)
    waiting_for_launch: int = 0
    #: why there is no request ("" when `target` is set)
    reason: str = ""
    #: one line for humans, e.g. "SetDesiredCapacity batch-asg 2 -> 5 (7 tasks
    #: waiting: 3 fit on free capacity, 4 need 3 new instances)"
    summary: str = field(default="", compare=False)

    @property
    def scales_out(self) -> bool:
        """True when the decision asks for a SetDesiredCapacity."""
        return self.target is not None


# --- task sizes ---------------------------------------------------------------


def task_size(
    task_definition: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None = None,
    described_containers: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[int, int]:
    """(CPU units, MiB) one task reserves on an EC2 container instance, RunTask overrides applied.

    `task_definition` is a manifest's taskDefinition or a described revision
    (the same field names); `described_containers` stands in for its
    containerDefinitions when it has none (a taskDefinitionRef). ECS's rules:
    the task-level `cpu`/`memory` when set ("1 vCPU", "0.5 GB" allowed),
    else the sum over containers of `cpu` and of `memoryReservation` (the
    soft limit is what ECS subtracts from the instance), else `memory`.
    RunTask's task-level `cpu`/`memory` overrides replace the task-level
    values; `containerOverrides` replace a named container's `cpu`,
    `memory` and `memoryReservation`. Raises ValueError for a task-level
    value that is not a whole number of units (ECS would have refused it).
    """
    td = task_definition or {}
    over = overrides or {}
    containers = list(td.get("containerDefinitions") or described_containers or ())
    by_name: dict[str, Mapping[str, Any]] = {
        str(o["name"]): o for o in over.get("containerOverrides") or () if "name" in o
    }
    merged: list[dict[str, Any]] = []
    for container in containers:
        spec = dict(container)
        change = by_name.get(str(spec.get("name")), {})
        for key in ("cpu", "memory", "memoryReservation"):
            if change.get(key) is not None:
                spec[key] = change[key]
        merged.append(spec)

    task_cpu = over.get("cpu") if over.get("cpu") is not None else td.get("cpu")
    task_memory = over.get("memory") if over.get("memory") is not None else td.get("memory")
    if task_cpu is not None:
        cpu = _units("cpu", task_cpu)
    else:
        cpu = sum(int(c.get("cpu") or 0) for c in merged)
    if task_memory is not None:
        memory = _units("memory", task_memory)
    else:
        memory = sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in merged)
    return cpu, memory


def _units(name: str, value: Any) -> int:
    # The taskdef module already turns "1 vCPU" / "2 GB" into the API's
    # integer strings exactly as ECS does; one conversion, one set of rules.
    converted = to_register_input({name: value}).get(name)
    text = str(converted).strip()
    if not text.isdigit():
        raise ValueError(f"task-level {name} {value!r} is not a whole number of units")
    return int(text)


# --- planning -----------------------------------------------------------------


def ffd_key(task: WaitingTask) -> tuple[int, int, RunKey]:
    """The first-fit-decreasing order: (cpu, memory) descending, then run key ascending."""
    return (-task.cpu, -task.memory, task.run)


def plan_capacity(
    waiting: Sequence[WaitingTask], groups: Mapping[str, GroupState]
) -> dict[str, CapacityDecision]:
    """One decision per group that has waiting tasks, sorted by group name.

    A group named by a task but missing from `groups` (not found in Auto
    Scaling) gets a decision without a request that says so.
    """
    by_group: dict[str, list[WaitingTask]] = {}
    for task in waiting:
        by_group.setdefault(task.group, []).append(task)
    decisions: dict[str, CapacityDecision] = {}
    for name in sorted(by_group):
        tasks = sorted(by_group[name], key=ffd_key)
        state = groups.get(name)
        if state is None:
            decisions[name] = _group_not_found(name, tasks)
        else:
            decisions[name] = _plan_group(state, tasks)
    return decisions


def _fits(bin_: list[int], task: WaitingTask) -> bool:
    return task.cpu <= bin_[0] and task.memory <= bin_[1]


def _first_fit(bins: list[list[int]], task: WaitingTask) -> int | None:
    for index, bin_ in enumerate(bins):
        if _fits(bin_, task):
            bin_[0] -= task.cpu
            bin_[1] -= task.memory
            return index
    return None


def _plan_group(state: GroupState, tasks: Sequence[WaitingTask]) -> CapacityDecision:
    size = state.instance_size
    usable = sorted((i for i in state.instances if i.usable), key=lambda i: i.instance_id)
    free = [[i.remaining_cpu, i.remaining_memory] for i in usable]
    registered = len(state.instances)
    # Instances the current desired capacity already brings but that have
    # not registered (launching in EC2, or not even created yet): empty
    # instances of `size`, filled before any new one is counted.
    in_flight = max(0, state.desired - registered)
    coming: list[list[int]] = [[size[0], size[1]] for _ in range(in_flight)] if size else []
    largest = [(i.registered_cpu, i.registered_memory) for i in state.instances]
    if size is not None:
        largest.append(size)

    fits_free: list[WaitingTask] = []
    fits_launching: list[WaitingTask] = []
    needs_new: list[tuple[WaitingTask, int | None]] = []  # (task, index among new instances)
    never: list[NeverFits] = []
    for task in tasks:
        if largest and not any(task.cpu <= c and task.memory <= m for c, m in largest):
            never.append(NeverFits(task, _too_large(task, state.name, size or max(largest))))
            continue
        if _first_fit(free, task) is not None:
            fits_free.append(task)
            continue
        if size is None:
            needs_new.append((task, None))
            continue
        index = _first_fit(coming, task)
        if index is None and task.cpu <= size[0] and task.memory <= size[1]:
            coming.append([size[0] - task.cpu, size[1] - task.memory])
            index = len(coming) - 1
        if index is not None and index < in_flight:
            fits_launching.append(task)
        else:
            # index None: fits only a larger registered instance, which is
            # busy; new instances of `size` cannot take it either.
            needs_new.append((task, None if index is None else index - in_flight))
    new_instances = max(0, len(coming) - in_flight)

    target: int | None = None
    capped = False
    reason = ""
    waiting_for = 0
    granted = 0
    if needs_new and size is None:
        reason = (
            "the group's instance size is unknown (no registered instance, and no instance "
            "type in its launch template or configuration)"
        )
    elif needs_new and state.launching > 0 and state.desired > registered:
        waiting_for = state.launching
        reason = f"waiting for {_n(state.launching, 'launching instance')}"
    elif new_instances == 0:
        reason = _nothing_to_add(fits_free, fits_launching, needs_new, never)
    else:
        wanted = state.desired + new_instances
        capped = wanted > state.max_size
        ceiling = min(state.max_size, wanted)
        if ceiling > state.desired:
            target = ceiling
            granted = ceiling - state.desired
        else:
            reason = f"already at MaxSize {state.max_size}"
    without_room = tuple(
        sorted(t for t, index in needs_new if target is None or index is None or index >= granted)
    )
    decision = CapacityDecision(
        group=state.name,
        desired=state.desired,
        max_size=state.max_size,
        target=target,
        fits_free=tuple(sorted(fits_free)),
        fits_launching=tuple(sorted(fits_launching)),
        needs_new=tuple(sorted(t for t, _ in needs_new)),
        new_instances=new_instances,
        never_fits=tuple(sorted(never, key=lambda n: n.task)),
        without_room=without_room,
        capped=capped,
        waiting_for_launch=waiting_for,
        reason=reason,
    )
    return _with_summary(decision, size_known=size is not None)


def _group_not_found(name: str, tasks: Sequence[WaitingTask]) -> CapacityDecision:
    ordered = tuple(sorted(tasks))
    decision = CapacityDecision(
        group=name,
        desired=0,
        max_size=0,
        target=None,
        needs_new=ordered,
        without_room=ordered,
        reason=f"Auto Scaling group {name} not found",
    )
    return _with_summary(decision, size_known=False)


def _too_large(task: WaitingTask, group: str, size: tuple[int, int]) -> str:
    return (
        f"the task needs {task.cpu} CPU units and {task.memory} MiB, more than one instance "
        f"of {group} has ({size[0]} CPU units, {size[1]} MiB)"
    )


def _nothing_to_add(
    fits_free: Sequence[WaitingTask],
    fits_launching: Sequence[WaitingTask],
    needs_new: Sequence[tuple[WaitingTask, int | None]],
    never: Sequence[NeverFits],
) -> str:
    if needs_new:
        return "the tasks without room fit only larger instances than new ones would be"
    if fits_launching:
        return "the waiting tasks fit on free capacity and instances already launching"
    if fits_free:
        return "the waiting tasks fit on free capacity"
    return "no waiting task fits one instance"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _verb(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _with_summary(decision: CapacityDecision, *, size_known: bool) -> CapacityDecision:
    waiting = (
        len(decision.fits_free)
        + len(decision.fits_launching)
        + len(decision.needs_new)
        + len(decision.never_fits)
    )
    parts = [f"{_verb(len(decision.fits_free), 'fits', 'fit')} on free capacity"]
    if decision.fits_launching:
        count = len(decision.fits_launching)
        parts.append(f"{_verb(count, 'fits', 'fit')} on instances already launching")
    if decision.needs_new:
        need = _verb(len(decision.needs_new), "needs", "need")
        if size_known and decision.new_instances:
            parts.append(f"{need} {_n(decision.new_instances, 'new instance')}")
        else:
            parts.append(f"{need} new instances")
    if decision.never_fits:
        count = len(decision.never_fits)
        parts.append(f"{count} can never fit one instance")
    counts = f"{_n(waiting, 'task')} waiting: {', '.join(parts)}"
    if decision.target is not None:
        text = f"SetDesiredCapacity {decision.group} {decision.desired} -> {decision.target}"
        text += f" ({counts})"
        if decision.capped:
            left = len(decision.without_room)
            text += f"; capped at MaxSize {decision.max_size}: {_n(left, 'task')} left without room"
    else:
        text = f"No SetDesiredCapacity for {decision.group}: {decision.reason} ({counts})"
    return replace(decision, summary=text)
