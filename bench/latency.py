"""Benchmark (issue 14): passes against an AWS that answers in 150 ms and throttles like ECS.

Real time throughout. The sandbox runs on a SystemClock with 150 ms added to
every ECS call (`SANDBOX_LATENCY_MS=ecs:150`), optionally with ECS's
published token buckets (`SANDBOX_THROTTLE=ecs`), in a child process of its
own: its moto work then has its own interpreter (no GIL shared with the
controller), and its own CPU seconds are read there and reported apart. The
controller runs in this process through the production wiring
(`controller.runtime.wiring.build_pass`, as `controller reconcile --once`
does: a fresh pool, pacer and pass budget for every pass), so its calls are
counted exactly by its AwsSession.

Scenarios: 100 and 1,000 new runs sharing 4 task-definition specs; the
starting pass, then (once every task has ended: 1 s each) the observing
pass that records the outcomes. The same for 1,000 runs with the sandbox
throttling; 100 runs with `--max-concurrency 1` against 16; the starting
pass of 200 runs (the size of issue 14's "Done when"); and 1,000 runs with
the client-side pacing raised far above ECS's rates, to show what the pool
alone would do (no real ECS account would take that pass).

Columns: the controller's ECS calls by operation; wall seconds of the pass;
wall / (ECS calls x 150 ms), i.e. against one call at a time; the floor ECS's
published buckets set (the sandbox's `ecs` preset figures: per bucket
(calls - burst) / refill, the largest; the controller's pacer keeps to the
same buckets, so it applies with the sandbox throttling or not) and the
ratio to it; calls the sandbox answered ThrottlingException; duplicates
(tasks ECS holds per run beyond one, from ListTasks/DescribeTasks of every
task); ACTIVE revisions per spec; the most calls in flight at once (as the
sandbox counted them); the controller's and the sandbox's CPU seconds.

    .venv/bin/python -m bench.latency [--quick]     (--quick: 100 runs only)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.sandbox_world import write_manifests
from controller.clock import SystemClock
from controller.model.identity import TAG_RUN, TAG_RUN_ID, started_by
from controller.model.run import Phase
from controller.runtime.wiring import PassOptions, Settings, build_pass
from controller.sandbox.throttle import ECS_PRESET, Throttle
from controller.state.sqlite import SqliteLedger

REGION = "us-east-1"
CLUSTER = "batch"
OWNER = "bench"
SPECS = 4
LATENCY_MS = 150.0
#: How long each task runs: the observing pass comes once all have ended.
TASK_SECONDS = 1
#: Container instances big enough for every run at once (16 CPU units, 32 MiB each).
INSTANCES = 4
INSTANCE_CPU = 8192
INSTANCE_MEMORY = 16384
#: `--aws-rate` that lifts the client-side pacing out of the way (the "unpaced" rows).
UNPACED = (
    "cluster-modify=100000:100000",
    "cluster-read=100000:100000",
    "taskdef-modify=100000:100000",
    "taskdef-read=100000:100000",
)
OPERATIONS = ("RegisterTaskDefinition", "RunTask", "ListTasks", "DescribeTasks")


# --- the sandbox, in a child process -------------------------------------------------------


def _serve(conn: Connection, latency: str, throttle: str) -> None:
    """The child: a sandbox answering the parent's questions until told to stop."""
    warnings.filterwarnings("ignore", category=UserWarning, module="moto")
    from controller.sandbox import Sandbox  # moto is imported in the child only

    with Sandbox(SystemClock(), REGION, latency=latency, throttle=throttle) as sandbox:
        sandbox.create_cluster(CLUSTER)
        sandbox.add_container_instances(
            CLUSTER, INSTANCES, cpu=INSTANCE_CPU, memory=INSTANCE_MEMORY
        )
        conn.send(sandbox.env())
        while True:
            command = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "reset_calls":
                sandbox.reset_calls()
                conn.send(None)
            elif command == "stats":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                conn.send(
                    {
                        "calls": sandbox.calls,
                        "throttled": sandbox.throttled,
                        "peak": sandbox.in_flight_peak(),
                        "cpu": usage.ru_utime + usage.ru_stime,
                    }
                )
            elif command == "world":
                conn.send(_world(sandbox))


def _world(sandbox: Any) -> dict[str, Any]:
    """Tasks per run (every task ECS holds, running or stopped) and ACTIVE revisions per family."""
    ecs = sandbox.client("ecs", counted=False)
    found: dict[str, None] = {}  # a task that stops between the two listings is in both
    for status in ("RUNNING", "STOPPED"):
        pages = ecs.get_paginator("list_tasks").paginate(
            cluster=CLUSTER, startedBy=started_by(OWNER), desiredStatus=status
        )
        found.update((arn, None) for page in pages for arn in page["taskArns"])
    arns = list(found)
    per_run: Counter[tuple[str, str]] = Counter()
    for start in range(0, len(arns), 100):
        described = ecs.describe_tasks(
            cluster=CLUSTER, tasks=arns[start : start + 100], include=["TAGS"]
        )
        for task in described["tasks"]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            per_run[(tags.get(TAG_RUN, "?"), tags.get(TAG_RUN_ID, "?"))] += 1
    revisions = {
        f"fam-{spec}": len(
            ecs.list_task_definitions(familyPrefix=f"fam-{spec}", status="ACTIVE")[
                "taskDefinitionArns"
            ]
        )
        for spec in range(SPECS)
    }
    return {"tasks_per_run": dict(per_run), "revisions": revisions}


class SandboxProcess:
    """The child process running the sandbox, and the pipe to ask it things."""

    def __init__(self, throttle: str) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: moto's own state
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, f"ecs:{LATENCY_MS:g}", throttle), daemon=True
        )
        self._process.start()
        self.env: dict[str, str] = self._conn.recv()

    def ask(self, command: str) -> Any:
        """Send a command; its answer."""
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        """Stop the sandbox and wait for the child to end."""
        self.ask("stop")
        self._process.join(30)


# --- the controller, in this process ---------------------------------------------------------


@dataclass
class Row:
    """One pass, measured."""

    scenario: str
    label: str
    runs: int
    calls: Counter[tuple[str, str]]
    wall: float
    cpu: float
    sandbox_cpu: float
    throttled: int
    peak: int
    duplicates: int
    unstarted: int
    revisions: list[int]
    deferred: int
    failed: int


def controller_pass(
    root: Path, options: PassOptions
) -> tuple[Counter[tuple[str, str]], float, float, int, int]:
    """One `reconcile --once`, wired as the CLI does; (calls, wall s, CPU s, deferred, failed)."""
    settings = Settings(
        source=str(root / "manifests"),
        state=f"sqlite:{root / 'state.db'}",
        owner=OWNER,
        region=REGION,
    )
    with build_pass(settings, dry_run=False, options=options, lock="bench.latency") as wiring:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = wiring.reconcile()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        calls = wiring.session.call_counts()
    return calls, wall, cpu, len(result.applied.deferred), len(result.applied.failed)


def measured_pass(
    scenario: str, label: str, root: Path, runs: int, sandbox: SandboxProcess, options: PassOptions
) -> Row:
    """A controller pass and what the sandbox saw of it."""
    sandbox.ask("reset_calls")
    before = sandbox.ask("stats")
    calls, wall, cpu, deferred, failed = controller_pass(root, options)
    after = sandbox.ask("stats")
    world = sandbox.ask("world")
    tasks_per_run: dict[tuple[str, str], int] = world["tasks_per_run"]
    return Row(
        scenario=scenario,
        label=label,
        runs=runs,
        calls=calls,
        wall=wall,
        cpu=cpu,
        sandbox_cpu=after["cpu"] - before["cpu"],
        throttled=sum(after["throttled"].values()),
        peak=after["peak"],
        duplicates=sum(n - 1 for n in tasks_per_run.values() if n > 1),
        unstarted=runs - len(tasks_per_run),
        revisions=sorted(world["revisions"].values()),
        deferred=deferred,
        failed=failed,
    )


def scenario(
    name: str,
    runs: int,
    *,
    throttle: str = "",
    max_concurrency: int = 16,
    aws_rates: tuple[str, ...] = (),
    observe: bool = True,
) -> list[Row]:
    """The starting pass of `runs` new runs, then (with `observe`) the pass after they ended."""
    options = PassOptions(max_concurrency=max_concurrency, aws_rates=aws_rates)
    sandbox = SandboxProcess(throttle)
    saved = dict(os.environ)
    try:
        os.environ.update(sandbox.env)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_manifests(root, runs, SPECS, TASK_SECONDS)
            rows = [measured_pass(name, "start", root, runs, sandbox, options)]
            if observe:
                time.sleep(TASK_SECONDS + 1)  # real time: the tasks end on the sandbox's clock
                rows.append(measured_pass(name, "observe", root, runs, sandbox, options))
                ledger = SqliteLedger(root / "state.db", read_only=True)
                phases = Counter(r.phase for r in ledger.view().runs.values())
                ledger.close()
                if phases != Counter({Phase.SUCCEEDED: runs}):
                    print(f"  {name}: phases after the observing pass: {dict(phases)}")
            return rows
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox.stop()


# --- the table -------------------------------------------------------------------------------


def rate_floor(calls: Counter[tuple[str, str]]) -> float:
    """Seconds ECS's buckets need for these calls: the most (n - burst) / refill of a bucket."""
    buckets = Throttle.parse(ECS_PRESET)
    taken: dict[int, tuple[Any, int]] = {}
    for (service, operation), count in calls.items():
        bucket = buckets.bucket(service, operation)
        if bucket is not None:
            _, before = taken.get(id(bucket), (bucket, 0))
            taken[id(bucket)] = (bucket, before + count)
    return max(
        (max(0, n - b.burst) / b.refill for b, n in taken.values() if b.refill > 0), default=0.0
    )


def print_table(rows: list[Row]) -> None:
    """One line per pass."""
    header = [
        "scenario", "pass", "runs", *OPERATIONS, "other", "ECS calls", "wall s",
        "wall/(calls x 150ms)", "rate floor s", "wall/floor", "throttled", "dup",
        "rev/spec", "peak in flight", "ctl CPU s", "sandbox CPU s", "deferred", "failed",
    ]  # fmt: skip
    lines = [header]
    for row in rows:
        ecs = Counter({op: n for (service, op), n in row.calls.items() if service == "ecs"})
        named = [ecs.get(op, 0) for op in OPERATIONS]
        total = sum(ecs.values())
        floor = rate_floor(row.calls)
        lines.append(
            [
                row.scenario,
                row.label,
                str(row.runs),
                *map(str, named),
                str(sum(row.calls.values()) - sum(named)),
                str(total),
                f"{row.wall:.2f}",
                f"{row.wall / (total * LATENCY_MS / 1000):.3f}" if total else "-",
                f"{floor:.2f}",
                f"{row.wall / floor:.2f}" if floor > 0 else "-",
                str(row.throttled),
                str(row.duplicates) + (f" ({row.unstarted} unstarted)" if row.unstarted else ""),
                "/".join(map(str, row.revisions)),
                str(row.peak),
                f"{row.cpu:.2f}",
                f"{row.sandbox_cpu:.2f}",
                str(row.deferred),
                str(row.failed),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


def main() -> None:
    """Run the scenarios and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 runs only")
    arguments = parser.parse_args()
    big = 100 if arguments.quick else 1000
    rows = [
        *scenario("16 workers", 100),
        *scenario("1 worker", 100, max_concurrency=1, observe=False),
    ]
    if not arguments.quick:
        rows += scenario("16 workers", 200, observe=False)  # the "Done when" size
        rows += scenario("16 workers", big)
    rows += scenario("throttle=ecs", big, throttle=ECS_PRESET)
    if not arguments.quick:
        rows += scenario("unpaced", big, aws_rates=UNPACED, observe=False)
    print(
        f"ECS latency {LATENCY_MS:g} ms per call; {SPECS} specs; --max-concurrency 16 unless"
        " said; rate floor from ECS's published buckets (the sandbox's 'ecs' preset)"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
