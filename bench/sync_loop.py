"""Benchmark (issue 7): the `controller run` sync loop on the sandbox.

1. Commit-to-RunTask latency of the directory source: `controller run` (a
   child process, `--resync-seconds 3600` so only the watcher can explain a
   start) watches a Git repository; each of N commits adds one JobRun, and
   the time from the write to the task appearing in the sandbox is measured.
   The floor is the 500 ms debounce.
2. Idle CPU of `controller run` with 1,000 manifests (suspended JobRuns, so
   the first pass starts nothing): the child's utime+stime from
   /proc/<pid>/stat over a window after its first pass, with the default
   60 s resync (`--quick`: a 10 s window, during which no resync falls).
3. S3 API calls of one poll of a 1,000-object prefix when nothing changed
   (only the ListObjectsV2 pages are expected), then of a change to one object.

    .venv/bin/python -m bench.sync_loop [--quick] [--commits N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from bench.sandbox_world import job_manifest
from controller.aws.s3 import S3Gateway
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sources.s3 import S3Source

warnings.filterwarnings("ignore", category=UserWarning, module="moto")


def job(i: int, family: int, suspend: str) -> str:
    """A JobRun of the sync-loop benchmark (suspended ones cost the loop nothing in AWS)."""
    return job_manifest(
        i, f"bench-{family}", image_tag=str(family), spec_lines=f"  suspend: {suspend}\n"
    )


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(repo: Path, manifests: int, *, suspend: bool) -> None:
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "README.md").write_text("bench\n")
    for i in range(manifests):
        text = job(i, i % 20, str(suspend).lower())
        (repo / f"job-{i:05d}.yaml").write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "initial")


def start_controller(sandbox: Sandbox, root: Path, source: Path, *extra: str) -> Any:
    env = sandbox.subprocess_env()
    env["CONTROLLER_TEST_NOW"] = sandbox.clock.now().isoformat()
    log = (root / "run.log").open("wb")
    argv = [
        sys.executable,
        "-m",
        "controller",
        "--source",
        str(source),
        "--state",
        f"sqlite:{root / 'state.db'}",
        "--owner",
        "bench",
        "run",
        "--metrics-addr",
        "127.0.0.1:0",
        *extra,
    ]
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_log(root: Path, fragment: str, timeout: float = 300) -> None:
    give_up = time.monotonic() + timeout
    while fragment not in (root / "run.log").read_text():
        if time.monotonic() > give_up:
            raise SystemExit(f"no {fragment!r} in the log:\n{(root / 'run.log').read_text()}")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc (fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: Any) -> int:
    process.send_signal(signal.SIGTERM)
    return int(process.wait(timeout=60))


def new_sandbox() -> Sandbox:
    sandbox = Sandbox(FakeClock()).start()
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 4, cpu=8192, memory=16384)
    return sandbox


def commit_latency(commits: int) -> list[float]:
    """Seconds from writing a new manifest to its task in the sandbox, per commit."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = new_sandbox()
        try:
            repo = root / "repo"
            make_repo(repo, 0, suspend=False)
            process = start_controller(sandbox, root, repo, "--resync-seconds", "3600")
            wait_for_log(root, "pass done")
            ecs = sandbox.client("ecs", counted=False)
            latencies = []
            for i in range(commits):
                started = time.perf_counter()
                (repo / f"job-{i:05d}.yaml").write_text(job(i, 0, "false"))
                git(repo, "add", ".")
                git(repo, "commit", "-qm", f"job {i}")
                while len(ecs.list_tasks(cluster="batch", startedBy="ejc/bench")["taskArns"]) <= i:
                    if time.perf_counter() - started > 60:
                        raise SystemExit(f"commit {i}: no task after 60 s")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - started)
            stop(process)
            return latencies
        finally:
            sandbox.stop()


def idle_cpu(manifests: int, window: float) -> tuple[float, float, float, list[float]]:
    """CPU s of start-up and first pass, CPU s and wall s of the idle window, resync pass times."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = new_sandbox()
        try:
            repo = root / "repo"
            make_repo(repo, manifests, suspend=True)
            process = start_controller(sandbox, root, repo)
            wait_for_log(root, "pass done")
            startup = cpu_seconds(process.pid)
            began = time.monotonic()
            time.sleep(window)  # the measurement window itself: the child is idle
            idle = cpu_seconds(process.pid) - startup
            wall = time.monotonic() - began
            stop(process)
            resyncs = [
                float(line.split(" seconds=")[1].split()[0])
                for line in (root / "run.log").read_text().splitlines()
                if "pass done trigger=resync" in line
            ]
            return startup, idle, wall, resyncs
        finally:
            sandbox.stop()


def s3_calls(objects: int) -> list[tuple[str, Counter[tuple[str, str]]]]:
    """API calls of S3 source operations on a prefix of `objects` objects."""
    sandbox = new_sandbox()
    os.environ.update(sandbox.env())
    try:
        s3 = sandbox.client("s3", counted=False)
        s3.create_bucket(Bucket="bench")
        for i in range(objects):
            body = job(i, i % 20, "true").encode()
            s3.put_object(Bucket="bench", Key=f"jobs/job-{i:05d}.yaml", Body=body)
        session = AwsSession()
        source = S3Source("s3://bench/jobs/", S3Gateway(session))
        rows = []

        def measure(label: str, action: Any) -> None:
            before = session.calls.copy()
            action()
            rows.append((label, session.calls - before))

        measure("first snapshot", source.snapshot)
        measure("poll, nothing changed", source.poll)
        measure("snapshot, nothing changed", source.snapshot)
        s3.put_object(Bucket="bench", Key="jobs/job-00000.yaml", Body=b"changed: true\n")
        measure("poll after one object changed", source.poll)
        measure("snapshot after that poll", source.snapshot)
        return rows
    finally:
        sandbox.stop()


def main() -> None:
    """Run the three measurements and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s idle window instead of 60 s")
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--manifests", type=int, default=1000)
    args = parser.parse_args()

    latencies = commit_latency(args.commits)
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    print(f"commit -> RunTask latency, directory source, {len(latencies)} commits (debounce 0.5 s)")
    print(f"  median {statistics.median(latencies):.3f} s   p95 {p95:.3f} s")
    print(f"  min {ordered[0]:.3f} s   max {ordered[-1]:.3f} s")
    print()

    window = 10.0 if args.quick else 60.0
    startup, idle, wall, resyncs = idle_cpu(args.manifests, window)
    print(f"idle `controller run`, {args.manifests} manifests (suspended), resync 60 s")
    print(f"  start-up + first pass: {startup:.2f} CPU s")
    print(f"  idle window {wall:.1f} s: {idle:.3f} CPU s ({100 * idle / wall:.2f} % of one core)")
    shown = ", ".join(f"{s:.3f} s" for s in resyncs) or "none fell in the window"
    print(f"  resync passes in the window: {shown}")
    print()

    print(f"S3 source, {args.manifests} objects: API calls per operation")
    rows = s3_calls(args.manifests)
    header = ("operation", "ListObjectsV2", "GetObject", "other")
    lines = [header]
    for label, calls in rows:
        listed = calls.get(("s3", "ListObjectsV2"), 0)
        fetched = calls.get(("s3", "GetObject"), 0)
        lines.append(
            (label, str(listed), str(fetched), str(sum(calls.values()) - listed - fetched))
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        numbers = zip(line[1:], widths[1:], strict=True)
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in numbers]
        print("  " + "  ".join(cells))


if __name__ == "__main__":
    main()
