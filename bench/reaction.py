"""Benchmark (issue 13): how soon `controller run` reacts to ECS in real time, and its idle cost.

Real time throughout: a sandbox on the system clock whose simulated agent
and Auto Scaling fleet move on their own (a ticker every 0.1 s), and the
real `controller run` as a child process, `--resync-seconds 3600` so that
no resync can explain a reaction. Times are read on the side that knows
them: the sandbox (a task's `stoppedAt`, a container instance's
`registeredAt`, and when each of the controller's calls arrived:
`Sandbox(call_times=True)`) and the child's own log lines (ISO timestamps,
same clock). The bench's own look at the sandbox is uncounted.

(a) A task STOPPED in ECS -> its run terminal in the ledger: N JobRuns with
    staggered durations (so the stops fall at every phase of the look
    cadence); per run, the `Record NAME/1 Succeeded` line's time minus the
    task's `stoppedAt`. The line is logged after the pass wrote the ledger,
    so this is an upper bound. With polling (`--active-poll-seconds 5`, the
    default) and with `--events-queue`. Below the table: how much of it was
    waiting for the pass (the look cadence, or the event's way) and how
    much the pass itself.
(b) RunTask placement failure -> SetDesiredCapacity: one instance of an
    Auto Scaling group, four runs of one instance each; the first RunTask
    places, the second is the first failure; the figure is the first
    SetDesiredCapacity's arrival minus that RunTask's. One fresh world per
    trial.
(c) Instances registered -> every waiting run started: in the same trials,
    the new instances' `registeredAt` to the RunTask of the last waiting
    run. The group's registration delay differs per trial, so registrations
    fall at every phase of the 5 s look cadence.
(d) AWS calls of an idle loop (polling, 5 s) with 0, 100 and 1,000 active
    runs (long tasks; the 0 case holds 20 finished runs, which must cost
    nothing): every call the controller made during a 30 s window (15 s
    with `--quick`) that starts half a period after the pass that recorded
    the runs Running, per minute and per look (calls closer than half a
    period to the previous one belong to its look; a look in flight when
    the window ends counts whole). Goal: none at all with no active run
    (the resync aside, and none falls in the window), at most
    2 + active/100 per look, and no pass in the window.

"met" compares the p95 with the goal (the max is shown beside it). The
sandbox's agent acts at its ticks, so a task stopped at `stoppedAt` is seen
(and its event emitted) up to 0.1 s later; that is in the figures.

    .venv/bin/python -m bench.reaction [--quick]

Full: about 5 minutes; `--quick` (fewer runs and trials, 15 s windows): about 3.
"""

from __future__ import annotations

import argparse
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.figure_table import print_figure_table
from bench.sandbox_world import job_manifest
from controller.clock import SystemClock
from controller.sandbox import Sandbox
from controller.sandbox.wsgi import TimedCall

warnings.filterwarnings("ignore", category=UserWarning, module="moto")

POLL_SECONDS = 5.0
#: the bound on every wait for the child or the sandbox
DEADLINE = 120.0
OWNER = "bench"
SMALL = "cpu: 256\n        memory: 512"
WHOLE_INSTANCE = "cpu: 1024\n        memory: 2048"
GROUP = "reaction-asg"
#: every child's start-up (process start -> first pass done), for the notes
STARTUPS: list[float] = []


class Child:
    """`controller run` as a child process; its log lines collected as they come."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.started_at = datetime.now(UTC)
        self.process = subprocess.Popen(
            list(argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_until(self, done: Callable[[list[str]], bool], what: str, timeout: float) -> None:
        """Wait until `done(lines)` holds; exit with the output if the child ends first."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or done(self.lines), timeout)
            if done(self.lines):
                return
        raise SystemExit(f"no {what} within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        """The child's last 40 lines (for a failure message)."""
        with self._changed:
            return "\n".join(self.lines[-40:])

    def startup_seconds(self) -> float | None:
        """From starting the process to the end of its first pass (None: no pass yet)."""
        with self._changed:
            first = next((line for line in self.lines if " pass done " in line), None)
        return None if first is None else (line_time(first) - self.started_at).total_seconds()

    def snapshot(self) -> list[str]:
        with self._changed:
            return list(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)


def line_time(line: str) -> datetime:
    """The ISO timestamp that starts a text log line."""
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))


def recorded(lines: Sequence[str], phase: str) -> dict[str, str]:
    """Run name -> the first `Record NAME/1 PHASE/...` line."""
    found: dict[str, str] = {}
    for line in lines:
        if " Record " in line and f"/1 {phase}/" in line:
            name = line.split(" Record ", 1)[1].split("/", 1)[0]
            found.setdefault(name, line)
    return found


def pass_of(line: str) -> str:
    """The pass id of a log line."""
    return line.split(" pass=", 1)[1].split(" ", 1)[0]


def pass_seconds(lines: Sequence[str]) -> dict[str, float]:
    """Pass id -> how long the pass took (its `pass done ... seconds=` line)."""
    found: dict[str, float] = {}
    for line in lines:
        if " pass done " in line:
            found[pass_of(line)] = float(line.split(" seconds=", 1)[1].split(" ", 1)[0])
    return found


def settled(lines: Sequence[str], names: set[str], phase: str) -> bool:
    """Every run of `names` recorded in `phase`, and the passes that did it finished."""
    records = recorded(lines, phase)
    if not names <= records.keys():
        return False
    return {pass_of(records[n]) for n in names} <= pass_seconds(lines).keys()


@dataclass
class World:
    """A real-time sandbox, a manifest directory and the controller watching it."""

    sandbox: Sandbox
    root: Path
    child: Child

    def write(self, name: str, text: str) -> None:
        # Write under another name, then rename: the watcher sees whole files.
        temporary = self.root / "manifests" / f".{name}.tmp"
        temporary.write_text(text)
        temporary.rename(self.root / "manifests" / name)

    def ecs(self) -> Any:
        return self.sandbox.client("ecs", counted=False)


@contextmanager
def world(
    manifests: dict[str, str], setup: Callable[[Sandbox], None], *, events: bool
) -> Iterator[World]:
    """Seed a sandbox with `setup` and `manifests`, start `controller run` on it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "manifests").mkdir()
        for name, text in manifests.items():
            (root / "manifests" / name).write_text(text)
        sandbox = Sandbox(SystemClock(), tick_seconds=0.1, call_times=True).start()
        child: Child | None = None
        try:
            sandbox.create_cluster("batch")
            setup(sandbox)
            argv = [
                sys.executable,
                "-m",
                "controller",
                "--source",
                str(root / "manifests"),
                "--state",
                f"sqlite:{root / 'state.db'}",
                "--owner",
                OWNER,
                "run",
                "--resync-seconds",
                "3600",
                "--active-poll-seconds",
                str(POLL_SECONDS),
                "--metrics-addr",
                "127.0.0.1:0",
            ]
            if events:
                argv += ["--events-queue", sandbox.create_events_queue("ejc-events", ["batch"])]
            child = Child(argv, sandbox.subprocess_env())
            yield World(sandbox, root, child)
        finally:
            if child is not None:
                child.stop()
                startup = child.startup_seconds()
                if startup is not None:
                    STARTUPS.append(startup)
            sandbox.stop()


# --- (a) ----------------------------------------------------------------------------------


@dataclass
class StopFigures:
    """Per run: STOPPED -> terminal in the ledger, and its two parts."""

    latencies: list[float]
    #: stoppedAt -> the start of the pass that recorded it
    waits: list[float]
    #: that pass's own duration
    passes: list[float]


def stop_to_ledger(tasks: int, *, events: bool) -> StopFigures:
    """Run `tasks` JobRuns of staggered durations; time each stop until it is recorded."""
    # 1.07 s apart: not a divisor of the 5 s cadence, so the stops fall at every phase.
    durations = [3.0 + 1.07 * i for i in range(tasks)]
    manifests = {
        f"job-{i:03d}.yaml": job_manifest(i, "reaction", duration=d, sizes=SMALL)
        for i, d in enumerate(durations)
    }

    def setup(sandbox: Sandbox) -> None:
        sandbox.add_container_instances("batch", 2, cpu=4096, memory=8192)

    with world(manifests, setup, events=events) as w:
        names = {f"job-{i}" for i in range(tasks)}
        w.child.wait_until(
            lambda lines: settled(lines, names, "Succeeded"),
            f"Succeeded record of all {tasks} runs",
            max(durations) + DEADLINE,
        )
        lines = w.child.snapshot()
        ecs = w.ecs()
        arns = ecs.list_tasks(cluster="batch", desiredStatus="STOPPED")["taskArns"]
        stopped_at: dict[str, datetime] = {}
        for chunk in range(0, len(arns), 100):
            described = ecs.describe_tasks(
                cluster="batch", tasks=arns[chunk : chunk + 100], include=["TAGS"]
            )["tasks"]
            for task in described:
                tags = {t["key"]: t["value"] for t in task.get("tags", [])}
                stopped_at[tags["ecs-job-controller/run"]] = task["stoppedAt"]
    seconds = pass_seconds(lines)
    figures = StopFigures([], [], [])
    for name, line in sorted(recorded(lines, "Succeeded").items()):
        if name not in names:
            continue
        latency = (line_time(line) - stopped_at[name]).total_seconds()
        took = seconds[pass_of(line)]
        figures.latencies.append(latency)
        figures.passes.append(took)
        figures.waits.append(latency - took)
    return figures


# --- (b) and (c) --------------------------------------------------------------------------


def capacity_trial(registration_delay: float, *, events: bool) -> tuple[float, float]:
    """One world: (placement failure -> SetDesiredCapacity, registered -> all started)."""
    runs = 4
    spec = f"  capacity: {{autoScalingGroup: {GROUP}, maxPendingSeconds: 3600}}\n"
    manifests = {
        f"job-{i}.yaml": job_manifest(i, "wide", spec_lines=spec, sizes=WHOLE_INSTANCE)
        for i in range(runs)
    }

    def setup(sandbox: Sandbox) -> None:
        sandbox.create_auto_scaling_group(
            GROUP,
            "batch",
            0,
            10,
            0,
            instance_cpu=1024,
            instance_memory=2048,
            registration_delay_seconds=registration_delay,
        )
        sandbox.add_container_instances("batch", 1, cpu=1024, memory=2048, asg_name=GROUP)

    with world(manifests, setup, events=events) as w:
        sandbox = w.sandbox
        if not sandbox.wait_for_calls("autoscaling", "SetDesiredCapacity", timeout=DEADLINE):
            raise SystemExit(f"no SetDesiredCapacity:\n{w.child.tail()}")
        # One RunTask placed, three failed, three retried once there is room.
        expected = 2 * runs - 1
        ecs = w.ecs()
        while True:
            if not sandbox.wait_for_calls("ecs", "RunTask", expected, timeout=DEADLINE):
                raise SystemExit(f"only some RunTasks:\n{w.child.tail()}")
            placed = ecs.list_tasks(cluster="batch", desiredStatus="RUNNING")["taskArns"]
            if len(placed) >= runs:
                break
            expected += 1  # a retry that found no room yet: wait for the next one
        calls = sandbox.call_times
        instance_arns = ecs.list_container_instances(cluster="batch")["containerInstanceArns"]
        instances = ecs.describe_container_instances(
            cluster="batch", containerInstances=instance_arns
        )["containerInstances"]
    run_tasks = [c.at for c in calls if c.operation == "RunTask"]
    scale_out = next(c.at for c in calls if c.operation == "SetDesiredCapacity")
    registered = max(i["registeredAt"] for i in instances if i["registeredAt"] > scale_out)
    return (
        (scale_out - run_tasks[1]).total_seconds(),
        (run_tasks[-1] - registered).total_seconds(),
    )


# --- (d) ----------------------------------------------------------------------------------


@dataclass
class IdleFigures:
    """The controller's calls during one idle window, look by look."""

    active: int
    window: float
    #: the looks that began in the window, each with all its calls
    looks: list[list[TimedCall]]
    #: passes that ended in the window (none expected)
    passes: int
    #: seconds of the pass that recorded the last of the runs Running (None: no run)
    recording_pass: float | None

    @property
    def calls(self) -> list[TimedCall]:
        return [call for look in self.looks for call in look]

    @property
    def per_minute(self) -> float:
        return len(self.calls) * 60 / self.window

    @property
    def look_seconds(self) -> float:
        """The longest look, first call to last."""
        return max(((look[-1].at - look[0].at).total_seconds() for look in self.looks), default=0)

    @property
    def look_interval(self) -> float | None:
        """The median time from one look's first call to the next one's: the cadence."""
        starts = [look[0].at for look in self.looks]
        gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
        return statistics.median(gaps) if gaps else None


def looks_of(calls: Sequence[TimedCall]) -> list[list[TimedCall]]:
    """Group calls into looks: a call closer than half a period to the previous one joins it."""
    looks: list[list[TimedCall]] = []
    for call in calls:
        if not looks or (call.at - looks[-1][-1].at).total_seconds() > POLL_SECONDS / 2:
            looks.append([])
        looks[-1].append(call)
    return looks


def idle_cost(window: float, steps: Sequence[int]) -> list[IdleFigures]:
    """One controller; for each active count, add long runs, then count calls over `window`."""
    finished = 20
    manifests = {
        f"done-{i:03d}.yaml": job_manifest(
            i, "short", duration=1, sizes="cpu: 16\n        memory: 32"
        )
        for i in range(finished)
    }

    def setup(sandbox: Sandbox) -> None:
        sandbox.add_container_instances("batch", 4, cpu=8192, memory=16384)

    figures = []
    with world(manifests, setup, events=False) as w:
        done = {f"job-{i}" for i in range(finished)}
        w.child.wait_until(
            lambda lines: settled(lines, done, "Succeeded"),
            "the short runs' Succeeded records",
            DEADLINE,
        )
        written = 0
        for active in steps:
            for i in range(finished + written, finished + active):
                w.write(f"long-{i:05d}.yaml", job_manifest(i, "long", duration=100000))
            written = active
            wanted = {f"job-{i}" for i in range(finished, finished + active)}
            w.child.wait_until(
                partial(settled, names=wanted, phase="Running"),
                f"Running records of {active} runs",
                DEADLINE * 3,
            )
            lines = w.child.snapshot()
            records = recorded(lines, "Running")
            last = max((records[n] for n in wanted), key=line_time, default=None)
            recording_pass = None if last is None else pass_seconds(lines)[pass_of(last)]
            # Start half a period after that pass: the window's looks fall inside it.
            time.sleep(POLL_SECONDS / 2)
            began = datetime.now(UTC)
            lines_before = len(w.child.snapshot())
            time.sleep(window)  # the measurement window itself: the controller is left alone
            ended = datetime.now(UTC)
            passes = sum(" pass done " in line for line in w.child.snapshot()[lines_before:])
            # A look in flight at the end of the window counts whole: let it finish.
            time.sleep(POLL_SECONDS / 2)
            looks = looks_of([c for c in w.sandbox.call_times if c.at >= began])
            in_window = [look for look in looks if look[0].at < ended]
            seconds = (ended - began).total_seconds()
            figures.append(IdleFigures(active, seconds, in_window, passes, recording_pass))
    return figures


# --- the table ----------------------------------------------------------------------------


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def timing_row(
    label: str, values: Sequence[float], goal: str, limit: float, strict: bool
) -> list[str]:
    high = p95(values)
    met = high < limit if strict else high <= limit
    return [
        label,
        str(len(values)),
        f"{statistics.median(values):.2f} s",
        f"{high:.2f} s",
        f"{max(values):.2f} s",
        goal,
        "yes" if met else "NO",
    ]


def idle_row(figures: IdleFigures) -> list[str]:
    label = f"(d) idle, {figures.active} active: calls per look ({figures.per_minute:.1f}/min)"
    if figures.active == 0:
        total = len(figures.calls)
        met = total == 0 and figures.passes == 0
        return [label, "0 looks", "-", "-", f"{total} calls", "0 calls", "yes" if met else "NO"]
    sizes = [len(look) for look in figures.looks]
    limit = 2 + figures.active / 100
    return [
        label,
        f"{len(sizes)} looks",
        f"{statistics.median(sizes):g}",
        f"{p95(sizes):g}",
        f"{max(sizes)}",
        f"<= {limit:g} per look",
        "yes" if max(sizes) <= limit and figures.passes == 0 else "NO",
    ]


def main() -> None:
    """Run (a)-(d) and print one table with the issue's goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs and trials, 15 s idle windows"
    )
    args = parser.parse_args()
    tasks = 8 if args.quick else 20
    trials = 2 if args.quick else 6
    window = 15.0 if args.quick else 30.0
    started = time.monotonic()

    polled = stop_to_ledger(tasks, events=False)
    evented = stop_to_ledger(tasks, events=True)
    # Registration delays spread over one look period: every phase of the cadence.
    delays = [1.0 + POLL_SECONDS * (k + 0.5) / trials for k in range(trials)]
    capacity = {
        events: [capacity_trial(delay, events=events) for delay in delays]
        for events in (False, True)
    }
    idle = idle_cost(window, [0, 100, 1000])

    poll = f"{POLL_SECONDS:g} s"
    rows = [
        timing_row(
            "(a) STOPPED -> terminal in ledger, polling",
            polled.latencies,
            f"<= {poll}",
            POLL_SECONDS,
            False,
        ),
        timing_row(
            "(a) STOPPED -> terminal in ledger, events", evented.latencies, "< 1 s", 1.0, True
        ),
        timing_row(
            "(b) placement failure -> SetDesiredCapacity, polling",
            [b for b, _ in capacity[False]],
            "< 2 s",
            2.0,
            True,
        ),
        timing_row(
            "(b) placement failure -> SetDesiredCapacity, events",
            [b for b, _ in capacity[True]],
            "< 2 s",
            2.0,
            True,
        ),
        timing_row(
            "(c) registered -> every waiting run started, polling",
            [c for _, c in capacity[False]],
            f"<= {poll}",
            POLL_SECONDS,
            False,
        ),
        timing_row(
            "(c) registered -> every waiting run started, events",
            [c for _, c in capacity[True]],
            f"<= {poll}",
            POLL_SECONDS,
            False,
        ),
        *[idle_row(f) for f in idle],
    ]
    print(
        f"controller run in real time on the sandbox: --resync-seconds 3600, "
        f"--active-poll-seconds {POLL_SECONDS:g}{' (--quick)' if args.quick else ''}"
    )
    print_figure_table(["figure", "n", "median", "p95", "max", "goal", "met"], rows)
    print()
    print("(a) where the time goes: stoppedAt -> the recording pass starts (the look")
    print("    cadence or the event's way, the look, the sandbox's 0.1 s tick) + that pass")
    for label, stops in (("polling", polled), ("events", evented)):
        worst = max(range(len(stops.latencies)), key=stops.latencies.__getitem__)
        print(
            f"  {label:8s} median {statistics.median(stops.waits):.2f} s + "
            f"{statistics.median(stops.passes):.3f} s; worst run "
            f"{stops.waits[worst]:.2f} s + {stops.passes[worst]:.3f} s"
        )
    print(f"(c) registration delays of the trials: {', '.join(f'{d:.2f} s' for d in delays)}")
    for figures in idle:
        operations = sorted({c.operation for c in figures.calls})
        every = figures.look_interval
        interval = "-" if every is None else f"{every:.2f} s"
        print(
            f"(d) {figures.active} active: {len(figures.calls)} calls in {figures.window:.1f} s "
            f"({', '.join(operations) or 'none'}), passes in the window: {figures.passes}, "
            f"looks every {interval}, the longest took {figures.look_seconds:.2f} s"
            + (
                ""
                if figures.recording_pass is None
                else f"; the pass that recorded them Running took {figures.recording_pass:.2f} s"
            )
        )
    print(
        f"controller start-up (process start -> first pass done), {len(STARTUPS)} children: "
        f"median {statistics.median(STARTUPS):.2f} s, max {max(STARTUPS):.2f} s "
        "(before every measured event)"
    )
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
