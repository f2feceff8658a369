"""Turns changes to a Git checkout into "reconcile soon" (watchdog / inotify).

Events carry no meaning of their own (DESIGN.md §7): the watcher only calls
`notify(reason)`, and the loop debounces a burst of them into one pass that
re-reads the whole tree. What it must get right is *which* changes matter:

* any file or directory below the source root, except dot-paths (`.git/`
  churn from fetches and gc, editors' `.swp` files) and the ledger's own
  files (a ledger kept inside the checkout must not wake the loop whenever
  a pass writes it);
* the checkout's Git refs (`HEAD`, `refs/heads/…`, `packed-refs`), so a
  commit that touches no manifest still updates the revision `status` shows;
* git-sync's atomic symlink swap: the source path is a symlink that gets
  repointed at a new worktree (the old one is then deleted). inotify watches
  resolved directories, so the watcher also watches the symlink's parent
  and, when the link changes, moves its tree watch to the new target.

Only writes are subscribed to (no open/close-without-write events), so the
pass reading every manifest does not wake the loop again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_DELETED,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from controller.sources.directory import git_rev_parse

log = logging.getLogger(__name__)

#: Only changes: reading files (open, close-no-write) must not wake the loop.
WRITE_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

Notify = Callable[[str], None]


def _absolute(path: str | Path) -> str:
    """An absolute, normalised path without resolving symlinks (the link is what we watch)."""
    return os.path.normpath(Path(path).absolute())


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = Path(path).stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def symlinks_on(path: str) -> list[str]:
    """The components of the absolute `path` that are symlinks (the link itself included)."""
    links = []
    current = Path(path).parts[0]
    for part in Path(path).parts[1:]:
        current = str(Path(current) / part)
        if Path(current).is_symlink():
            links.append(current)
    return links


def git_dir(root: Path) -> Path | None:
    """The Git directory of the work tree `root` is in, if any."""
    text = git_rev_parse(root, "--absolute-git-dir")
    return Path(text) if text is not None else None


def is_git_ref(relative: str) -> bool:
    """True for the files inside a Git directory that move `git rev-parse HEAD`."""
    if relative.endswith(".lock"):
        return False  # written first, then renamed onto the ref: the rename counts
    return relative in ("HEAD", "packed-refs") or relative.startswith("refs/heads/")


class DirectoryWatcher:
    """Watches a checkout (possibly a swapped symlink) and calls `notify` on relevant changes."""

    def __init__(self, root: str | Path, notify: Notify, ignore: Sequence[str | Path] = ()) -> None:
        self.link = _absolute(root)
        self._notify = notify
        #: path prefixes never reported (the ledger file, its -wal/-shm/.lock, the sync record)
        self._ignore = tuple(_absolute(p) for p in ignore)
        self._observer: BaseObserver = Observer()
        # The symlinks' parents have an observer of their own: its thread
        # re-points the tree watches, and so does `refresh` on the loop's
        # thread; with one shared observer, its dispatch lock and ours would
        # be taken in opposite orders by those two threads (a deadlock).
        self._link_observer: BaseObserver = Observer()
        self._lock = threading.Lock()
        self._target = ""
        self._git_dir = ""
        self._tree_watches: list[ObservedWatch] = []
        self._links: list[str] = []
        #: (device, inode) of the watched directory: a directory deleted and
        #: created again under the same name is a new one to watch
        self._identity: tuple[int, int] | None = None
        #: the watched directory's own deletion was reported: its watch is over
        #: (set on watchdog's thread, cleared by the next re-watch)
        self._target_deleted = False

    @property
    def target(self) -> str:
        """The directory currently watched (the symlink's target, or the root itself)."""
        return self._target

    def start(self) -> None:
        """Begin watching (events are delivered on watchdog's threads)."""
        self._links = symlinks_on(self.link)
        for parent in sorted({str(Path(link).parent) for link in self._links}):
            # git-sync swaps a link atomically (a rename over it): watch the
            # directory holding the link, not only where it points today.
            self._link_observer.schedule(
                _Handler(self._on_link_parent_event), parent, event_filter=WRITE_EVENTS
            )
        self._watch_target()
        self._observer.start()
        self._link_observer.start()

    def stop(self) -> None:
        """Stop watching and join watchdog's threads."""
        for observer in (self._link_observer, self._observer):
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def refresh(self) -> bool:
        """Re-watch if the root moved, appeared or lost its watch; True when it did.

        The loop calls this after every pass: it catches what no event
        announces, such as a source directory created after the start, or
        deleted and cloned again (inotify forgets a deleted directory).
        """
        alive = {emitter.watch for emitter in self._observer.emitters if emitter.is_alive()}
        dead = (
            not self._tree_watches
            or self._target_deleted
            or any(w not in alive for w in self._tree_watches)
        )
        before = self._target
        changed = self._watch_target(force=dead or _identity(self._target) != self._identity)
        if changed and before and self._target != before:
            # The swap was noticed here before its own event arrived (which
            # then finds nothing to do): say it all the same.
            self._notify(f"source symlink now points to {self._target}")
        return changed

    def _watch_target(self, *, force: bool = False) -> bool:
        """(Re)point the tree watch at what the root resolves to now; True when it moved."""
        with self._lock:
            target = os.path.realpath(self.link)
            if target == self._target and not force:
                return False
            moved = target != self._target
            for watch in self._tree_watches:
                # KeyError: its directory was deleted and its emitter is gone already.
                with contextlib.suppress(KeyError):
                    self._observer.unschedule(watch)
            self._tree_watches = []
            self._target_deleted = False
            self._target = target
            was_there, self._identity = self._identity is not None, _identity(target)
            if not Path(target).is_dir():
                if moved or was_there:  # say it once, not after every pass
                    log.warning("source %s is not a directory now; waiting for it", self.link)
                return False
            handler = _Handler(self._on_tree_event)
            self._tree_watches.append(
                self._observer.schedule(handler, target, recursive=True, event_filter=WRITE_EVENTS)
            )
            found = git_dir(Path(target))
            self._git_dir = str(found) if found is not None else ""
            if found is not None and not _is_within(str(found), target):
                # The checkout's root is above the source directory: watch its
                # refs separately (HEAD and packed-refs live at the top).
                self._tree_watches.append(
                    self._observer.schedule(handler, str(found), event_filter=WRITE_EVENTS)
                )
                refs = found / "refs" / "heads"
                if refs.is_dir():
                    self._tree_watches.append(
                        self._observer.schedule(
                            handler, str(refs), recursive=True, event_filter=WRITE_EVENTS
                        )
                    )
            return True

    def _on_link_parent_event(self, path: str, event_type: str) -> None:
        del event_type  # created, deleted or moved: the link is re-read either way
        if path not in self._links:
            return
        if self._watch_target():
            self._notify(f"source symlink now points to {self._target}")

    def _on_tree_event(self, path: str, event_type: str) -> None:
        if path == self._target and event_type == EVENT_TYPE_DELETED:
            # inotify ends the watch with its directory, but the emitter's
            # thread only ends a moment later; without this mark, `refresh`
            # could find it alive and miss a directory created again under the
            # same name on the same inode (rm -rf and clone again). A plain
            # assignment, no lock: this runs under watchdog's dispatch lock,
            # which `_watch_target` takes inside ours.
            self._target_deleted = True
            self._notify(f"source directory deleted: {path}")
        elif self.relevant(path):
            self._notify(f"changed: {path}")

    def relevant(self, path: str) -> bool:
        """True when a change at `path` can change the snapshot or its revision."""
        if any(path.startswith(prefix) for prefix in self._ignore):
            return False
        if self._git_dir and _is_within(path, self._git_dir):
            return is_git_ref(os.path.relpath(path, self._git_dir))
        target = self._target
        if not _is_within(path, target):
            return False
        relative = os.path.relpath(path, target)
        return not any(part.startswith(".") for part in Path(relative).parts)


class _Handler(FileSystemEventHandler):
    """Forwards the paths of write events (both ends of a move) and their type to a callback."""

    def __init__(self, callback: Callable[[str, str], None]) -> None:
        self._callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Report the event's path(s); never raise into watchdog's thread."""
        paths = [event.src_path, event.dest_path] if event.dest_path else [event.src_path]
        for raw in paths:
            try:
                self._callback(_absolute(os.fsdecode(raw)), event.event_type)
            except Exception:
                log.exception("file-change handler failed for %s", raw)
