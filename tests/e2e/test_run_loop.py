"""`controller run` as a subprocess on the sandbox: the GitOps loop end to end.

Each test starts the real long-running CLI (with `--resync-seconds 3600`, so
anything that happens within a test happened because of a source change, not
the timer), changes its source the way operators do — `git commit`, `git
revert`, git-sync's symlink swap, S3 uploads — and polls the sandbox with a
short interval and an overall deadline until the effect shows. Waiting here
is for another process; no assertion rests on a fixed sleep.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

T = TypeVar("T")
DEADLINE = 30.0


def eventually(probe: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Poll `probe` every 50 ms until it returns something truthy; fail after `timeout`."""
    give_up = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Running:
    """One `controller run` child process and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, fragment: str, *, after: int = 0) -> str:
        """Wait until `fragment` appears in the log (past character `after`); the log so far."""

        def seen() -> str:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"controller run exited {self.process.returncode}:\n{self.log()}"
                )
            text = self.log()
            return text if fragment in text[after:] else ""

        return eventually(seen, repr(fragment))

    @property
    def metrics_url(self) -> str:
        text = self.wait_log("serving metrics on ")
        found = re.search(r"serving metrics on (http://[\d.]+:\d+)/metrics", text)
        assert found, text
        return found.group(1)

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def http_status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"{self.metrics_url}{path}", timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return int(refused.code)

    def stop(self) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)


@pytest.fixture
def start(world: World) -> Iterator[Callable[..., Running]]:
    """Start `controller run` on the world's ledger; killed at teardown if still alive."""
    started: list[Running] = []

    def launch(*args: str, source: str | None = None) -> Running:
        environment = world.sandbox.subprocess_env()
        environment["CONTROLLER_TEST_NOW"] = world.clock.now().isoformat()
        log_path = world.root / f"run-{len(started)}.log"
        argv = [
            sys.executable,
            "-m",
            "controller",
            "--source",
            source or str(world.manifests),
            "--state",
            world.state,
            "--owner",
            world.owner,
            "run",
            "--resync-seconds",
            "3600",
            "--metrics-addr",
            "127.0.0.1:0",
            *args,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, env=environment, stdout=log, stderr=subprocess.STDOUT)
        running = Running(process, log_path)
        started.append(running)
        return running

    yield launch
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(world: World) -> Path:
    """The world's manifest directory as a Git repository with one commit."""
    repo = world.manifests
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "e2e@example.com")
    git(repo, "config", "user.name", "e2e")
    (repo / "README.md").write_text("manifests\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "initial")
    return repo


def commit(repo: Path, message: str, **files: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def task_count(world: World, count: int) -> Callable[[], bool]:
    return lambda: len(world.all_tasks()) >= count


def test_a_commit_starts_its_run_without_waiting_for_the_resync_timer(
    world: World, repo: Path, start: Callable[..., Running]
) -> None:
    running = start()
    running.wait_log("pass done")
    assert running.http_status("/readyz") == 200
    assert running.http_status("/healthz") == 200

    head = commit(repo, "nightly", **{"nightly.yaml": job("nightly", duration=600)})
    eventually(task_count(world, 1), "the committed run's task")
    assert world.run("nightly")["attempts"][0]["taskArns"] == world.all_tasks()

    def synced() -> str:
        first_line = world.cli("status").stdout.splitlines()[0]
        return first_line if first_line.startswith(f"synced to {head[:7]} at ") else ""

    eventually(synced, f"status to show the commit {head[:7]}")

    found = running.scrape()
    assert found[("controller_taskdef_registrations_total", ())] == 1
    assert found[("controller_runs", (("phase", "Pending"),))] == 1
    assert found[("controller_runs", (("phase", "Failed"),))] == 0
    run_task = ("controller_aws_calls_total", (("operation", "RunTask"), ("service", "ecs")))
    assert found[run_task] == 1
    assert found[("controller_reconcile_total", (("result", "success"),))] >= 2
    assert found[("controller_reconcile_total", (("result", "error"),))] == 0
    assert found[("controller_reconcile_duration_seconds_count", ())] >= 2
    assert found[("controller_scale_outs_total", ())] == 0
    assert found[("controller_missed_schedules_total", ())] == 0

    assert running.stop() == 0
    assert "stopped after" in running.log()


def test_reverting_an_invalid_commit_recovers(
    world: World, repo: Path, start: Callable[..., Running]
) -> None:
    commit(repo, "alpha", **{"alpha.yaml": job("alpha", duration=600)})
    running = start("--log-format", "json")
    eventually(task_count(world, 1), "alpha's task")

    broken = job("alpha", duration=600).replace("cluster: batch", "cluster: [batch]")
    commit(repo, "break alpha", **{"alpha.yaml": broken})
    mark = len(running.wait_log("invalid manifest"))
    # Last known good: the broken edit is not a deletion, alpha is not orphaned.
    assert world.run("alpha")["reason"] != "Orphaned"

    git(repo, "revert", "--no-edit", "HEAD")
    running.wait_log('"message": "fixed: ', after=mark - 200)
    commit(repo, "beta", **{"beta.yaml": job("beta", duration=600)})
    eventually(task_count(world, 2), "beta's task")
    assert world.run("alpha")["reason"] != "Orphaned"
    assert len(world.run("alpha")["attempts"]) == 1
    assert running.stop() == 0

    lines = [json.loads(line) for line in running.log().splitlines()]
    assert all({"time", "level", "message", "pass"} <= line.keys() for line in lines)
    [run_task] = [x for x in lines if x["message"].startswith("RunTask beta/1")]
    assert run_task["run"] == "beta/1"
    assert run_task["pass"] != "-"


def test_a_git_sync_symlink_swap_is_followed(world: World, start: Callable[..., Running]) -> None:
    old, new, link = world.root / "rev-1", world.root / "rev-2", world.root / "current"
    for directory in (old, new):
        directory.mkdir()
        (directory / "alpha.yaml").write_text(job("alpha", duration=600))
    (new / "beta.yaml").write_text(job("beta", duration=600))
    link.symlink_to(old)
    running = start(source=str(link))
    eventually(task_count(world, 1), "alpha's task")

    # git-sync: a new link under a temporary name, renamed over the old one,
    # then the old worktree is removed.
    (world.root / "tmp-link").symlink_to(new)
    (world.root / "tmp-link").replace(link)
    shutil.rmtree(old)
    eventually(task_count(world, 2), "beta's task after the swap")
    assert running.stop() == 0
    # Which event names the pass (the swap, or the old tree's deletion) is a
    # race; the watcher's own test checks the swap message. Here: it followed.
    assert {r["name"]: r["reason"] for r in world.status()["runs"]}["alpha"] != "Orphaned"


def test_an_s3_source_fetches_only_changed_objects(
    world: World, start: Callable[..., Running]
) -> None:
    s3: Any = world.sandbox.client("s3", counted=False)
    s3.create_bucket(Bucket="manifests")

    def put(key: str, text: str) -> None:
        s3.put_object(Bucket="manifests", Key=f"jobs/{key}", Body=text.encode())

    put("alpha.yaml", job("alpha", duration=600))
    put("notes.txt", "not a manifest")
    running = start("--s3-poll-seconds", "0.2", source="s3://manifests/jobs/")
    eventually(task_count(world, 1), "alpha's task")
    world.sandbox.reset_calls()

    def gets() -> int:
        return world.sandbox.calls[("s3", "GetObject")]

    put("beta.yaml", job("beta", duration=600))  # added
    eventually(task_count(world, 2), "beta's task")
    assert gets() == 1

    put("alpha.yaml", job("alpha", duration=600, run_id="2"))  # changed
    eventually(task_count(world, 3), "alpha/2's task")
    assert gets() == 2

    sync_file = Path(world.state.removeprefix("sqlite:") + ".sync.json")
    before = json.loads(sync_file.read_text())["revision"]
    s3.delete_object(Bucket="manifests", Key="jobs/beta.yaml")  # deleted
    eventually(
        lambda: json.loads(sync_file.read_text())["revision"] != before,
        "the revision after the delete",
    )
    assert gets() == 2  # a deletion fetches nothing
    assert world.sandbox.calls[("s3", "ListObjectsV2")] >= 3
    assert running.stop() == 0


def test_sigterm_during_a_pass_exits_0_with_a_consistent_ledger(
    world: World, start: Callable[..., Running]
) -> None:
    for i in range(25):
        world.write(f"job-{i:02d}.yaml", job(f"job-{i:02d}", duration=600, family="shared"))
    running = start()
    # The first RunTask the sandbox sees proves the pass is in flight (a log
    # line before the pass would race the loop's start).
    eventually(world.all_tasks, "the first pass's first RunTask")
    assert running.stop() == 0
    log = running.log()
    assert "SIGTERM: finishing the pass in flight" in log
    assert "stopped after 1 pass(es)" in log

    done = world.cli("status", "-o", "json")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    recorded = {arn for r in runs for a in r["attempts"] for arn in a["taskArns"]}
    # The pass in flight was finished, not cut short: every run got its attempt
    # (the two instances hold 16 of the 25 tasks; the rest wait for capacity),
    # every task ECS has was recorded, and every recorded task exists.
    assert len(runs) == 25
    assert all(len(r["attempts"]) == 1 for r in runs)
    assert len(recorded) == 16
    assert recorded == set(world.all_tasks())


def test_a_second_controller_on_the_same_ledger_exits_2(
    world: World, start: Callable[..., Running]
) -> None:
    running = start()
    running.wait_log("pass done")
    second = world.cli("run", "--metrics-addr", "127.0.0.1:0", "--lock-timeout", "0")
    assert second.returncode == 2
    assert "holds the lease on this ledger" in second.stderr
    assert running.stop() == 0
