"""Reads what the capacity planners need: groups, their container instances, new-instance size.

`controller.plan.capacity` and `controller.plan.scale_in` are pure; this is
their observe step (DESIGN.md §6, §7). It runs in passes where some task
waits for room, or where a manifest names an Auto Scaling group that
scale-in may look at; a steady pass with neither costs no Auto Scaling or
EC2 call at all. Per pass it makes one DescribeAutoScalingGroups per 100
groups (tags and scale-in protection come with it), one
ListContainerInstances per cluster (paginated) plus one
DescribeContainerInstances per 100 instances — at most once per cluster,
whichever planner needs it — and, only for a group with no registered
instance that tasks wait on, the launch-template (or configuration) read and
one DescribeInstanceTypes for all such groups.

Scale-in keeps this cheap: a group it may look at has its container
instances read only if it carries `ecs-job-controller/scale-in` = owner and
has more live members than its MinSize (or has an instance this controller
decided to drain, which must be finished or undone); otherwise the one
DescribeAutoScalingGroups is all it costs.

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

from controller.aws.autoscaling import AutoScalingGateway, GroupDescription, GroupInstance
from controller.aws.ecs_instances import ContainerInstanceState, EcsInstanceGateway
from controller.model.capacity import GroupState, InstanceCapacity
from controller.model.identity import TAG_SCALE_IN


@dataclass(frozen=True)
class ScaleInCandidates:
    """The groups scale-in may look at this pass, and who may scale them in."""

    #: group -> the clusters its runs name (or its idle clocks were seen in)
    clusters: Mapping[str, Set[str]] = field(default_factory=dict)
    owner: str = ""
    #: False under --no-scale-in: only groups holding idle clocks are read
    enabled: bool = True
    #: groups with an instance this controller decided to drain (ledger):
    #: read whatever their size, so the drain is finished or undone
    marked: Set[str] = frozenset()


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
    waiting_groups: Mapping[str, Set[str]],
    scale_in: ScaleInCandidates | None = None,
) -> ObservedCapacity:
    """The state of each group that exists and is needed, and the instance count of its clusters.

    `waiting_groups`: groups tasks wait on (group -> clusters); `scale_in`:
    the groups scale-in may look at. A scale-in group that does not qualify
    for a read (see the module docstring) is left out, or, when opted in but
    at MinSize, kept with `instances_read` False.
    """
    candidates = scale_in or ScaleInCandidates()
    clusters_by_group: dict[str, set[str]] = {g: set(c) for g, c in waiting_groups.items()}
    for name, clusters_of in candidates.clusters.items():
        clusters_by_group.setdefault(name, set()).update(clusters_of)
    described = autoscaling.describe_groups(clusters_by_group)
    groups: dict[str, GroupDescription] = {}
    unread: set[str] = set()
    for name, group in described.items():
        if name in waiting_groups:
            groups[name] = group
            continue
        opted = candidates.enabled and group.tags.get(TAG_SCALE_IN) == candidates.owner
        if name in candidates.marked or (opted and _live(group) > group.min_size):
            groups[name] = group
        elif opted:
            groups[name] = group
            unread.add(name)
    clusters = sorted({c for name in groups if name not in unread for c in clusters_by_group[name]})
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
            if not member.live or name in unread:
                continue
            registration = _registration(member.instance_id, clusters_by_group[name], registered)
            if registration is None:
                launching += 1
            else:
                found.append(_capacity(member, *registration))
        partial[name] = (group, tuple(found), launching)

    # Sizing new instances is for groups tasks wait on; scale-in never needs it.
    sizes = _instance_sizes(autoscaling, {n: p for n, p in partial.items() if n in waiting_groups})
    states = {
        name: GroupState(
            name=name,
            min_size=group.min_size,
            max_size=group.max_size,
            desired=group.desired,
            instances=instances,
            launching=launching,
            instance_size=sizes.get(name),
            tags=dict(group.tags),
            instances_read=name not in unread,
            live_members=_live(group),
        )
        for name, (group, instances, launching) in partial.items()
    }
    return ObservedCapacity(states, counts)


def _live(group: GroupDescription) -> int:
    return sum(1 for member in group.instances if member.live)


def _registration(
    instance_id: str,
    clusters: Set[str],
    registered: Mapping[str, Mapping[str, ContainerInstanceState]],
) -> tuple[str, ContainerInstanceState] | None:
    for cluster in sorted(clusters):
        state = registered.get(cluster, {}).get(instance_id)
        if state is not None:
            return cluster, state
    return None


def _capacity(
    member: GroupInstance, cluster: str, state: ContainerInstanceState
) -> InstanceCapacity:
    return InstanceCapacity(
        instance_id=member.instance_id,
        remaining_cpu=state.remaining_cpu,
        remaining_memory=state.remaining_memory,
        registered_cpu=state.registered_cpu,
        registered_memory=state.registered_memory,
        active=state.status == "ACTIVE",
        connected=state.agent_connected,
        registered_at=state.registered_at,
        arn=state.arn,
        cluster=cluster,
        draining=state.status == "DRAINING",
        running_tasks=state.running_tasks,
        pending_tasks=state.pending_tasks,
        protected=member.protected,
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
