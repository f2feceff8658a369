"""Leader lease for the SQLite ledger: one `controller run` per ledger file.

Two loops on one SQLite ledger would not start a run twice (the ledger's
optimistic concurrency and the client token see to that), but they would
race every pass and double every AWS call for nothing. With one file there
is only one sensible replica, so `controller run` takes an exclusive
advisory lock (`flock`) on `<ledger>.lock` next to it for its whole life;
a second one exits 2 with a message naming the holder. The kernel drops the
lock when the process dies, however it dies, so there is nothing to expire.

Several replicas need a shared ledger: the DynamoDB ledger will bring a
lease item with acquire/renew/expire (as client-go's Lease does). Until
then this is the whole of leader election.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from controller.errors import UsageError


def lease_path(ledger: Path) -> Path:
    """The lock file of the SQLite ledger `ledger`: `<ledger>.lock`."""
    return ledger.with_name(ledger.name + ".lock")


class LeaseHeld(UsageError):
    """Another process holds the lease on this ledger."""


class FileLease:
    """An exclusive flock on a lock file, held until `release` (or process exit)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> FileLease:
        """Take the lock without waiting; LeaseHeld when another process has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LeaseHeld(
                f"another `controller run` (pid {holder}) holds the lease on this ledger"
                f" ({self.path}); with the SQLite ledger only one replica can run"
                " (several replicas will need the DynamoDB ledger's lease)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder's pid, for the message a second replica prints.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

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
