"""Simulated EC2 capacity: container instances, and Auto Scaling groups that join ECS.

In real AWS an instance an Auto Scaling group launches boots, starts the ECS
agent from its user data, and registers itself as a container instance of
its cluster a while later (typically 30-90 s); when the group terminates it,
its tasks stop and the container instance goes away. moto's Auto Scaling
launches EC2 instances but nothing ever registers them with ECS (DESIGN.md
§11), so the controller's scale-out would never produce capacity.

`Fleet` closes that gap on the sandbox clock, lazily like the agent:
`observe(now)` notes when each watched group's instances appeared (the
sandbox calls it after every request, so a SetDesiredCapacity at time t
launches at t), and `tick(now)` registers those whose registration delay
has passed, with the cpu and memory the group was declared with, and
removes the container instances of instances the group no longer has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller.sandbox.ecs_events import EcsEventEmitter
from controller.sandbox.patches import set_instance_resources

if TYPE_CHECKING:
    from controller.sandbox.agent import SimulatedAgent


@dataclass
class WatchedGroup:
    """An Auto Scaling group whose instances join an ECS cluster."""

    name: str
    cluster: str
    cpu: int
    memory: int
    registration_delay: timedelta
    #: instance id -> when the sandbox first saw it in the group
    launched_at: dict[str, datetime] = field(default_factory=dict)
    #: every instance seen in the group and not yet retired
    members: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class RetiredInstance:
    """An EC2 instance that left its group, and what it still ran then (a test's evidence)."""

    instance_id: str
    group: str | None
    at: datetime
    #: tasks still running on it when it was terminated: each one stopped
    #: with TerminationNotice (scale-in must never leave this above 0)
    running_tasks: int


@dataclass(frozen=True)
class Registration:
    """Where an EC2 instance is registered with ECS."""

    cluster: str
    container_instance_arn: str
    group: str | None


class Fleet:
    """Registers EC2 instances as ECS container instances, directly or via watched groups."""

    def __init__(
        self,
        ecs: Any,
        autoscaling: Any,
        agent: SimulatedAgent,
        events: EcsEventEmitter | None = None,
    ) -> None:
        self._ecs = ecs
        self._events = events
        self._autoscaling = autoscaling
        self._agent = agent
        self._groups: dict[str, WatchedGroup] = {}
        self._registered: dict[str, Registration] = {}  # EC2 instance id -> registration
        #: every instance retired so far, oldest first
        self.retired: list[RetiredInstance] = []

    def register(
        self,
        cluster: str,
        instance_id: str,
        *,
        cpu: int,
        memory: int,
        at: datetime,
        group: str | None = None,
    ) -> str:
        """Register one EC2 instance in `cluster` with exactly `cpu` and `memory`; its ARN."""
        instance = self._ecs.register_container_instance(cluster, instance_id)
        set_instance_resources(instance, cpu, memory)
        instance.registered_at = at
        self._registered[instance_id] = Registration(
            cluster, instance.container_instance_arn, group
        )
        if self._events is not None:
            self._events.instance_changed(instance, self._ecs.clusters[cluster].arn, at)
        return str(instance.container_instance_arn)

    def watch(self, group: WatchedGroup) -> None:
        """Make a group's instances join its cluster from now on."""
        self._groups[group.name] = group

    def observe(self, now: datetime) -> None:
        """Note the launch time of instances new in watched groups."""
        for group in self._groups.values():
            current = self._instance_ids(group.name)
            group.members |= current
            for instance_id in current:
                if instance_id not in self._registered:
                    group.launched_at.setdefault(instance_id, now)

    def tick(self, now: datetime) -> None:
        """Register instances whose delay has passed; retire those their group dropped."""
        self.observe(now)
        for group in self._groups.values():
            current = self._instance_ids(group.name)
            for instance_id, launched in list(group.launched_at.items()):
                if instance_id not in current:
                    del group.launched_at[instance_id]  # terminated before it registered
                elif launched + group.registration_delay <= now:
                    del group.launched_at[instance_id]
                    at = launched + group.registration_delay
                    self.register(
                        group.cluster,
                        instance_id,
                        cpu=group.cpu,
                        memory=group.memory,
                        at=at,
                        group=group.name,
                    )
            for instance_id in group.members - current:
                # Gone from the group (scaled in, terminated): it leaves ECS.
                group.members.discard(instance_id)
                registration = self._registered.get(instance_id)
                if registration is not None:
                    self._retire(instance_id, registration, now)

    def _instance_ids(self, group_name: str) -> set[str]:
        group = self._autoscaling.autoscaling_groups.get(group_name)
        if group is None:
            return set()
        return {state.instance.id for state in group.instance_states}

    def _retire(self, instance_id: str, registration: Registration, now: datetime) -> None:
        # The instance was terminated: its tasks stop, its registration ends.
        running = self._agent.tasks_on(registration.container_instance_arn)
        self.retired.append(RetiredInstance(instance_id, registration.group, now, len(running)))
        for task in running:
            reason = f"Host EC2 (instance {instance_id}) terminated. (simulated by the sandbox)"
            self._agent.stop_infrastructure(task, "TerminationNotice", reason, now)
        instances = self._ecs.container_instances.get(registration.cluster, {})
        if registration.container_instance_arn.split("/")[-1] in instances:
            self._ecs.deregister_container_instance(
                registration.cluster, registration.container_instance_arn, force=True
            )
        del self._registered[instance_id]
