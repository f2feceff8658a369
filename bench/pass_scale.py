"""Benchmark: what a whole pass costs at 1,000 / 10,000 / 50,000 manifests (issue 18).

For each size and kind (JobRuns, CronJobs) it writes the manifests, brings
the ledger to a steady state — every JobRun's run recorded done, every
CronJob scheduled up to now, through the same executor a pass uses (the
`--adopt-history` plan), so no task has to run — and then measures against
the sandbox, in this process (the real pipeline over HTTP to moto):

* cold pass: a new controller process's first pass (parse cache empty);
* warm pass: the next pass, nothing changed;
* 1 % changed: one manifest in a hundred edited (a label, so no run restarts);
* CLI pass: `controller reconcile --once` as a subprocess, what a cron host or
  a CI job pays (start-up included; CPU and peak RSS reported by the child).

The floor rows are measured in the same run over the same files: reading +
SHA-256, and PyYAML's C loader (`yaml.load(..., CSafeLoader)`). The last
columns give the cost per manifest, so linearity reads down the column, and
the ratio to the floor. Nothing is asserted.

    .venv/bin/python -m bench.pass_scale [SIZE ...]
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bench.sandbox_world import Controller, job_manifest
from controller.clock import FakeClock
from controller.plan.adopt import adopt_history
from controller.sandbox import Sandbox

SIZES = (1_000, 10_000, 50_000)
NOW = datetime(2026, 12, 2, 12, 0, 30, tzinfo=UTC)


def cron_manifest(i: int) -> str:
    """One CronJob `cron-<i>`: daily, at a minute of its own."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        f"metadata: {{name: cron-{i}}}\n"
        "spec:\n"
        f'  schedule: "{i % 60} {i % 24} * * *"\n'
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    launchType: EC2\n"
        "    taskDefinition:\n"
        f"      family: fam-{i % 20}\n"
        "      containerDefinitions:\n"
        "        - name: app\n"
        "          image: busybox:1\n"
        "          cpu: 16\n"
        "          memory: 32\n"
    )


def job(i: int) -> str:
    """One JobRun `job-<i>` over 20 families."""
    return job_manifest(i, f"fam-{i % 20}", duration=60)


@dataclass
class Row:
    """One measured line of the table."""

    kind: str
    size: int
    label: str
    cpu: float
    wall: float
    rss_mib: float | None = None
    floor: float | None = None

    def cells(self) -> list[str]:
        """The row as table cells."""
        ratio = f"{self.cpu / self.floor:.2f}" if self.floor else ""
        rss = f"{self.rss_mib:.0f}" if self.rss_mib is not None else ""
        per = self.cpu / self.size * 1e6
        return [
            self.kind,
            f"{self.size:,}",
            self.label,
            f"{self.cpu:.2f}",
            f"{self.wall:.2f}",
            f"{per:,.0f}",
            ratio,
            rss,
        ]


@contextmanager
def timed() -> Iterator[list[float]]:
    """Measure CPU and wall seconds of a block into the yielded list."""
    figures: list[float] = []
    cpu, wall = time.process_time(), time.perf_counter()
    yield figures
    figures.extend([time.process_time() - cpu, time.perf_counter() - wall])


def floors(files: list[Path]) -> tuple[float, float]:
    """CPU seconds to read + hash the files, and to parse them with the C loader."""
    with timed() as read:
        for path in files:
            hashlib.sha256(path.read_bytes()).hexdigest()
    texts = [path.read_text() for path in files]
    with timed() as parse:
        for text in texts:
            list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    return read[0], parse[0]


def cli_pass(root: Path, sandbox: Sandbox) -> tuple[float, float, float]:
    """`controller reconcile --once` as a subprocess: CPU s, wall s, peak RSS MiB."""
    usage = root / "usage.json"
    env = {
        **os.environ,
        **sandbox.env(),
        "BENCH_USAGE_FILE": str(usage),
        "CONTROLLER_TEST_NOW": NOW.isoformat(),
        "CONTROLLER_SOURCE": str(root / "manifests"),
        "CONTROLLER_STATE": f"sqlite:{root / 'state.db'}",
        "CONTROLLER_OWNER": "bench",
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.measured", "reconcile", "--once"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"reconcile --once exited {done.returncode}: {done.stderr[-2000:]}")
    figures = json.loads(usage.read_text())
    return float(figures["cpu"]), wall, float(figures["rss_mib"])


def measure(kind: str, size: int, write: Callable[[int], str]) -> list[Row]:
    """Every row for one kind at one size."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifests = root / "manifests"
        manifests.mkdir()
        paths = []
        for i in range(size):
            path = manifests / f"m-{i:05d}.yaml"
            path.write_text(write(i))
            paths.append(path)
        read_floor, parse_floor = floors(paths)
        rows.append(Row(kind, size, "floor: read + SHA-256", read_floor, read_floor))
        rows.append(Row(kind, size, "floor: C-YAML parse", parse_floor, parse_floor))
        clock = FakeClock(NOW)
        sandbox = Sandbox(clock).start()
        try:
            os.environ.update(sandbox.env())
            sandbox.create_cluster("batch")
            sandbox.add_container_instances("batch", 4, cpu=2048, memory=4096)
            seeding = Controller(root, clock)
            snapshot = seeding.context.source.snapshot()
            loaded = seeding.context.loader.load(snapshot.files, snapshot.errors)
            seeding.context.executor.apply(adopt_history(loaded.desired, NOW))
            seeding.ledger.close()

            controller = Controller(root, clock)  # a new process: an empty parse cache
            for label, floor in (("cold pass", parse_floor), ("warm pass", read_floor)):
                with timed() as figures:
                    controller.measure(label)
                rows.append(Row(kind, size, label, figures[0], figures[1], floor=floor))
            for path in paths[::100]:
                edited = path.read_text().replace("metadata: {", "metadata: {labels: {e: 'y'}, ")
                path.write_text(edited)
            with timed() as figures:
                controller.measure("1 % changed")
            rows.append(Row(kind, size, "1 % changed", figures[0], figures[1], floor=read_floor))
            controller.ledger.close()
            cpu, wall, rss = cli_pass(root, sandbox)
            rows.append(Row(kind, size, "CLI reconcile --once", cpu, wall, rss, parse_floor))
        finally:
            sandbox.stop()
    return rows


def main() -> None:
    """Run the benchmark and print the table."""
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    rows: list[Row] = []
    for size in sizes:
        rows.extend(measure("JobRun", size, job))
        rows.extend(measure("CronJob", size, cron_manifest))
    header = ["kind", "manifests", "pass", "CPU s", "wall s", "CPU µs/manifest", "x floor"]
    header.append("peak RSS MiB")
    table = [header, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
    print(
        "\nx floor: cold pass and CLI pass against the C-YAML parse floor, warm and"
        " 1 % changed against the read + SHA-256 floor"
    )


if __name__ == "__main__":
    main()
