"""Auto Scaling's bounds on SetDesiredCapacity (fidelity patch e).

The capacity planner asks for a group's desired capacity; real AWS refuses
a value outside MinSize..MaxSize, and an unknown group, with a
ValidationError. moto accepts anything, so a planner bug would go unseen.
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
