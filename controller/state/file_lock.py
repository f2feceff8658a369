"""The ledger lock of the SQLite ledger: one writing pass per ledger file at a time.

A pass (`controller run`, `controller reconcile --once`) does work that must
be exclusive — CronJob scheduling, orphaning, pruning, capacity decisions,
registrations — so it holds an exclusive advisory lock (`flock`) on
`<ledger>.lock` next to the ledger: `run` for its whole life, `reconcile
--once` for its one pass. A second writer waits up to `--lock-timeout`
seconds (default 30) for it, then exits 2 with a message naming the holder
(its pid and command, which the holder writes into the lock file). The
kernel drops the lock when the process dies, however it dies, so there is
nothing to expire. Read-only commands (`diff`, `plan`, `reconcile --dry-run`,
`status`) take no lock.

The lock is keyed by the ledger's resolved path (`realpath`): a ledger
reached through a symlink, or through a symlinked directory, has the same
lock file as the one it points at, so an alias cannot write beside the holder.

Several replicas need a shared ledger: the DynamoDB ledger's lease item
(`controller.state.leader_lease`) plays this part there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from controller.errors import UsageError

#: How often a waiting writer tries the lock again (flock has no timed wait).
RETRY_SECONDS = 0.05


def lease_path(ledger: Path) -> Path:
    """The lock file of the SQLite ledger `ledger`: `<resolved ledger path>.lock`."""
    resolved = Path(os.path.realpath(ledger))
    return resolved.with_name(resolved.name + ".lock")


class LeaseHeld(UsageError):
    """Another process holds the lease on this ledger."""


class FileLease:
    """An exclusive flock on a lock file, held until `release` (or process exit).

    `holder` says who takes it (e.g. `controller run`); it is written into
    the file, with the pid, for the message a refused writer prints.
    """

    def __init__(self, path: str | Path, holder: str = "controller") -> None:
        self.path = Path(path)
        self.holder = holder
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> FileLease:
        """Take the lock, waiting up to `timeout` seconds; LeaseHeld if it stays taken."""
        # Private like the ledger beside it (a directory made here is the ledger's too).
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._lock(fd, timeout)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.holder}\n".encode(), 0)
        self._fd = fd
        return self

    def _lock(self, fd: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._held(fd, timeout) from None
                time.sleep(min(RETRY_SECONDS, left))

    def _held(self, fd: int, timeout: float) -> LeaseHeld:
        text = os.pread(fd, 256, 0).decode("ascii", "replace").strip()
        pid, _, command = text.partition(" ")
        who = f"pid {pid or 'unknown'}" + (f", `{command}`" if command else "")
        waited = f", still after waiting {timeout:g}s (--lock-timeout)" if timeout > 0 else ""
        return LeaseHeld(
            f"another controller ({who}) holds the lease on this ledger ({self.path}){waited};"
            " with the SQLite ledger one pass writes at a time"
            " (several `controller run` replicas need the DynamoDB ledger)"
        )

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race a new holder)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLease:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
