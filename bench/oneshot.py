"""Benchmark (issue 15): what one `controller oneshot` costs, against the peers.

Real time throughout: the sandbox runs in this process on a SystemClock with
a ticker (tasks start and end on their own, as in ECS); the real CLI runs as
a child process, exactly as a CI job would run it. One run of a JobRun whose
container logs through awslogs and exits 3 after TASK_SECONDS; the child's
exit status must be 3.

Rows: a fresh ledger whose revision is not registered yet (it registers
one); a fresh ledger whose revision exists (a new CI runner: found by its
spec-hash tag, never registered again); the same ledger again (the revision
is known: not even described); each at the sandbox's default latency (none)
and at SANDBOX_LATENCY_MS=50; and with `--poll-seconds 1` (the default is 5,
like `controller run --active-poll-seconds`). Each row is the median of
REPEATS runs, by overhead. Calls are the sandbox's count
of every request the child made, by operation; wall is the child's whole
life, interpreter start included; overhead is wall minus the task's own
duration (its stoppedAt - createdAt in ECS), split into the time from the
child's start to RunTask and from the task's stop to the child's exit (the
look that sees the stop comes within --poll-seconds). `startup` is what a bare
`controller --version` costs on this machine: the part of the overhead no
protocol can save.

Peers, from their code: ecs-task-run makes 8 calls and registers a revision
every time; hako's oneshot about 3 + 1 per second of run time (it polls
DescribeTasks every second).

    .venv/bin/python -m bench.oneshot
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from controller.clock import SystemClock
from controller.sandbox import Sandbox

warnings.filterwarnings("ignore", category=UserWarning, module="moto")

REGION = "us-east-1"
CLUSTER = "batch"
OWNER = "bench"
#: Not a multiple of the 5 s poll, so the end does not race the look that sees it.
TASK_SECONDS = 12
EXIT_CODE = 3
LOG_GROUP = "/ecs/bench"
#: Each row is the median (by overhead) of this many runs.
REPEATS = 3
OPERATIONS = (
    "ListTaskDefinitions",
    "DescribeTaskDefinition",
    "RegisterTaskDefinition",
    "RunTask",
    "DescribeTasks",
    "ListTasks",
    "GetLogEvents",
)
MANIFEST = f"""\
apiVersion: ecs-job-controller/v1
kind: JobRun
metadata: {{name: report}}
spec:
  cluster: {CLUSTER}
  launchType: EC2
  taskDefinition:
    family: report
    cpu: '256'
    memory: '512'
    containerDefinitions:
      - name: app
        image: busybox
        environment:
          - {{name: SANDBOX_EXIT_CODE, value: '{EXIT_CODE}'}}
          - {{name: SANDBOX_DURATION_SECONDS, value: '{TASK_SECONDS}'}}
        logConfiguration:
          logDriver: awslogs
          options: {{awslogs-group: {LOG_GROUP}, awslogs-region: {REGION},
                    awslogs-stream-prefix: jobs}}
"""


@dataclass
class Row:
    """One oneshot run's figures."""

    label: str
    calls: Counter[tuple[str, str]]
    wall: float
    task: float
    status: int
    #: from the child's start to RunTask (the task's createdAt)
    to_run_task: float
    #: from the task's stoppedAt to the child's exit
    after_stop: float

    @property
    def overhead(self) -> float:
        """Wall seconds above the task's own duration."""
        return self.wall - self.task


def _cli(sandbox: Sandbox, root: Path, state: str, *args: str) -> tuple[int, float, str]:
    argv = [
        sys.executable,
        "-m",
        "controller",
        "--source",
        str(root / "manifests"),
        "--state",
        state,
        "--owner",
        OWNER,
        *args,
    ]
    began = time.monotonic()
    done = subprocess.run(
        argv, env=sandbox.subprocess_env(), capture_output=True, text=True, check=False
    )
    return done.returncode, time.monotonic() - began, done.stdout


def _task_times(sandbox: Sandbox, root: Path, state: str, run_id: str) -> tuple[float, float]:
    """When the run's task was created and when it stopped (epoch seconds, the sandbox's clock)."""
    _, _, out = _cli(sandbox, root, state, "status", "report", "-o", "json")
    (run,) = [r for r in json.loads(out)["runs"] if r["runId"] == run_id]
    arn = run["attempts"][-1]["taskArns"][0]
    ecs = sandbox.client("ecs", counted=False)
    task = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    return task["createdAt"].timestamp(), task["stoppedAt"].timestamp()


def _one(sandbox: Sandbox, root: Path, label: str, state: str, run_id: str, *extra: str) -> Row:
    sandbox.reset_calls()
    began = time.time()
    status, wall, _ = _cli(sandbox, root, state, "oneshot", "report", "--run-id", run_id, *extra)
    ended = began + wall
    calls = Counter(sandbox.calls)
    created, stopped = _task_times(sandbox, root, state, run_id)
    return Row(label, calls, wall, stopped - created, status, created - began, ended - stopped)


def _median_row(rows: list[Row]) -> Row:
    """The run of median overhead (the machine is shared: one sample is noisy)."""
    return sorted(rows, key=lambda r: r.overhead)[len(rows) // 2]


def measure(latency: str, root: Path, repeats: int) -> list[Row]:
    """The rows at one latency (see the module docstring), each the median of `repeats`."""
    named = f"{latency or '0'} ms"
    labels = (
        "fresh ledger, new revision",
        "fresh ledger, revision exists",
        "same ledger, revision known",
        "same ledger, --poll-seconds 1",
    )
    samples: dict[str, list[Row]] = {label: [] for label in labels}
    for round_ in range(repeats):
        # A new sandbox per round: the first row finds the family empty again.
        with Sandbox(SystemClock(), REGION, tick_seconds=0.1, latency=latency) as sandbox:
            sandbox.create_cluster(CLUSTER)
            sandbox.add_container_instances(CLUSTER, 1, cpu=2048, memory=4096)
            sandbox.create_log_group(LOG_GROUP)
            first = f"sqlite:{root / f'first-{latency or 0}-{round_}.db'}"
            second = f"sqlite:{root / f'second-{latency or 0}-{round_}.db'}"
            states = (first, second, second, second)
            extras: tuple[tuple[str, ...], ...] = ((), (), (), ("--poll-seconds", "1"))
            for number, (label, state, extra) in enumerate(
                zip(labels, states, extras, strict=True)
            ):
                row = _one(sandbox, root, f"{named}, {label}", state, f"r{number}", *extra)
                samples[label].append(row)
    return [_median_row(samples[label]) for label in labels]


def _startup(root: Path) -> float:
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "controller", "--version"],
        capture_output=True,
        check=True,
        cwd=root,
    )
    return time.monotonic() - began


def main() -> None:
    """Print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "manifests").mkdir()
        (root / "manifests" / "report.yaml").write_text(MANIFEST)
        rows = [*measure("", root, REPEATS), *measure("50", root, REPEATS)]
        startup = _startup(root)
    short = {
        "ListTaskDefinitions": "ListTD",
        "DescribeTaskDefinition": "DescTD",
        "RegisterTaskDefinition": "RegTD",
        "RunTask": "RunTask",
        "DescribeTasks": "DescTasks",
        "ListTasks": "ListTasks",
        "GetLogEvents": "GetLogs",
    }
    header = [
        "scenario",
        *short.values(),
        "other",
        "total",
        "exit",
        "wall s",
        "task s",
        "overhead s",
        "to RunTask s",
        "after stop s",
    ]
    print(f"oneshot of one {TASK_SECONDS} s task exiting {EXIT_CODE} (awslogs), real time")
    print(" | ".join(header))
    for row in rows:
        counts = [row.calls[("ecs", op)] + row.calls[("logs", op)] for op in OPERATIONS]
        other = sum(row.calls.values()) - sum(counts)
        print(
            " | ".join(
                [
                    row.label,
                    *(str(c) for c in counts),
                    str(other),
                    str(sum(row.calls.values())),
                    str(row.status),
                    f"{row.wall:.1f}",
                    f"{row.task:.1f}",
                    f"{row.overhead:.1f}",
                    f"{row.to_run_task:.1f}",
                    f"{row.after_stop:.1f}",
                ]
            )
        )
    print(f"startup (controller --version): {startup:.2f} s")
    print(
        f"peers: ecs-task-run 8 calls, registers a revision every run;"
        f" hako oneshot ~3 + 1/s = ~{3 + TASK_SECONDS} calls for this task"
    )


if __name__ == "__main__":
    main()
