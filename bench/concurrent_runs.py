"""Benchmark (issue 4): 1,000 concurrent runs on the sandbox.

Passes: start all runs; observe them running; record their completion; then
a steady-state pass once everything has finished. The first passes run the
controller in this process (calls counted by its AwsSession); the
steady-state pass also runs as the real CLI in a child process that reports
its own CPU seconds and peak RSS (bench/measured.py): the controller alone,
without the sandbox that shares this process.

    .venv/bin/python -m bench.concurrent_runs [RUNS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sandbox_world import Controller, print_table, start_world

OPERATIONS = [
    ("ecs", "RegisterTaskDefinition"),
    ("ecs", "RunTask"),
    ("ecs", "ListTasks"),
    ("ecs", "DescribeTasks"),
    ("ecs", "StopTask"),
]


def cli_pass(root: Path, env: dict[str, str]) -> tuple[int, float, float, float]:
    """Run `controller reconcile --once` as a child; (exit, CPU s, wall s, peak RSS MiB)."""
    usage_file = root / "usage.json"
    env = {**env, "BENCH_USAGE_FILE": str(usage_file)}
    argv = [
        sys.executable,
        "-m",
        "bench.measured",
        "--source",
        str(root / "manifests"),
        "--state",
        f"sqlite:{root / 'state.db'}",
        "--owner",
        "bench",
        "reconcile",
        "--once",
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    usage = json.loads(usage_file.read_text())
    return done.returncode, float(usage["cpu"]), wall, float(usage["rss_mib"])


def main() -> None:
    """Run the passes and print the tables."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = start_world(root, runs, specs=20, duration=60, instances=10)
        clock = sandbox.clock
        try:
            controller = Controller(root, clock)  # type: ignore[arg-type]
            rows = []
            figures, result = controller.measure("start")
            assert result.applied.ok, result.applied.failed[:3]
            rows.append(figures)
            clock.advance(10)  # type: ignore[attr-defined]
            rows.append(controller.measure("running")[0])
            clock.advance(60)  # type: ignore[attr-defined]
            rows.append(controller.measure("finished")[0])
            rows.append(controller.measure("steady state")[0])
            phases = {r.phase.value for r in controller.ledger.view().runs.values()}
            print(f"{runs} concurrent runs; phases after the passes: {sorted(phases)}")
            print_table(rows, OPERATIONS)
            env = sandbox.subprocess_env()
            env["CONTROLLER_TEST_NOW"] = clock.now().isoformat()
            sandbox.reset_calls()
            code, cpu, wall, rss = cli_pass(root, env)
            calls = dict(sandbox.calls)
            print()
            print("steady-state pass as the real CLI (child process):")
            print(f"  exit {code}, CPU {cpu:.2f} s, wall {wall:.2f} s, peak RSS {rss:.0f} MiB")
            print(f"  AWS calls seen by the sandbox: {calls}")
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
