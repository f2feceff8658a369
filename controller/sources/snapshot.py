"""What a source hands to the loader: the files of one revision.

A source (a directory, an S3 prefix) only reads bytes; judging them is the
loader's job. Problems that stop a file from being read at all (too large,
a symlink escaping the root) are reported here in the loader's format.

`LastGoodSource` is what the long-running loop reads through: when the
source cannot be read at all (a checkout being swapped, S3 throttling), the
pass goes on with the last snapshot that could be read, marked `stale`, so
runs keep being observed and deadlines enforced while the loop retries the
read with backoff. An unreadable source never looks like an empty one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from controller.errors import TransientError
from controller.model.problems import ManifestError, ManifestWarning


@dataclass(frozen=True)
class Snapshot:
    """The manifest files of one source revision."""

    revision: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    errors: tuple[ManifestError, ...] = ()
    #: problems that exclude nothing (a symlink loop that was not followed)
    warnings: tuple[ManifestWarning, ...] = ()
    #: why this is an older snapshot served again instead of a fresh read
    stale: str | None = None


class Source(Protocol):
    """Where manifests come from."""

    def snapshot(self) -> Snapshot:
        """Read the current revision (raises TransientError when unreadable)."""
        ...

    def describe(self) -> str:
        """A short human name for logs and status (the path or URL)."""
        ...


class PolledSource(Source, Protocol):
    """A source without change notification: the loop asks it, now and then, whether it changed."""

    def poll(self) -> bool:
        """Cheaply check for a change since the last snapshot (True: a pass is due)."""
        ...


class LastGoodSource:
    """Wraps a source; a failed read answers with the last good snapshot, marked stale."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self._last: Snapshot | None = None

    def describe(self) -> str:
        """The wrapped source's name."""
        return self.inner.describe()

    def snapshot(self) -> Snapshot:
        """A fresh snapshot, or the last good one when the read fails transiently."""
        try:
            fresh = self.inner.snapshot()
        except TransientError as exc:
            if self._last is None:
                raise  # nothing to fall back on: the pass cannot know what is desired
            return replace(self._last, stale=f"{self.inner.describe()}: {exc}")
        self._last = fresh
        return fresh
