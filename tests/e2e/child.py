"""A `controller` child process whose output a test reads line by line, as it comes.

An end-to-end test of a long-running command waits for what the child says
it did (`serving metrics on ...`, `RunTask beta/1 ...`, `pass done ...`),
never for time to pass and never by re-reading a log file: a reader thread
takes the child's stdout and stderr (one stream) line by line and wakes the
waiting test at each one. Every wait is bounded, and fails at once, with the
output so far, when the child exits before saying the awaited line.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: The bound on every wait: generous, since the machine may be busy; a wait
#: that succeeds ends at the awaited line, however long the bound.
DEADLINE = 60.0


@dataclass(frozen=True)
class Line:
    """One line of the child's output and its index (to wait for a later one)."""

    number: int
    text: str


class Child:
    """A child process; its output collected by a reader thread, awaited line by line."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            list(argv), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._lines: list[str] = []
        self._ended = False  # the output is complete: the child closed it (it exited)
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="child output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        with stream:
            for raw in stream:
                with self._changed:
                    self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def output(self) -> str:
        """Everything the child said so far (all of it once it has exited)."""
        with self._changed:
            return "".join(f"{line}\n" for line in self._lines)

    def wait_line(
        self,
        wanted: str | Callable[[str], bool],
        *,
        since: int = 0,
        timeout: float = DEADLINE,
        what: str | None = None,
    ) -> Line:
        """The first line from line number `since` on that contains (or satisfies) `wanted`.

        Waits for it, at most `timeout` seconds; fails if the child exits
        first. `what` names the line in the failure (default: `wanted`).
        """
        matches = (lambda text: wanted in text) if isinstance(wanted, str) else wanted
        found: list[Line] = []
        scanned = since

        def settled() -> bool:
            nonlocal scanned
            for number in range(scanned, len(self._lines)):
                if matches(self._lines[number]):
                    found.append(Line(number, self._lines[number]))
                    return True
            scanned = max(scanned, len(self._lines))
            return self._ended

        with self._changed:
            self._changed.wait_for(settled, timeout)
            ended = self._ended
        if found:
            return found[0]
        what = what or repr(wanted)
        if ended:
            status = self.process.wait(timeout=DEADLINE)
            raise AssertionError(f"exited {status} before saying {what}:\n{self.output()}")
        raise AssertionError(f"no {what} within {timeout:.0f}s:\n{self.output()}")

    def wait(self) -> int:
        """The exit status, once the child has exited and all its output is read."""
        status = self.process.wait(timeout=DEADLINE * 2)
        self._reader.join(timeout=DEADLINE)
        assert not self._reader.is_alive(), "the child exited but its output never ended"
        return status

    def stop(self) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        """Kill the child if it still runs (test teardown)."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
