"""Auto Scaling groups and their ECS container instances, as a pass observed them.

Shared by `controller.observe.capacity` (which reads them from AWS),
`controller.plan.capacity` (which bin-packs waiting tasks into them) and
`controller.plan.scale_in` (which gives idle ones back), so it lives in the
model, below all three. Also the two records scale-in keeps in the ledger
(`IdleInstance`, and the group reports `status` shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InstanceCapacity:
    """One container instance of a group, as ECS reports it."""

    instance_id: str
    remaining_cpu: int
    remaining_memory: int
    registered_cpu: int
    registered_memory: int
    #: ECS status ACTIVE (not DRAINING, REGISTERING, ...)
    active: bool
    #: the ECS agent is connected: ECS places tasks only on such instances
    connected: bool
    #: when it registered with ECS (None: not reported)
    registered_at: datetime | None = None
    #: the container instance's ARN and cluster (what UpdateContainerInstancesState needs)
    arn: str = ""
    cluster: str = ""
    #: ECS status DRAINING: no new task is placed here
    draining: bool = False
    #: ECS's runningTasksCount and pendingTasksCount
    running_tasks: int = 0
    pending_tasks: int = 0
    #: Auto Scaling's ProtectedFromScaleIn for the EC2 instance
    protected: bool = False

    @property
    def usable(self) -> bool:
        """True when ECS would place a task here: ACTIVE and agent connected."""
        return self.active and self.connected

    @property
    def empty(self) -> bool:
        """True when ECS reports no task on it, running or pending (and its agent reports)."""
        return self.connected and self.running_tasks == 0 and self.pending_tasks == 0


@dataclass(frozen=True)
class GroupState:
    """An Auto Scaling group and its capacity in ECS, as one pass observed it."""

    name: str
    min_size: int
    max_size: int
    desired: int
    #: container instances registered in ECS whose EC2 instance is an
    #: in-service (or pending) member of the group, usable or not: every one
    #: of them occupies a slot of the desired capacity
    instances: tuple[InstanceCapacity, ...] = ()
    #: members (InService or Pending in EC2) not registered with ECS yet
    launching: int = 0
    #: (CPU units, MiB) of one new instance: the group's largest registered
    #: instance, else its launch template's or configuration's instance type;
    #: None when neither is known (the group then cannot be scaled)
    instance_size: tuple[int, int] | None = None
    #: the group's tags (the scale-in opt-in and its settings)
    tags: Mapping[str, str] = field(default_factory=dict)
    #: False when its container instances were not read this pass (a
    #: scale-in candidate with no instance above MinSize): `instances` is
    #: then empty without meaning that none is registered
    instances_read: bool = True
    #: InService and Pending members as Auto Scaling lists them (None: count
    #: `instances` and `launching`, which together are exactly those)
    live_members: int | None = None

    @property
    def live(self) -> int:
        """Members that hold a slot of the desired capacity (registered or launching)."""
        if self.live_members is not None:
            return self.live_members
        return len(self.instances) + self.launching


@dataclass(frozen=True)
class IdleInstance:
    """An instance scale-in saw empty, kept in the ledger so a restart keeps its idle clock.

    `draining_since` is set (before UpdateContainerInstancesState is sent,
    like an intent) once the controller decided to release it; only an
    instance with it set is ever terminated, and only on a later pass.
    """

    instance_id: str
    group: str
    cluster: str
    #: when a pass first saw it ACTIVE with no running or pending task
    idle_since: datetime
    draining_since: datetime | None = None


@dataclass(frozen=True)
class GroupReport:
    """What the last pass saw of one scale-in group, for `status` (kept in the pass summary)."""

    name: str
    min_size: int
    max_size: int
    desired: int
    #: the group's live members (InService or Pending)
    instances: int
    #: EC2 instance ids idle now (draining ones included)
    idle: tuple[str, ...] = ()
    draining: tuple[str, ...] = ()
    #: the instance the controller releases next, and when (None: none planned)
    next_release: str | None = None
    next_release_at: datetime | None = None
    #: one line: what scale-in does or why it waits
    message: str = ""
