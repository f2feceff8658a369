"""Reads what the capacity planner needs: groups, their container instances, new-instance size.

`controller.plan.capacity` is pure; this is its observe step (DESIGN.md §6,
§7). It runs only in passes where some task waits for room, so a steady
pass costs no Auto Scaling or EC2 call at all. Per pass it makes one
DescribeAutoScalingGroups per 100 groups, one ListContainerInstances per
cluster (paginated) plus one DescribeContainerInstances per 100 instances,
and — only for a group with no registered instance — the launch-template
(or configuration) read and one DescribeInstanceTypes for all such groups.

How members and container instances meet: by EC2 instance id. A member that
is InService or Pending in Auto Scaling and registered in one of the
group's clusters is one of its `instances`; one that is not registered yet
is `launching`. Members in other lifecycle states (Terminating, Standby,
Detaching) count for neither: they no longer hold a slot of the desired
capacity. A group is assumed to serve the clusters of the runs that name it;
a member registered in some other cluster looks as if it were still
launching, which holds back further scale-out until those runs' tasks give
up at their maxPendingSeconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from controller.aws.autoscaling import AutoScalingGateway, GroupDescription
from controller.aws.ecs_instances import ContainerInstanceState, EcsInstanceGateway
from controller.model.capacity import GroupState, InstanceCapacity


@dataclass(frozen=True)
class ObservedCapacity:
    """What one pass read about the groups runs wait on."""

    #: each named group that exists (unknown groups are left out), by name
    groups: dict[str, GroupState] = field(default_factory=dict)
    #: cluster -> how many container instances ListContainerInstances
    #: returned: the loop's cheap look compares against it to notice new ones
    instance_counts: dict[str, int] = field(default_factory=dict)


def observe_capacity(
    ecs_instances: EcsInstanceGateway,
    autoscaling: AutoScalingGateway,
    clusters_by_group: Mapping[str, Set[str]],
) -> ObservedCapacity:
    """The state of each named group that exists, and the instance count of their clusters."""
    groups = autoscaling.describe_groups(clusters_by_group)
    clusters = sorted({c for name in groups for c in clusters_by_group[name]})
    registered: dict[str, dict[str, ContainerInstanceState]] = {}
    counts: dict[str, int] = {}
    for cluster in clusters:
        arns = ecs_instances.list_container_instances(cluster)
        counts[cluster] = len(arns)
        by_instance: dict[str, ContainerInstanceState] = {}
        for state in ecs_instances.describe_container_instances(cluster, arns):
            # A deregistered (INACTIVE) record holds no capacity; the EC2
            # instance may have registered again since.
            if state.ec2_instance_id and state.status != "INACTIVE":
                by_instance[state.ec2_instance_id] = state
        registered[cluster] = by_instance

    partial: dict[str, tuple[GroupDescription, tuple[InstanceCapacity, ...], int]] = {}
    for name in sorted(groups):
        group = groups[name]
        found: list[InstanceCapacity] = []
        launching = 0
        for member in group.instances:
            if not member.live:
                continue
            registration = _registration(member.instance_id, clusters_by_group[name], registered)
            if registration is None:
                launching += 1
            else:
                found.append(_capacity(member.instance_id, registration))
        partial[name] = (group, tuple(found), launching)

    sizes = _instance_sizes(autoscaling, partial)
    states = {
        name: GroupState(
            name=name,
            min_size=group.min_size,
            max_size=group.max_size,
            desired=group.desired,
            instances=instances,
            launching=launching,
            instance_size=sizes.get(name),
        )
        for name, (group, instances, launching) in partial.items()
    }
    return ObservedCapacity(states, counts)


def _registration(
    instance_id: str,
    clusters: Set[str],
    registered: Mapping[str, Mapping[str, ContainerInstanceState]],
) -> ContainerInstanceState | None:
    for cluster in sorted(clusters):
        state = registered.get(cluster, {}).get(instance_id)
        if state is not None:
            return state
    return None


def _capacity(instance_id: str, state: ContainerInstanceState) -> InstanceCapacity:
    return InstanceCapacity(
        instance_id=instance_id,
        remaining_cpu=state.remaining_cpu,
        remaining_memory=state.remaining_memory,
        registered_cpu=state.registered_cpu,
        registered_memory=state.registered_memory,
        active=state.status == "ACTIVE",
        connected=state.agent_connected,
        registered_at=state.registered_at,
    )


def _instance_sizes(
    autoscaling: AutoScalingGateway,
    groups: Mapping[str, tuple[GroupDescription, tuple[InstanceCapacity, ...], int]],
) -> dict[str, tuple[int, int]]:
    """Per group, the size of one new instance: its largest registered one, else its type's."""
    sizes: dict[str, tuple[int, int]] = {}
    types: dict[str, str] = {}
    for name, (group, instances, _) in groups.items():
        measured = [
            (i.registered_cpu, i.registered_memory)
            for i in instances
            if i.registered_cpu > 0 and i.registered_memory > 0
        ]
        if measured:
            # What ECS really registers (less than the type's nominal memory).
            sizes[name] = max(measured)
            continue
        # Nothing registered: what the group will launch. A member's type is
        # the fallback for templates that name none (attribute-based).
        instance_type = autoscaling.group_instance_type(group) or next(
            (m.instance_type for m in group.instances if m.live and m.instance_type), None
        )
        if instance_type:
            types[name] = instance_type
    if types:
        # One DescribeInstanceTypes for every group that needs it.
        by_type = autoscaling.instance_sizes(types.values())
        for name, instance_type in types.items():
            if instance_type in by_type:
                sizes[name] = by_type[instance_type]
    return sizes
