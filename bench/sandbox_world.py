"""Shared set-up of the sandbox benchmarks: a seeded sandbox and an in-process controller.

The controller runs in this process (the real pipeline: directory source,
loader, observe, plan, executor, SQLite ledger) against the sandbox's moto
server over HTTP, so every AWS call is a real request and is counted by the
controller's own `AwsSession.calls`.
"""

from __future__ import annotations

import os
import resource
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from controller.apply.executor import Executor
from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.model.loader import ManifestLoader
from controller.runtime.reconcile_pass import PassContext, PassResult, reconcile_once
from controller.sandbox import Sandbox
from controller.schemas import validators
from controller.sources.directory import DirectorySource
from controller.state.sqlite import SqliteLedger

warnings.filterwarnings("ignore", category=UserWarning, module="moto")


def job_manifest(
    i: int,
    family: str,
    *,
    duration: float = 3600,
    image_tag: str = "0",
    spec_lines: str = "",
    sizes: str = "cpu: 16\n        memory: 32",
) -> str:
    """One EC2 JobRun `job-<i>` for the benchmarks; `spec_lines` join its spec."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: job-{i}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        "  launchType: EC2\n"
        f"{spec_lines}"
        "  taskDefinition:\n"
        f"    family: {family}\n"
        "    containerDefinitions:\n"
        "      - name: app\n"
        f"        image: busybox:{image_tag}\n"
        f"        {sizes}\n"
        "        environment:\n"
        f'          - {{name: SANDBOX_DURATION_SECONDS, value: "{duration}"}}\n'
    )


@dataclass
class PassFigures:
    """What one pass cost."""

    label: str
    calls: Counter[tuple[str, str]]
    cpu_seconds: float
    wall_seconds: float
    peak_rss_mib: float
    actions: int


class Controller:
    """One controller process's worth of state, driven pass by pass."""

    def __init__(self, root: Path, clock: FakeClock) -> None:
        self.session = AwsSession()
        self.ecs = EcsGateway(self.session)
        autoscaling = AutoScalingGateway(self.session)
        self.ledger = SqliteLedger(root / "state.db")
        self.context = PassContext(
            source=DirectorySource(root / "manifests"),
            loader=ManifestLoader(validators()),
            ecs=self.ecs,
            ledger=self.ledger,
            revision_cache=self.ledger,
            executor=Executor(
                self.ecs,
                self.ledger,
                "bench",
                clock,
                autoscaling=autoscaling,
                ecs_instances=EcsInstanceGateway(self.session),
            ),
            clock=clock,
            owner="bench",
            autoscaling=autoscaling,
            ecs_instances=EcsInstanceGateway(self.session),
        )

    def measure(self, label: str) -> tuple[PassFigures, PassResult]:
        """Run one pass and measure it."""
        before = self.session.calls.copy()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = reconcile_once(self.context)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures = PassFigures(
            label, self.session.calls - before, cpu, wall, peak, len(result.plan.actions)
        )
        return figures, result


def start_world(root: Path, jobs: int, specs: int, duration: int, instances: int) -> Sandbox:
    """Start a sandbox with a cluster of `instances`, and write `jobs` manifests."""
    clock = FakeClock()
    sandbox = Sandbox(clock).start()
    os.environ.update(sandbox.env())
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", instances, cpu=2048, memory=4096)
    write_manifests(root, jobs, specs, duration)
    return sandbox


def write_manifests(root: Path, jobs: int, specs: int, duration: float) -> None:
    """`jobs` JobRuns over `specs` task-definition specs, in ROOT/manifests."""
    manifests = root / "manifests"
    manifests.mkdir(parents=True)
    for i in range(jobs):
        spec = i % specs
        text = job_manifest(i, f"fam-{spec}", duration=duration, image_tag=str(spec))
        (manifests / f"job-{i:05d}.yaml").write_text(text)


def print_table(rows: list[PassFigures], operations: list[tuple[str, str]]) -> None:
    """Print one row per pass: calls per operation, then CPU, wall and memory."""
    header = ["pass", *[op for _, op in operations], "other", "CPU s", "wall s", "peak RSS MiB"]
    lines = [header]
    for row in rows:
        named = [row.calls.get(op, 0) for op in operations]
        other = sum(row.calls.values()) - sum(named)
        lines.append(
            [
                row.label,
                *[str(n) for n in named],
                str(other),
                f"{row.cpu_seconds:.2f}",
                f"{row.wall_seconds:.2f}",
                f"{row.peak_rss_mib:.0f}",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
