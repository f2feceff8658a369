"""ECS container instances: how much room each one has left, and draining them (DESIGN.md §6).

The capacity planner packs waiting tasks into the free CPU and memory of a
group's container instances before it asks for new ones; scale-in reads
their task counts to find idle ones, and sets an idle one DRAINING (so ECS
places nothing new there) before its EC2 instance is terminated, or ACTIVE
again when a task landed on it meanwhile. It is separate from
`controller.aws.ecs` because only the capacity path needs it, and only in
passes where something waits for room or a group opted in to scale-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from controller.aws.errors import call
from controller.aws.session import AwsSession

#: DescribeContainerInstances takes at most 100 ARNs per call.
DESCRIBE_BATCH = 100

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient


@dataclass(frozen=True)
class ContainerInstanceState:
    """One container instance: its EC2 instance, status, and CPU/memory registered and left."""

    arn: str
    ec2_instance_id: str | None
    #: ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED, INACTIVE
    status: str
    agent_connected: bool
    registered_cpu: int
    registered_memory: int
    remaining_cpu: int
    remaining_memory: int
    #: when it registered with ECS (new room for runs that failed to be placed before)
    registered_at: datetime | None = None
    #: ECS's runningTasksCount and pendingTasksCount (scale-in's "idle")
    running_tasks: int = 0
    pending_tasks: int = 0

    @property
    def usable(self) -> bool:
        """True when ECS would place tasks here: ACTIVE with its agent connected."""
        return self.status == "ACTIVE" and self.agent_connected


def _resource(resources: Sequence[Mapping[str, Any]] | None, name: str) -> int:
    for resource in resources or ():
        if resource.get("name") == name:
            return int(resource.get("integerValue") or 0)
    return 0


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def container_instance_state(raw: Mapping[str, Any]) -> ContainerInstanceState:
    """Our view of one DescribeContainerInstances entry."""
    registered = raw.get("registeredResources")
    remaining = raw.get("remainingResources")
    instance_id = raw.get("ec2InstanceId")
    return ContainerInstanceState(
        arn=str(raw["containerInstanceArn"]),
        ec2_instance_id=str(instance_id) if instance_id else None,
        status=str(raw.get("status", "")),
        agent_connected=bool(raw.get("agentConnected", False)),
        registered_cpu=_resource(registered, "CPU"),
        registered_memory=_resource(registered, "MEMORY"),
        remaining_cpu=_resource(remaining, "CPU"),
        remaining_memory=_resource(remaining, "MEMORY"),
        registered_at=_time(raw.get("registeredAt")),
        running_tasks=int(raw.get("runningTasksCount") or 0),
        pending_tasks=int(raw.get("pendingTasksCount") or 0),
    )


@dataclass(frozen=True)
class StateChangeFailure:
    """A container instance UpdateContainerInstancesState could not change, and why."""

    arn: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.arn}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


class EcsInstanceGateway:
    """ListContainerInstances and DescribeContainerInstances, typed."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session

    @property
    def _ecs(self) -> ECSClient:
        return self._session.ecs()

    def list_container_instances(self, cluster: str) -> list[str]:
        """ARNs of the cluster's container instances, every status (paginated)."""
        pages = self._ecs.get_paginator("list_container_instances").paginate(cluster=cluster)
        answer = call("ListContainerInstances", lambda: list(pages))
        return [arn for page in answer for arn in page.get("containerInstanceArns") or []]

    def describe_container_instances(
        self, cluster: str, arns: Sequence[str]
    ) -> list[ContainerInstanceState]:
        """Describe container instances in batches of 100; ARNs ECS no longer knows are left out."""
        states: list[ContainerInstanceState] = []
        for start in range(0, len(arns), DESCRIBE_BATCH):
            states.extend(self._describe_batch(cluster, list(arns[start : start + DESCRIBE_BATCH])))
        return states

    def _describe_batch(self, cluster: str, arns: list[str]) -> list[ContainerInstanceState]:
        answer = call(
            "DescribeContainerInstances",
            lambda: self._ecs.describe_container_instances(
                cluster=cluster, containerInstances=arns
            ),
        )
        return [container_instance_state(raw) for raw in answer.get("containerInstances") or []]

    def set_state(
        self, cluster: str, arn: str, status: Literal["ACTIVE", "DRAINING"]
    ) -> list[StateChangeFailure]:
        """UpdateContainerInstancesState for one instance; what ECS could not change (MISSING...).

        DRAINING: ECS places no new task on the instance (a RunTask task
        already there keeps running). ACTIVE: it takes tasks again.
        """
        answer = call(
            "UpdateContainerInstancesState",
            lambda: self._ecs.update_container_instances_state(
                cluster=cluster, containerInstances=[arn], status=status
            ),
        )
        return [
            StateChangeFailure(
                str(f.get("arn", arn)), str(f.get("reason", "")), str(f.get("detail", ""))
            )
            for f in answer.get("failures") or []
        ]
