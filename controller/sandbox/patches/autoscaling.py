"""Auto Scaling's bounds on SetDesiredCapacity and on TerminateInstanceInAutoScalingGroup (patch e).

The capacity planner asks for a group's desired capacity; real AWS refuses
a value outside MinSize..MaxSize, and an unknown group, with a
ValidationError. moto accepts anything, so a planner bug would go unseen.
Scale-in terminates single instances with a decrement of the desired
capacity; AWS refuses that below MinSize and for an instance of no group,
moto does neither (`patch_terminate_instance`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.autoscaling.exceptions import ValidationError

from controller.sandbox.patches.stack import PatchStack


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


def patch_terminate_instance(stack: PatchStack, autoscaling: Any) -> None:
    """TerminateInstanceInAutoScalingGroup refuses what AWS refuses.

    Real AWS: an instance that is no member of any group is a ValidationError
    ("Instance Id not found - No managed instance found for instance ID
    i-..."); with ShouldDecrementDesiredCapacity=true, a group whose desired
    capacity already equals its MinSize is a ValidationError too (the call
    would take it below MinSize). Instance scale-in protection does *not*
    stop this call (AWS's user guide, "Use instance scale-in protection":
    it covers the group's own scale-in only), so a protected instance is
    terminated like any other and the caller must check protection itself.
    moto: an unknown instance raises StopIteration (HTTP 500, which botocore
    retries) and a decrement may take desired capacity below MinSize; it
    terminates protected instances, as AWS does.
    """

    def wrapper(inner: Callable[[str, bool], Any]) -> Callable[[str, bool], Any]:
        def terminate_instance(instance_id: str, should_decrement: bool) -> Any:
            group = next(
                (
                    g
                    for g in autoscaling.autoscaling_groups.values()
                    if any(s.instance.id == instance_id for s in g.instance_states)
                ),
                None,
            )
            if group is None:
                raise ValidationError(
                    "Instance Id not found - No managed instance found for instance ID "
                    f"{instance_id}"
                )
            if should_decrement and group.desired_capacity <= group.min_size:
                raise ValidationError(
                    f"Currently, desiredSize equals minSize ({group.min_size}). Terminating "
                    "instance without replacement will violate group's min size constraint. "
                    "Either set shouldDecrementDesiredCapacity flag to false or lower group's "
                    "min size."
                )
            return inner(instance_id, should_decrement)

        return terminate_instance

    stack.wrap(autoscaling, "terminate_instance", wrapper)
