"""Auto Scaling groups and their ECS container instances, as a pass observed them.

Shared by `controller.observe.capacity` (which reads them from AWS) and
`controller.plan.capacity` (which bin-packs waiting tasks into them), so it
lives in the model, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def usable(self) -> bool:
        """True when ECS would place a task here: ACTIVE and agent connected."""
        return self.active and self.connected


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
