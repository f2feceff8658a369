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

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.load_manifests import (
    Row,
    cron_manifest,
    edit_one_in_a_hundred,
    floor_rows,
    print_rows,
    timed,
    write_files,
)
from bench.sandbox_world import Controller, job_manifest
from controller.clock import FakeClock
from controller.plan.adopt import adopt_history
from controller.sandbox import Sandbox

SIZES = (1_000, 10_000, 50_000)
NOW = datetime(2026, 12, 2, 12, 0, 30, tzinfo=UTC)


def job(i: int) -> str:
    """One JobRun `job-<i>` over 20 families."""
    return job_manifest(i, f"fam-{i % 20}", duration=60)


KINDS = {"JobRun": job, "CronJob": cron_manifest}


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


def measure(kind: str, size: int) -> list[Row]:
    """Every row for one kind at one size."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = write_files(root / "manifests", size, KINDS[kind])
        read_floor, parse_floor = floor_rows(kind, paths)
        rows = [read_floor, parse_floor]
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
                rows.append(Row(kind, size, label, figures.cpu, figures.wall, floor.cpu))
            edit_one_in_a_hundred(paths)
            with timed() as figures:
                controller.measure("1 % changed")
            rows.append(Row(kind, size, "1 % changed", figures.cpu, figures.wall, read_floor.cpu))
            controller.ledger.close()
            cpu, wall, rss = cli_pass(root, sandbox)
            rows.append(Row(kind, size, "CLI reconcile --once", cpu, wall, parse_floor.cpu, rss))
        finally:
            sandbox.stop()
    return rows


def main() -> None:
    """Run the benchmark and print the table."""
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    print_rows([row for size in sizes for kind in KINDS for row in measure(kind, size)])
    print(
        "\nx floor: cold pass and CLI pass against the C-YAML parse floor, warm and"
        " 1 % changed against the read + SHA-256 floor"
    )


if __name__ == "__main__":
    main()
