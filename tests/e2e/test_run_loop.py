"""`controller run` as a subprocess on the sandbox: the GitOps loop end to end.

Each test starts the real long-running CLI (with `--resync-seconds 3600`, so
anything that happens within a test happened because of a source change, not
the timer), changes its source the way operators do — `git commit`, `git
revert`, git-sync's symlink swap, S3 uploads — and waits, bounded, for the
child to say it acted (`RunTask beta/1 ...`, `pass done ... revision=...`;
`tests/e2e/child.py`); the sandbox's state is then asserted as it stands.
Nothing sleeps and nothing polls.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.child import DEADLINE, Child, Line
from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


class Running(Child):
    """One `controller run` child process, with its metrics endpoint."""

    @property
    def metrics_url(self) -> str:
        line = self.wait_line("serving metrics on ")
        found = re.search(r"serving metrics on (http://[\d.]+:\d+)/metrics", line.text)
        assert found, line
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

    def wait_pass(
        self, revision: Callable[[str], bool], *, since: int, what: str
    ) -> tuple[Line, str]:
        """The first `pass done` line from line `since` on whose revision satisfies `revision`."""

        def done(text: str) -> bool:
            found = revision_of(text)
            return "pass done" in text and found is not None and revision(found)

        line = self.wait_line(done, since=since, what=what)
        found = revision_of(line.text)
        assert found is not None
        return line, found


def revision_of(line: str) -> str | None:
    """The revision a text-format `pass done` line ends with (a Git commit shows 7 digits)."""
    found = re.search(r" revision=(\S+)$", line)
    return found.group(1) if found else None


@pytest.fixture
def start(world: World) -> Iterator[Callable[..., Running]]:
    """Start `controller run` on the world's ledger; killed at teardown if still alive."""
    started: list[Running] = []

    def launch(*args: str, source: str | None = None) -> Running:
        environment = world.sandbox.subprocess_env()
        environment["CONTROLLER_TEST_NOW"] = world.clock.now().isoformat()
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
        running = Running(argv, environment)
        started.append(running)
        return running

    yield launch
    for running in started:
        running.kill()


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


def test_a_commit_starts_its_run_without_waiting_for_the_resync_timer(
    world: World, repo: Path, start: Callable[..., Running]
) -> None:
    running = start()
    running.wait_line("pass done")
    assert running.http_status("/readyz") == 200
    assert running.http_status("/healthz") == 200

    head = commit(repo, "nightly", **{"nightly.yaml": job("nightly", duration=600)})
    run_task = running.wait_line("RunTask nightly/1")
    [task] = world.all_tasks()
    assert world.run("nightly")["attempts"][0]["taskArns"] == [task]

    # The file's write may wake a pass before the commit; a pass at the
    # commit follows, and it has written the sync record before it says so.
    running.wait_pass(lambda r: r == head[:7], since=run_task.number, what=f"a pass at {head}")
    assert world.cli("status").stdout.startswith(f"synced to {head[:7]} at ")

    found = running.scrape()
    assert found[("controller_taskdef_registrations_total", ())] == 1
    # Pending or, once a later pass saw its task start, Running: one run, unfinished.
    unfinished = [found[("controller_runs", (("phase", p),))] for p in ("Pending", "Running")]
    assert sum(unfinished) == 1
    assert found[("controller_runs", (("phase", "Failed"),))] == 0
    run_task = ("controller_aws_calls_total", (("operation", "RunTask"), ("service", "ecs")))
    assert found[run_task] == 1
    assert found[("controller_reconcile_total", (("result", "success"),))] >= 2
    assert found[("controller_reconcile_total", (("result", "error"),))] == 0
    assert found[("controller_reconcile_duration_seconds_count", ())] >= 2
    assert found[("controller_scale_outs_total", ())] == 0
    assert found[("controller_missed_schedules_total", ())] == 0

    assert running.stop() == 0
    assert "stopped after" in running.output()


def test_reverting_an_invalid_commit_recovers(
    world: World, repo: Path, start: Callable[..., Running]
) -> None:
    commit(repo, "alpha", **{"alpha.yaml": job("alpha", duration=600)})
    running = start("--log-format", "json")
    running.wait_line("RunTask alpha/1")
    assert len(world.all_tasks()) == 1

    broken = job("alpha", duration=600).replace("cluster: batch", "cluster: [batch]")
    commit(repo, "break alpha", **{"alpha.yaml": broken})
    invalid = running.wait_line("invalid manifest")
    # Last known good: the broken edit is not a deletion, alpha is not orphaned.
    assert world.run("alpha")["reason"] != "Orphaned"

    git(repo, "revert", "--no-edit", "HEAD")
    running.wait_line('"message": "fixed: ', since=invalid.number + 1)
    commit(repo, "beta", **{"beta.yaml": job("beta", duration=600)})
    running.wait_line("RunTask beta/1")
    assert len(world.all_tasks()) == 2
    assert world.run("alpha")["reason"] != "Orphaned"
    assert len(world.run("alpha")["attempts"]) == 1
    assert running.stop() == 0

    lines = [json.loads(line) for line in running.output().splitlines()]
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
    running.wait_line("RunTask alpha/1")

    # git-sync: a new link under a temporary name, renamed over the old one,
    # then the old worktree is removed.
    (world.root / "tmp-link").symlink_to(new)
    (world.root / "tmp-link").replace(link)
    shutil.rmtree(old)
    running.wait_line("RunTask beta/1", what="beta's RunTask after the swap")
    assert len(world.all_tasks()) == 2
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
    running.wait_line("RunTask alpha/1")
    world.sandbox.reset_calls()

    def gets() -> int:
        return world.sandbox.calls[("s3", "GetObject")]

    put("beta.yaml", job("beta", duration=600))  # added
    running.wait_line("RunTask beta/1")
    assert len(world.all_tasks()) == 2
    assert gets() == 1

    put("alpha.yaml", job("alpha", duration=600, run_id="2"))  # changed
    run_task = running.wait_line("RunTask alpha/2")
    assert len(world.all_tasks()) == 3
    assert gets() == 2

    done, before = running.wait_pass(lambda _: True, since=run_task.number, what="alpha/2's pass")
    s3.delete_object(Bucket="manifests", Key="jobs/beta.yaml")  # deleted
    _, after = running.wait_pass(
        lambda r: r != before, since=done.number + 1, what="a pass that saw the delete"
    )
    sync_file = Path(world.state.removeprefix("sqlite:") + ".sync.json")
    assert json.loads(sync_file.read_text())["revision"] == after
    assert gets() == 2  # a deletion fetches nothing
    assert world.sandbox.calls[("s3", "ListObjectsV2")] >= 3
    assert running.stop() == 0


def test_sigterm_during_a_pass_exits_0_with_a_consistent_ledger(
    world: World, start: Callable[..., Running]
) -> None:
    for i in range(25):
        world.write(f"job-{i:02d}.yaml", job(f"job-{i:02d}", duration=600, family="shared"))
    running = start()
    # The first RunTask the sandbox answers proves the pass is in flight (the
    # child logs a pass's actions only once it is over).
    assert world.sandbox.wait_for_calls("ecs", "RunTask", timeout=DEADLINE)
    assert running.stop() == 0
    log = running.output()
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
    running.wait_line("pass done")
    second = world.cli("run", "--metrics-addr", "127.0.0.1:0", "--lock-timeout", "0")
    assert second.returncode == 2
    assert "holds the lease on this ledger" in second.stderr
    assert running.stop() == 0
