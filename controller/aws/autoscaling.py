"""The narrow door to Auto Scaling, and the EC2 reads that size a group's new instances.

The capacity planner (DESIGN.md §6) needs four facts about a group: its
bounds and desired capacity, which EC2 instances it has and in which
lifecycle state, and how large one new instance will be. The last comes from
the group's registered container instances when there are any; for an empty
group it is the instance type of its launch template (or mixed-instances
override, or launch configuration), sized by EC2 DescribeInstanceTypes.
The writes are SetDesiredCapacity, with HonorCooldown false (the
controller asks for what waiting tasks need now, and a cooldown meant for
alarm-driven policies must not delay it), and, for scale-in,
TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity
true (the group must not launch a replacement). The group's tags and each
member's ProtectedFromScaleIn come with DescribeAutoScalingGroups at no
extra call.

Instance-type sizes and launch configurations never change, so they are
cached for the process lifetime; so are launch-template versions named by
number. "$Latest" and "$Default" are asked every time (they move).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from controller.aws.errors import AwsTerminalError, AwsTransientError, call
from controller.aws.session import AwsSession

#: DescribeAutoScalingGroups and DescribeInstanceTypes take at most 100 names per call.
NAMES_PER_CALL = 100

#: Lifecycle states of members that count toward desired capacity and will
#: (or do) run tasks: InService, and Pending / Pending:Wait / Pending:Proceed.
LIVE_STATES = ("InService", "Pending")

#: SetDesiredCapacity answers these while another activity of the group is
#: under way; the next pass will try again.
_BUSY_CODES = frozenset({"ScalingActivityInProgress", "ResourceContention"})

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType


@dataclass(frozen=True)
class GroupInstance:
    """One EC2 instance of a group."""

    instance_id: str
    lifecycle_state: str
    health_status: str
    instance_type: str | None = None
    #: ProtectedFromScaleIn: scale-in never terminates it
    protected: bool = False

    @property
    def live(self) -> bool:
        """True when the member is in service or on its way there (Pending*)."""
        return self.lifecycle_state.startswith(LIVE_STATES)


@dataclass(frozen=True)
class LaunchTemplateRef:
    """A group's launch template: by id or name, and a version ("$Default" when unset)."""

    template_id: str | None
    name: str | None
    version: str = "$Default"


@dataclass(frozen=True)
class GroupDescription:
    """An Auto Scaling group, as DescribeAutoScalingGroups reports it."""

    name: str
    min_size: int
    max_size: int
    desired: int
    instances: tuple[GroupInstance, ...] = ()
    launch_template: LaunchTemplateRef | None = None
    launch_configuration: str | None = None
    #: the mixed-instances policy's first override instance type, if any
    override_instance_type: str | None = None
    #: the group's tags, key -> value
    tags: Mapping[str, str] = field(default_factory=dict)


def _template_ref(raw: Mapping[str, Any] | None) -> LaunchTemplateRef | None:
    if not raw:
        return None
    return LaunchTemplateRef(
        template_id=raw.get("LaunchTemplateId"),
        name=raw.get("LaunchTemplateName"),
        version=str(raw.get("Version") or "$Default"),
    )


def group_description(raw: Mapping[str, Any]) -> GroupDescription:
    """Our view of one DescribeAutoScalingGroups entry."""
    mixed = raw.get("MixedInstancesPolicy") or {}
    mixed_template = mixed.get("LaunchTemplate") or {}
    overrides = mixed_template.get("Overrides") or []
    override_type = next((str(o["InstanceType"]) for o in overrides if o.get("InstanceType")), None)
    template = _template_ref(raw.get("LaunchTemplate")) or _template_ref(
        mixed_template.get("LaunchTemplateSpecification")
    )
    instances = tuple(
        GroupInstance(
            instance_id=str(i["InstanceId"]),
            lifecycle_state=str(i.get("LifecycleState", "")),
            health_status=str(i.get("HealthStatus", "")),
            instance_type=i.get("InstanceType"),
            protected=bool(i.get("ProtectedFromScaleIn", False)),
        )
        for i in raw.get("Instances") or []
    )
    return GroupDescription(
        name=str(raw["AutoScalingGroupName"]),
        min_size=int(raw["MinSize"]),
        max_size=int(raw["MaxSize"]),
        desired=int(raw["DesiredCapacity"]),
        instances=tuple(sorted(instances, key=lambda i: i.instance_id)),
        launch_template=template,
        launch_configuration=raw.get("LaunchConfigurationName"),
        override_instance_type=override_type,
        tags={str(t["Key"]): str(t.get("Value", "")) for t in raw.get("Tags") or [] if "Key" in t},
    )


class AutoScalingGateway:
    """Auto Scaling (and the EC2 sizing reads) the capacity planner needs, and nothing else."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session
        self._type_sizes: dict[str, tuple[int, int]] = {}
        self._configuration_types: dict[str, str | None] = {}
        self._template_types: dict[tuple[str | None, str | None, str], str | None] = {}

    @property
    def _autoscaling(self) -> AutoScalingClient:
        return self._session.autoscaling()

    @property
    def _ec2(self) -> EC2Client:
        return self._session.ec2()

    # -- groups -----------------------------------------------------------

    def describe_groups(self, names: Iterable[str]) -> dict[str, GroupDescription]:
        """Describe groups by name (paginated, 100 names a call); unknown names are left out."""
        wanted = sorted(set(names))
        groups: dict[str, GroupDescription] = {}
        for start in range(0, len(wanted), NAMES_PER_CALL):
            for raw in self._describe_group_batch(wanted[start : start + NAMES_PER_CALL]):
                group = group_description(raw)
                groups[group.name] = group
        return groups

    def _describe_group_batch(self, names: list[str]) -> list[Mapping[str, Any]]:
        paginator = self._autoscaling.get_paginator("describe_auto_scaling_groups")
        pages = paginator.paginate(AutoScalingGroupNames=names)
        answer = call("DescribeAutoScalingGroups", lambda: list(pages))
        return [raw for page in answer for raw in page.get("AutoScalingGroups") or []]

    def set_desired_capacity(self, name: str, desired: int) -> None:
        """SetDesiredCapacity without honouring cooldowns; out of bounds is a TerminalError."""
        try:
            call(
                "SetDesiredCapacity",
                lambda: self._autoscaling.set_desired_capacity(
                    AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False
                ),
            )
        except AwsTerminalError as exc:
            # A scaling activity in progress is a reason to wait, not to give up.
            if exc.code in _BUSY_CODES:
                raise AwsTransientError(exc.code, exc.aws_message, exc.operation) from exc
            raise

    def terminate_instance(self, instance_id: str) -> None:
        """TerminateInstanceInAutoScalingGroup, decrementing desired capacity (no replacement).

        AWS refuses it below MinSize and for an instance of no group
        (TerminalError); a scaling activity in progress is transient.
        Scale-in protection does not stop this call: the caller checks it.
        """
        try:
            call(
                "TerminateInstanceInAutoScalingGroup",
                lambda: self._autoscaling.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
                ),
            )
        except AwsTerminalError as exc:
            if exc.code in _BUSY_CODES:
                raise AwsTransientError(exc.code, exc.aws_message, exc.operation) from exc
            raise

    # -- what one new instance looks like --------------------------------

    def group_instance_type(self, group: GroupDescription) -> str | None:
        """The instance type new instances of `group` get: override, template, configuration.

        None when none names one (e.g. a template with attribute-based
        InstanceRequirements); the caller may then use a member's type.
        """
        if group.override_instance_type:
            return group.override_instance_type
        if group.launch_template is not None:
            found = self.launch_template_instance_type(group.launch_template)
            if found:
                return found
        if group.launch_configuration:
            return self.launch_configuration_instance_type(group.launch_configuration)
        return None

    def launch_template_instance_type(self, template: LaunchTemplateRef) -> str | None:
        """The InstanceType of one launch-template version (DescribeLaunchTemplateVersions)."""
        key = (template.template_id, template.name, template.version)
        if key in self._template_types:
            return self._template_types[key]
        request: dict[str, Any] = {"Versions": [template.version]}
        if template.template_id:
            request["LaunchTemplateId"] = template.template_id
        elif template.name:
            request["LaunchTemplateName"] = template.name
        else:
            return None
        answer = call(
            "DescribeLaunchTemplateVersions",
            lambda: self._ec2.describe_launch_template_versions(**request),
        )
        versions = answer.get("LaunchTemplateVersions") or []
        data = (versions[0].get("LaunchTemplateData") or {}) if versions else {}
        found = data.get("InstanceType")
        instance_type = str(found) if found else None
        if template.version.isdigit():
            # A numbered version is immutable; $Latest and $Default move.
            self._template_types[key] = instance_type
        return instance_type

    def launch_configuration_instance_type(self, name: str) -> str | None:
        """The InstanceType of a launch configuration (DescribeLaunchConfigurations)."""
        if name in self._configuration_types:
            return self._configuration_types[name]
        answer = call(
            "DescribeLaunchConfigurations",
            lambda: self._autoscaling.describe_launch_configurations(
                LaunchConfigurationNames=[name]
            ),
        )
        configurations = answer.get("LaunchConfigurations") or []
        found = configurations[0].get("InstanceType") if configurations else None
        instance_type = str(found) if found else None
        self._configuration_types[name] = instance_type  # immutable in Auto Scaling
        return instance_type

    def instance_sizes(self, instance_types: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(vCPUs x 1024 CPU units, MiB) per type, by DescribeInstanceTypes; unknown types left out.

        These are the instance type's nominal figures: a container instance
        registers somewhat less memory (the kernel and agent keep some).
        """
        asked = [t for t in instance_types if t]
        wanted = sorted(set(asked) - set(self._type_sizes))
        for start in range(0, len(wanted), NAMES_PER_CALL):
            batch = wanted[start : start + NAMES_PER_CALL]
            if not self._describe_types(batch) and len(batch) > 1:
                # One unknown type fails the whole call: ask one by one.
                for one in batch:
                    self._describe_types([one])
        return {t: self._type_sizes[t] for t in asked if t in self._type_sizes}

    def _describe_types(self, batch: list[str]) -> bool:
        """Cache the sizes of `batch`; False when EC2 does not know one of them."""
        pages = self._ec2.get_paginator("describe_instance_types").paginate(
            InstanceTypes=cast("list[InstanceTypeType]", batch)  # EC2 answers unknown names
        )
        try:
            answer = call("DescribeInstanceTypes", lambda: list(pages))
        except AwsTerminalError as exc:
            if exc.code == "InvalidInstanceType":
                return False
            raise
        for page in answer:
            for raw in page.get("InstanceTypes") or []:
                vcpus = int((raw.get("VCpuInfo") or {}).get("DefaultVCpus") or 0)
                mib = int((raw.get("MemoryInfo") or {}).get("SizeInMiB") or 0)
                self._type_sizes[str(raw["InstanceType"])] = (vcpus * 1024, mib)
        return True
