"""Benchmark (issues 5 and 19, end to end): a burst of N tasks, scale-out and scale-in.

Part 1 (issue 5). An Auto Scaling group starts with one registered instance
(2048 CPU units, 4096 MiB; new instances register 30 s after they are asked
for). N JobRuns of mixed sizes arrive at once. The controller runs a pass
every 10 s of (fake) time until every run is placed, and the table shows how
many SetDesiredCapacity calls it made, how many passes that took, and the
instances it asked for against the lower bound ceil(demand / instance size).
A hako-style loop would have made one +1 call per poll instead.

Part 2 (issue 19). The same burst, with tasks that run 5 minutes, twice:
with the group opted in to scale-in (tag `ecs-job-controller/scale-in`) and
without. Passes every 10 s of simulated time while runs are in flight, then
every 60 s (the `run` loop's default resync) until the scale-in variant is
back at MinSize. The table shows the instance-seconds paid (the group's
live members integrated over simulated time, from the burst to that
moment) with and without scale-in, the peak, and how long the way back
took. Without scale-in nothing changes once the runs are done, so its
passes stop there and the group's size is carried to the same moment.
Then the AWS calls scale-in adds to one idle pass: while instances wait out
their idle period (above MinSize), and once the group is at MinSize,
against the same pass with `--no-scale-in`.

    .venv/bin/python -m bench.capacity_e2e [N ...]             (part 1)
    .venv/bin/python -m bench.capacity_e2e --scale-in [--max-scale-in-per-pass K] [N ...]
                                                               (part 2; default 100 1000)
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sandbox_world import Controller, job_manifest
from controller.clock import FakeClock
from controller.model.identity import TAG_SCALE_IN
from controller.plan.scale_in import ScaleInSettings
from controller.sandbox import Sandbox

SIZES = [(1024, 1024), (512, 2048), (256, 512), (768, 1536), (128, 256)]


def one(count: int) -> list[str]:
    """Run the scenario for `count` tasks; a table row."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "manifests").mkdir()
        demand_cpu = demand_memory = 0
        for i in range(count):
            cpu, memory = SIZES[i % len(SIZES)]
            demand_cpu += cpu
            demand_memory += memory
            text = job_manifest(
                i,
                f"fam-{i % len(SIZES)}",
                duration=100000,
                spec_lines="  capacity: {autoScalingGroup: batch-asg, maxPendingSeconds: 3600}\n",
                sizes=f"cpu: {cpu}\n        memory: {memory}",
            )
            (root / "manifests" / f"job-{i:04d}.yaml").write_text(text)
        clock = FakeClock()
        sandbox = Sandbox(clock).start()
        os.environ.update(sandbox.env())
        try:
            sandbox.create_cluster("batch")
            sandbox.create_auto_scaling_group(
                "batch-asg",
                "batch",
                min_size=1,
                max_size=1000,
                desired=1,
                instance_cpu=2048,
                instance_memory=4096,
                registration_delay_seconds=30,
            )
            clock.advance(31)
            sandbox.tick()
            controller = Controller(root, clock)
            passes = 0
            planner_cpu = 0.0
            while passes < 50:
                start = time.process_time()
                controller.measure(f"pass {passes}")
                planner_cpu += time.process_time() - start
                passes += 1
                runs = controller.ledger.view().runs.values()
                if runs and all(r.phase.value == "Running" for r in runs):
                    break
                clock.advance(10)
            calls = controller.session.calls
            asg: Any = sandbox.client("autoscaling", counted=False)
            desired = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])[
                "AutoScalingGroups"
            ][0]["DesiredCapacity"]
            bound = max(math.ceil(demand_cpu / 2048), math.ceil(demand_memory / 4096))
            return [
                str(count),
                str(calls[("autoscaling", "SetDesiredCapacity")]),
                str(passes),
                str(desired),
                str(bound),
                f"{desired / bound:.3f}",
                f"{planner_cpu:.1f}",
            ]
        finally:
            sandbox.stop()


#: How long each burst task runs (simulated seconds).
BURST_TASK_SECONDS = 300
#: The owner the benchmark controller runs as (`Controller` in sandbox_world).
OWNER = "bench"
#: Operations whose per-pass cost part 2 reports.
CAPACITY_OPERATIONS = (
    ("autoscaling", "DescribeAutoScalingGroups"),
    ("ecs", "ListContainerInstances"),
    ("ecs", "DescribeContainerInstances"),
    ("ecs", "UpdateContainerInstancesState"),
    ("autoscaling", "TerminateInstanceInAutoScalingGroup"),
)


def _burst_world(root: Path, count: int, *, opted_in: bool) -> tuple[Sandbox, FakeClock]:
    (root / "manifests").mkdir()
    for i in range(count):
        cpu, memory = SIZES[i % len(SIZES)]
        text = job_manifest(
            i,
            f"fam-{i % len(SIZES)}",
            duration=BURST_TASK_SECONDS,
            spec_lines="  capacity: {autoScalingGroup: batch-asg, maxPendingSeconds: 3600}\n",
            sizes=f"cpu: {cpu}\n        memory: {memory}",
        )
        (root / "manifests" / f"job-{i:04d}.yaml").write_text(text)
    clock = FakeClock()
    sandbox = Sandbox(clock).start()
    os.environ.update(sandbox.env())
    sandbox.create_cluster("batch")
    sandbox.create_auto_scaling_group(
        "batch-asg",
        "batch",
        min_size=1,
        max_size=2000,
        desired=1,
        instance_cpu=2048,
        instance_memory=4096,
        registration_delay_seconds=30,
        tags={TAG_SCALE_IN: OWNER} if opted_in else {},
    )
    clock.advance(31)
    sandbox.tick()
    return sandbox, clock


def _members(sandbox: Sandbox) -> int:
    asg: Any = sandbox.client("autoscaling", counted=False)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])
    return sum(
        1
        for i in group["AutoScalingGroups"][0]["Instances"]
        if str(i["LifecycleState"]).startswith(("InService", "Pending"))
    )


def _idle_pass_calls(controller: Controller, clock: FakeClock) -> dict[str, dict[str, int]]:
    """Calls of one pass under --no-scale-in, then of the same pass with it (the clock held still).

    Taken while no instance is draining: then the --no-scale-in pass has
    nothing to undo and leaves the scenario as it was.
    """
    del clock
    figures: dict[str, dict[str, int]] = {}
    wanted = controller.context.scale_in
    for label, settings in (("off", ScaleInSettings(enabled=False)), ("on", wanted)):
        controller.context.scale_in = settings
        passed, _ = controller.measure(label)
        figures[label] = {op: passed.calls.get((svc, op), 0) for svc, op in CAPACITY_OPERATIONS}
        figures[label]["all"] = sum(passed.calls.values())
    return figures


@dataclass
class BurstFigures:
    """One burst: instance-seconds paid, and the way back to MinSize."""

    count: int
    peak: int
    #: simulated seconds from the burst to the last run's end, and to MinSize
    done_after: float
    min_size_after: float
    instance_seconds: float
    passes: int
    #: the group's size when the scenario ended (it stays so from then on)
    final_live: int = 0
    #: calls of an idle pass while instances wait out their idle period, and at MinSize
    idle_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    min_size_calls: dict[str, dict[str, int]] = field(default_factory=dict)


def burst(
    count: int, *, scale_in: bool, horizon: float | None = None, per_pass: int = 1
) -> BurstFigures:
    """Run one burst; with scale-in until MinSize, without until `horizon` (analytically)."""
    with tempfile.TemporaryDirectory() as tmp:
        sandbox, clock = _burst_world(Path(tmp), count, opted_in=scale_in)
        try:
            controller = Controller(Path(tmp), clock)
            controller.context.scale_in = ScaleInSettings(enabled=scale_in, max_per_pass=per_pass)
            start = clock.now()
            paid = 0.0
            peak = passes = 0
            done_after: float | None = None
            figures = BurstFigures(count, 0, 0.0, 0.0, 0.0, 0)
            while passes < 2000:
                controller.measure(f"pass {passes}")
                passes += 1
                live = _members(sandbox)
                peak = max(peak, live)
                elapsed = (clock.now() - start).total_seconds()
                runs = controller.ledger.view().runs.values()
                finished = bool(runs) and all(r.phase.value == "Succeeded" for r in runs)
                if finished and done_after is None:
                    done_after = elapsed
                figures.final_live = live
                if not scale_in and finished:
                    # Nothing changes any more: the group stays as it is.
                    paid += live * max(0.0, (horizon or elapsed) - elapsed)
                    figures.min_size_after = elapsed
                    break
                if scale_in and finished and live == 1:
                    figures.min_size_after = elapsed
                    figures.min_size_calls = _idle_pass_calls(controller, clock)
                    break
                # One pass after the runs' end: idle clocks run, nothing drains yet.
                settled = done_after is not None and elapsed >= done_after + 60
                if scale_in and settled and not figures.idle_calls and live > 1:
                    figures.idle_calls = _idle_pass_calls(controller, clock)
                step = 10 if not finished else 60
                paid += live * step
                clock.advance(step)
            figures.count, figures.peak, figures.passes = count, peak, passes
            figures.done_after = done_after or 0.0
            figures.instance_seconds = paid
            return figures
        finally:
            sandbox.stop()


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def scale_in_main(counts: list[int], per_pass: int) -> None:
    """Part 2: instance-seconds with and without scale-in, and the calls it adds."""
    header = [
        "tasks",
        "per pass",
        "peak",
        "runs done s",
        "MinSize s",
        "inst-s with",
        "inst-s without",
        "saved",
        "then inst with/without",
        "passes",
    ]
    rows = [header]
    calls: list[tuple[int, BurstFigures]] = []
    for count in counts:
        with_ = burst(count, scale_in=True, per_pass=per_pass)
        without = burst(count, scale_in=False, horizon=with_.min_size_after)
        saved = 1 - with_.instance_seconds / without.instance_seconds
        rows.append(
            [
                str(count),
                str(per_pass),
                str(with_.peak),
                f"{with_.done_after:.0f}",
                f"{with_.min_size_after:.0f}",
                f"{with_.instance_seconds:,.0f}",
                f"{without.instance_seconds:,.0f}",
                f"{saved:.0%}",
                f"{with_.final_live} / {without.final_live}",
                str(with_.passes),
            ]
        )
        calls.append((count, with_))
    _table(rows)
    print()
    ops = [op for _, op in CAPACITY_OPERATIONS]
    rows = [["tasks", "pass", "scale-in", *ops, "all calls"]]
    for count, figures in calls:
        for label, measured in (
            ("idle, above MinSize", figures.idle_calls),
            ("at MinSize", figures.min_size_calls),
        ):
            for setting in ("on", "off"):
                got = measured.get(setting, {})
                rows.append(
                    [
                        str(count),
                        label,
                        setting,
                        *[str(got.get(op, 0)) for op in ops],
                        str(got.get("all", 0)),
                    ]
                )
    _table(rows)
    print(
        "instance-seconds: the group's InService/Pending members integrated over simulated"
        " time from the burst until the scale-in variant is back at MinSize; 'then': the"
        " instances each variant keeps paying for from that moment on."
    )


def main() -> None:
    """Run each N and print the table."""
    args = sys.argv[1:]
    if args and args[0] == "--scale-in":
        rest = args[1:]
        per_pass = 1
        if rest[:1] == ["--max-scale-in-per-pass"]:
            per_pass, rest = int(rest[1]), rest[2:]
        scale_in_main([int(a) for a in rest] or [100, 1000], per_pass)
        return
    counts = [int(a) for a in args] or [10, 100, 1000]
    header = ["tasks", "SetDesiredCapacity", "passes", "instances", "lower bound", "ratio", "CPU s"]
    rows = [header, *[one(n) for n in counts]]
    _table(rows)
    print("CPU s: the whole process, sandbox included (it serves in this process).")


if __name__ == "__main__":
    main()
