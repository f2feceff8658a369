"""Benchmark (issue 5, end to end): N waiting tasks on the sandbox until all are placed.

An Auto Scaling group starts with one registered instance (2048 CPU units,
4096 MiB; new instances register 30 s after they are asked for). N JobRuns
of mixed sizes arrive at once. The controller runs a pass every 10 s of
(fake) time until every run is placed, and the table shows how many
SetDesiredCapacity calls it made, how many passes that took, and the
instances it asked for against the lower bound ceil(demand / instance size).
A hako-style loop would have made one +1 call per poll instead.

    .venv/bin/python -m bench.capacity_e2e [N ...]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.sandbox_world import Controller, job_manifest
from controller.clock import FakeClock
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


def main() -> None:
    """Run each N and print the table."""
    counts = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    header = ["tasks", "SetDesiredCapacity", "passes", "instances", "lower bound", "ratio", "CPU s"]
    rows = [header, *[one(n) for n in counts]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print("CPU s: the whole process, sandbox included (it serves in this process).")


if __name__ == "__main__":
    main()
