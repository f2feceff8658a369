"""Benchmark (issue 17): one indexed run of 1,000 indexes, 50 at a time, and the planner at 10,000.

Part 1 drives one JobRun with `completions: 1000, parallelism: 50` through
the real in-process pipeline against the sandbox (fake clock; each task
runs 30 s), pass after pass until the run ends, and prints the AWS calls
of the whole run (RegisterTaskDefinition must be 1, RunTask 1,000) and,
per pass, the observation calls against the indexes in flight. The floor
is one RunTask per index and one revision.

Part 2 times `make_plan` alone (pure, no AWS) for one run of 10,000
indexes in three states: the first pass (no index yet), half way (5,000
succeeded, 500 in flight) and the last index running. CPU seconds are the
median of 5 plannings. Nothing is asserted.

    .venv/bin/python -m bench.indexed [COMPLETIONS] [PARALLELISM]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.sandbox_world import Controller, start_world
from controller.model.build import job_spec_from_raw
from controller.model.identity import TAG_ATTEMPT, TAG_INDEX, TAG_OWNER, TAG_RUN, TAG_RUN_ID
from controller.model.manifest import Kind, RunKey
from controller.model.observed import ObservedState, ObservedTask
from controller.model.run import (
    AttemptOutcome,
    AttemptRecord,
    LedgerView,
    Phase,
    Reason,
    RunRecord,
    TaskRecord,
)
from controller.plan.planner import DesiredInput, make_plan
from controller.plan.records import DesiredRun

OBSERVE = ("ListTasks", "DescribeTasks")


def indexed_manifest(completions: int, parallelism: int, duration: int) -> str:
    """The one indexed JobRun of part 1."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        "metadata: {name: backfill}\n"
        "spec:\n"
        "  cluster: batch\n"
        "  launchType: EC2\n"
        f"  completions: {completions}\n"
        f"  parallelism: {parallelism}\n"
        "  taskDefinition:\n"
        "    family: backfill\n"
        "    containerDefinitions:\n"
        "      - name: app\n"
        "        image: busybox\n"
        "        cpu: 16\n"
        "        memory: 32\n"
        "        environment:\n"
        f'          - {{name: SANDBOX_DURATION_SECONDS, value: "{duration}"}}\n'
    )


def sandbox_run(completions: int, parallelism: int) -> None:
    """Part 1: the whole indexed run on the sandbox, with its AWS calls."""
    duration = 30
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = start_world(root, 0, 1, duration=duration, instances=4)
        (root / "manifests" / "backfill.yaml").write_text(
            indexed_manifest(completions, parallelism, duration)
        )
        try:
            controller = Controller(root, sandbox.clock)  # type: ignore[arg-type]
            total: Counter[tuple[str, str]] = Counter()
            per_pass: list[tuple[int, int, int]] = []  # (in flight, observe calls, described)
            cpu = 0.0
            wall0 = time.perf_counter()
            passes = 0
            while passes < 10 * completions:
                figures, _ = controller.measure(f"pass {passes}")
                passes += 1
                total += figures.calls
                cpu += figures.cpu_seconds
                view = controller.ledger.view()
                in_flight = sum(
                    1 for k, r in view.runs.items() if k.index is not None and not r.phase.terminal
                )
                observe = sum(figures.calls.get(("ecs", op), 0) for op in OBSERVE)
                per_pass.append(
                    (in_flight, observe, figures.calls.get(("ecs", "DescribeTasks"), 0))
                )
                run = view.runs.get(RunKey("backfill", "1"))
                if run is not None and run.phase.terminal:
                    break
                sandbox.clock.advance(duration / 2)  # type: ignore[attr-defined]
            wall = time.perf_counter() - wall0
        finally:
            sandbox.stop()
    print(
        f"one indexed run: completions {completions}, parallelism {parallelism}, tasks {duration} s"
    )
    ended = f"{run.phase.value}/{run.reason.value}" if run is not None else "not recorded"
    print(f"  ended {ended} after {passes} passes")
    rows = [
        ("RegisterTaskDefinition", total[("ecs", "RegisterTaskDefinition")], 1),
        ("RunTask", total[("ecs", "RunTask")], completions),
        ("DescribeTasks", total[("ecs", "DescribeTasks")], None),
        ("ListTasks", total[("ecs", "ListTasks")], None),
        ("all AWS calls", sum(total.values()), None),
    ]
    print(f"  {'operation':<24}{'calls':>8}{'floor':>8}{'x floor':>9}")
    for name, calls, floor in rows:
        ratio = f"{calls / floor:.2f}" if floor else "-"
        print(f"  {name:<24}{calls:>8}{floor if floor else '-':>8}{ratio:>9}")
    busiest = max(per_pass, key=lambda p: p[1])
    most_flight = max(p[0] for p in per_pass)
    print(
        f"  observation per pass: at most {busiest[1]} ListTasks+DescribeTasks calls"
        f" ({busiest[2]} DescribeTasks) with at most {most_flight} indexes unfinished"
        f" (DescribeTasks takes 100 tasks a call)"
    )
    print(
        f"  controller CPU {cpu:.2f} s in all ({cpu / passes * 1000:.1f} ms a pass),"
        f" wall {wall:.1f} s"
    )


NOW = datetime(2026, 12, 2, tzinfo=UTC)
TD = {
    "family": "backfill",
    "containerDefinitions": [{"name": "app", "image": "busybox", "cpu": 16, "memory": 32}],
}
TD_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/backfill:1"


def index_record(run: RunKey, index: int, frozen: dict[str, object], done: bool) -> RunRecord:
    """One index as the ledger holds it: succeeded, or with a RUNNING task."""
    key = run.of_index(index)
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/batch/{index:05d}"
    task = TaskRecord(
        arn,
        "STOPPED" if done else "RUNNING",
        {"app": 0} if done else {},
        "EssentialContainerExited" if done else None,
        started_at=NOW,
        stopped_at=NOW if done else None,
    )
    attempt = AttemptRecord(
        number=1,
        client_token=f"{index}",
        task_definition_arn=TD_ARN,
        request={"cluster": "batch"},
        intent_at=NOW,
        tasks=(task,),
        submitted=True,
        outcome=AttemptOutcome.SUCCEEDED if done else None,
        finished_at=NOW if done else None,
    )
    return RunRecord(
        key=key,
        kind=Kind.JOB_RUN,
        phase=Phase.SUCCEEDED if done else Phase.RUNNING,
        reason=Reason.COMPLETED if done else Reason.RUNNING,
        message="",
        created_at=NOW,
        updated_at=NOW,
        spec_digest="d",
        frozen_spec=frozen,
        task_definition_arn=TD_ARN,
        attempts=(attempt,),
        finished_at=NOW if done else None,
    )


def planner_cpu(completions: int, succeeded: int, running: int, parallelism: int) -> float:
    """Median CPU seconds of one make_plan over one indexed run in that state."""
    raw = {
        "cluster": "batch",
        "completions": completions,
        "parallelism": parallelism,
        "taskDefinition": TD,
    }
    spec = job_spec_from_raw(raw)
    key = RunKey("backfill", "1")
    desired = DesiredRun(key, Kind.JOB_RUN, spec, False, spec.digest)
    runs: dict[RunKey, RunRecord] = {}
    tasks: dict[str, ObservedTask] = {}
    if succeeded or running:
        for index in range(succeeded + running):
            record = index_record(key, index, dict(raw), index < succeeded)
            runs[record.key] = record
            if index >= succeeded:
                seen = record.attempts[0].tasks[0]
                tags = {
                    TAG_OWNER: "bench",
                    TAG_RUN: "backfill",
                    TAG_RUN_ID: "1",
                    TAG_ATTEMPT: "1",
                    TAG_INDEX: str(index),
                }
                tasks[seen.arn] = ObservedTask(seen, "batch", TD_ARN, "ejc/bench", tags)
        parent = replace(
            next(iter(runs.values())),
            key=key,
            attempts=(),
            phase=Phase.RUNNING,
            reason=Reason.RUNNING,
        )
        runs[key] = parent
    # The family is listed (empty): a first pass plans its registration.
    observed = ObservedState(tasks=tasks, families={"backfill": ()})
    ledger = LedgerView(runs=runs)
    wanted = DesiredInput(runs={key: desired}, names=frozenset({"backfill"}))
    samples = []
    for _ in range(5):
        ledger = LedgerView(runs=runs)  # the per-view caches are part of the cost
        cpu0 = time.process_time()
        plan = make_plan(wanted, observed, ledger, NOW + timedelta(seconds=1), "bench")
        samples.append(time.process_time() - cpu0)
        assert not plan.errors, plan.errors
    samples.sort()
    return samples[len(samples) // 2]


def main() -> None:
    """Run both parts and print their tables."""
    completions = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    parallelism = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    sandbox_run(completions, parallelism)
    print()
    print("make_plan over one run of 10,000 indexes (CPU ms, median of 5)")
    print(f"  {'state':<40}{'CPU ms':>8}")
    for label, done, live, width in (
        ("first pass: no index yet, parallelism 500", 0, 0, 500),
        ("5,000 succeeded, 500 running", 5000, 500, 500),
        ("9,999 succeeded, 1 running", 9999, 1, 500),
    ):
        print(f"  {label:<40}{planner_cpu(10_000, done, live, width) * 1000:>8.1f}")


if __name__ == "__main__":
    main()
