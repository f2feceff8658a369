"""The directory watcher on real inotify: which changes wake the loop, and symlink swaps.

Waiting here is for watchdog's threads, on the watcher's own notifications:
the callback puts each reason into a queue, and a test takes them with a
bounded timeout (never a sleep, never polling the watcher). To show that a
change is *ignored*, a test makes it, then touches a sentinel file: events of
one watch arrive in order, so once the sentinel is reported, the ignored
change would have been reported before it.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.sources.watch import DirectoryWatcher, is_git_ref

TIMEOUT = 10.0


class Recorder:
    """Collects notifications from watchdog's thread."""

    def __init__(self) -> None:
        self.reasons: queue.Queue[str] = queue.Queue()

    def __call__(self, reason: str) -> None:
        self.reasons.put(reason)

    def next(self) -> str:
        return self.reasons.get(timeout=TIMEOUT)

    def until(self, fragment: str) -> list[str]:
        """Every reason up to and including the first that contains `fragment`."""
        seen = []
        while True:
            reason = self.next()
            seen.append(reason)
            if fragment in reason:
                return seen


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "Test")
    (repo / "a.yaml").write_text("a: 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    return repo


@pytest.fixture
def watch() -> Iterator[list[DirectoryWatcher]]:
    started: list[DirectoryWatcher] = []
    yield started
    for watcher in started:
        watcher.stop()


def start(watch: list[DirectoryWatcher], root: Path, **kw: object) -> Recorder:
    recorder = Recorder()
    watcher = DirectoryWatcher(root, recorder, **kw)  # type: ignore[arg-type]
    watcher.start()
    watch.append(watcher)
    return recorder


def test_a_manifest_write_is_reported(repo: Path, watch: list[DirectoryWatcher]) -> None:
    events = start(watch, repo)
    (repo / "b.yaml").write_text("b: 1\n")
    assert any("b.yaml" in r for r in events.until("b.yaml"))


def test_git_churn_the_ledger_and_reads_are_ignored(
    repo: Path, watch: list[DirectoryWatcher]
) -> None:
    ledger = repo / "state.db"
    events = start(watch, repo, ignore=[ledger])
    (repo / ".git" / "objects" / "junk").write_text("x")
    (repo / ".git" / "index.lock").write_text("x")
    ledger.write_text("x")
    Path(f"{ledger}-wal").write_text("x")
    (repo / ".swap.yaml").write_text("x")
    (repo / "a.yaml").read_bytes()  # the pass reading the tree
    (repo / "sentinel.yaml").write_text("s")
    seen = events.until("sentinel.yaml")
    assert all("sentinel.yaml" in r for r in seen), seen


def test_a_commit_that_touches_no_manifest_still_moves_the_revision(
    repo: Path, watch: list[DirectoryWatcher]
) -> None:
    events = start(watch, repo)
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    assert any("refs/heads/main" in r for r in events.until("refs/heads/main"))


def test_a_source_below_the_checkout_root_watches_the_checkouts_refs(
    repo: Path, watch: list[DirectoryWatcher]
) -> None:
    (repo / "manifests").mkdir()
    events = start(watch, repo / "manifests")
    (repo / "outside.yaml").write_text("not ours")  # outside the source directory
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    seen = events.until("refs/heads/main")
    assert not any("outside.yaml" in r for r in seen), seen


def test_a_git_sync_symlink_swap_moves_the_watch(
    tmp_path: Path, watch: list[DirectoryWatcher]
) -> None:
    old, new = tmp_path / "rev-1", tmp_path / "rev-2"
    old.mkdir()
    new.mkdir()
    link = tmp_path / "current"
    link.symlink_to(old)
    events = start(watch, link)
    (old / "a.yaml").write_text("a: 1\n")
    events.until("a.yaml")

    # What git-sync does: a new link under a temporary name, renamed over the old.
    (new / "a.yaml").write_text("a: 2\n")
    (tmp_path / "tmp-link").symlink_to(new)
    (tmp_path / "tmp-link").replace(link)
    assert "rev-2" in events.until("symlink now points")[-1]

    (old / "stale.yaml").write_text("the old worktree, about to be deleted")
    (new / "b.yaml").write_text("b: 1\n")
    seen = events.until("b.yaml")
    assert not any("stale.yaml" in r for r in seen), seen


def test_which_git_files_count() -> None:
    assert is_git_ref("HEAD")
    assert is_git_ref("refs/heads/main")
    assert is_git_ref("packed-refs")
    assert not is_git_ref("refs/heads/main.lock")
    assert not is_git_ref("index")
    assert not is_git_ref("objects/ab/cdef")
    assert not is_git_ref("FETCH_HEAD")


def test_refresh_watches_a_directory_created_late_or_cloned_again(
    tmp_path: Path, watch: list[DirectoryWatcher]
) -> None:
    root = tmp_path / "checkout"
    events = start(watch, root)  # not there yet
    watcher = watch[-1]
    assert watcher.refresh() is False  # still missing: nothing to watch
    root.mkdir()
    assert watcher.refresh() is True
    (root / "a.yaml").write_text("a: 1\n")
    events.until("a.yaml")
    assert watcher.refresh() is False  # unchanged: no new watch

    shutil.rmtree(root)  # rm -rf and clone again
    # The new directory may reuse the old inode, so only the reported deletion
    # tells that the old watch is over: wait for it, then make the new one.
    events.until(f"source directory deleted: {root}")
    root.mkdir()
    assert watcher.refresh() is True
    (root / "b.yaml").write_text("b: 1\n")
    events.until("b.yaml")
    assert watcher.refresh() is False


def test_git_checkout_and_git_pull_are_reported(
    tmp_path: Path, repo: Path, watch: list[DirectoryWatcher]
) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "b.yaml").write_text("b: 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "b")
    git(repo, "checkout", "-q", "main")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    events = start(watch, repo)
    clone_events = start(watch, clone)

    git(repo, "checkout", "-q", "feature")  # b.yaml appears in the work tree
    events.until("b.yaml")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "feature")
    git(clone, "pull", "-q", "--ff-only")  # the clone gets b.yaml
    clone_events.until("b.yaml")
