"""Benchmark: the capacity planner alone, for N = 10, 100, 1,000 waiting tasks (issue 5).

Generates N waiting tasks of mixed sizes (small, medium, large, cpu-heavy and
memory-heavy shapes) for one Auto Scaling group of 2048-unit/7680-MiB
instances, four of them registered with some room left, and for the same
tasks spread over three groups. For each it runs `plan_capacity` and prints:
the tasks that fit the free capacity, the new instances requested against
the optimum's lower bound (the demand of the tasks that need new instances
divided by one instance, rounded up, the larger of cpu and memory), the
SetDesiredCapacity calls (one per group at most), how many polls a
+1-per-poll scaler (hako's `autoscaling_group_for_oneshot`) would need for
the same instances, and the planner's CPU time. Nothing is asserted.

    .venv/bin/python -m bench.capacity
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence

from controller.model.capacity import GroupState, InstanceCapacity
from controller.model.manifest import RunKey
from controller.plan.capacity import CapacityDecision, WaitingTask, plan_capacity

#: An m5.large as ECS registers it (the kernel keeps some of its 8 GiB).
INSTANCE = (2048, 7680)
#: (cpu units, MiB) shapes of batch tasks, with how often each appears.
SHAPES = [
    ((256, 512), 30),
    ((512, 1024), 25),
    ((1024, 2048), 15),
    ((2048, 4096), 5),
    ((256, 3072), 10),  # memory-heavy
    ((1024, 512), 10),  # cpu-heavy
    ((768, 1536), 5),
]


def waiting_tasks(count: int, groups: Sequence[str], seed: int = 5) -> list[WaitingTask]:
    """`count` tasks of mixed shapes, spread round-robin over `groups`."""
    rng = random.Random(seed)
    shapes = [shape for shape, _ in SHAPES]
    weights = [weight for _, weight in SHAPES]
    return [
        WaitingTask(
            RunKey(f"job-{i:05d}", "1"),
            *rng.choices(shapes, weights)[0],
            groups[i % len(groups)],
        )
        for i in range(count)
    ]


def group_state(name: str) -> GroupState:
    """Four registered instances with some room left; MaxSize high enough not to cap."""
    free = [(1024, 2048), (512, 4096), (1536, 1024), (0, 0)]
    instances = tuple(
        InstanceCapacity(f"i-{name}-{n}", c, m, INSTANCE[0], INSTANCE[1], True, True)
        for n, (c, m) in enumerate(free)
    )
    return GroupState(name, 0, 2000, len(instances), instances, 0, INSTANCE)


def lower_bound(tasks: Sequence[WaitingTask], size: tuple[int, int]) -> int:
    """ceil(total demand / instance size), the larger of cpu and memory."""
    if not tasks:
        return 0
    return max(
        math.ceil(sum(t.cpu for t in tasks) / size[0]),
        math.ceil(sum(t.memory for t in tasks) / size[1]),
    )


def timed(
    waiting: Sequence[WaitingTask], groups: Mapping[str, GroupState]
) -> tuple[dict[str, CapacityDecision], float]:
    """The plan, and the CPU seconds of one planning (median of several)."""
    repeats = max(3, 2000 // max(1, len(waiting)))
    samples = []
    decisions: dict[str, CapacityDecision] = {}
    for _ in range(repeats):
        cpu0 = time.process_time()
        decisions = plan_capacity(waiting, groups)
        samples.append(time.process_time() - cpu0)
    samples.sort()
    return decisions, samples[len(samples) // 2]


def row(count: int, group_names: Sequence[str]) -> tuple[str, ...]:
    """One table row for N tasks over these groups."""
    groups = {name: group_state(name) for name in group_names}
    waiting = waiting_tasks(count, group_names)
    decisions, cpu = timed(waiting, groups)
    fit_free = sum(len(d.fits_free) for d in decisions.values())
    requested = sum((d.target or d.desired) - d.desired for d in decisions.values())
    bound = sum(lower_bound(d.needs_new, INSTANCE) for d in decisions.values())
    calls = sum(1 for d in decisions.values() if d.scales_out)
    return (
        str(count),
        str(len(group_names)),
        str(fit_free),
        str(requested),
        str(bound),
        f"{requested / bound:.3f}" if bound else "-",
        str(calls),
        str(requested),
        f"{cpu * 1000:.2f}",
    )


def main() -> None:
    """Run the benchmark and print the table."""
    header = (
        "tasks",
        "groups",
        "fit free",
        "new instances",
        "lower bound",
        "ratio",
        "SetDesiredCapacity",
        "+1/poll polls",
        "planner CPU ms",
    )
    rows = [row(n, names) for names in (["batch"], ["a", "b", "c"]) for n in (10, 100, 1000)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
