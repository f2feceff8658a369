"""Benchmark (issue 3): AWS calls of passes over 1,000 JobRuns sharing 20 specs.

First pass: 20 registrations and 1,000 RunTasks. Second pass (tasks still
running): no RegisterTaskDefinition and no DescribeTaskDefinition of a
revision already seen. A fresh process with an empty gateway cache but the
same ledger shows that described revisions are remembered durably.

    .venv/bin/python bench/taskdef_reuse.py [JOBS] [SPECS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.sandbox_world import Controller, print_table, start_world

OPERATIONS = [
    ("ecs", "ListTaskDefinitions"),
    ("ecs", "DescribeTaskDefinition"),
    ("ecs", "RegisterTaskDefinition"),
    ("ecs", "RunTask"),
    ("ecs", "ListTasks"),
    ("ecs", "DescribeTasks"),
]


def main() -> None:
    """Run the passes and print the table."""
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    specs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = start_world(root, jobs, specs, duration=3600, instances=10)
        try:
            controller = Controller(root, sandbox.clock)  # type: ignore[arg-type]
            first, result = controller.measure("1st pass")
            assert result.applied.ok, result.applied.failed[:3]
            second, _ = controller.measure("2nd pass")
            # A new manifest using an existing spec, read by a new process.
            (root / "manifests" / "late.yaml").write_text(
                (root / "manifests" / "job-00000.yaml").read_text().replace("job-0", "late-0")
            )
            fresh = Controller(root, sandbox.clock)  # type: ignore[arg-type]
            third, _ = fresh.measure("new process, 1 new run")
            print(f"{jobs} JobRuns sharing {specs} specs")
            print_table([first, second, third], OPERATIONS)
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
