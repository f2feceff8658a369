"""Two (or more) `controller run` replicas on one DynamoDB ledger, and their failovers.

Shared by the HA test (tests/e2e/test_failover.py) and its benchmark
(bench/failover.py), which run the same procedure: start replicas, find the
leader, take it away (SIGKILL, or SIGSTOP as a frozen host would), and wait
until another replica has taken the lease over and finished its first pass.

Who leads is read from the lease item itself (its holder names the
replica's pid), never guessed from log lines. Waiting is on the replicas'
own lines (`tests/e2e/child.py`), bounded; times come from those lines'
ISO timestamps (the replicas and this process share the system clock), so
a failover is timed without sleeping or polling.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tests.e2e.child import Child, Line

#: client-go's default lease duration, which `controller run` uses.
LEASE_SECONDS = 15.0
#: Generous bounds for a busy machine: a lease duration, a retry period and a pass.
TAKEOVER_BOUND = 120.0


class Blow(StrEnum):
    """How the leader is taken away."""

    KILL = "kill"  # SIGKILL: the process is gone, its lease never released
    PAUSE = "pause"  # SIGSTOP: alive but frozen; SIGCONT'd once another leads


@dataclass(frozen=True)
class Failover:
    """One failover, timed from the replicas' log lines and the lease record."""

    blow: Blow
    old_leader: int
    new_leader: int
    #: when the leader was signalled
    signalled_at: datetime
    #: when the lease the old leader last renewed expired (renewal + duration)
    expired_at: datetime
    #: the new leader's "took over the lease" line
    took_over_at: datetime
    #: the end of the new leader's first pass
    first_pass_at: datetime

    @property
    def signal_to_pass(self) -> float:
        """Seconds from the signal to the new leader's first finished pass."""
        return (self.first_pass_at - self.signalled_at).total_seconds()

    @property
    def expiry_to_pass(self) -> float:
        """Seconds from the old lease's expiry to the new leader's first finished pass."""
        return (self.first_pass_at - self.expired_at).total_seconds()


def line_time(line: Line) -> datetime:
    """The ISO timestamp that starts a text-format log line."""
    return datetime.fromisoformat(line.text.split(" ", 1)[0].replace("Z", "+00:00"))


class Replicas:
    """`controller run` replicas of one ledger, started and signalled by the caller."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        read_lease: Callable[[], Mapping[str, Any] | None],
    ) -> None:
        """`argv` starts one replica; `read_lease` reads the lease item (None: none yet)."""
        self._argv = list(argv)
        self._env = dict(env)
        self._read_lease = read_lease
        #: every replica started, by pid (killed ones included)
        self.started: dict[int, Child] = {}
        self.alive: dict[int, Child] = {}

    def start(self) -> Child:
        """A new replica, once it has made its first try for the lease."""
        child = Child(self._argv, self._env)
        self.started[child.process.pid] = self.alive[child.process.pid] = child
        child.wait_line(lambda t: "leading: passes run" in t or "standing by" in t, what="a try")
        return child

    def leader(self) -> int:
        """The pid the lease item names as its holder."""
        item = self._read_lease()
        assert item is not None, "no lease item"
        assert item.get("holder"), f"no lease holder: {item}"
        pid = int(str(item["holder"]).split(":")[-2])
        assert pid in self.alive, f"the lease names pid {pid}, not a live replica"
        return pid

    def lease_expiry(self) -> datetime:
        """When the lease as stored now expires (its last renewal plus its duration)."""
        item = self._read_lease()
        assert item is not None
        renewed = datetime.fromisoformat(str(item["renewed_at"]).replace("Z", "+00:00"))
        duration = float(item["duration_ms"]) / 1000 if "duration_ms" in item else LEASE_SECONDS
        return renewed.astimezone(UTC) + timedelta(seconds=duration)

    def fail_leader(self, blow: Blow) -> Failover:
        """Take the leader away; wait for a standby to take over and finish a pass."""
        old = self.leader()
        victim = self.alive[old]
        standbys = [(pid, c) for pid, c in self.alive.items() if pid != old]
        assert len(standbys) == 1, "one standby, so that the one to take over is known"
        [(new, successor)] = standbys
        mark = len(successor.output().splitlines())
        signalled_at = datetime.now(UTC)
        victim.process.send_signal(signal.SIGKILL if blow is Blow.KILL else signal.SIGSTOP)
        expired_at = self.lease_expiry()
        if blow is Blow.KILL:
            victim.wait()
            del self.alive[old]
        took = successor.wait_line("took over the lease", since=mark, timeout=TAKEOVER_BOUND)
        first = successor.wait_line("pass done", since=took.number, timeout=TAKEOVER_BOUND)
        assert self.leader() == new
        if blow is Blow.PAUSE:
            # Thawed, it finds the lease taken and stands by (or, mid-pass
            # when frozen, finishes that pass: the ledger's versions and the
            # client token keep it from starting anything twice).
            thawed = len(victim.output().splitlines())
            victim.process.send_signal(signal.SIGCONT)
            victim.wait_line("standing by", since=thawed, timeout=TAKEOVER_BOUND)
        return Failover(
            blow=blow,
            old_leader=old,
            new_leader=new,
            signalled_at=signalled_at,
            expired_at=expired_at,
            took_over_at=line_time(took),
            first_pass_at=line_time(first),
        )

    def stop_all(self) -> list[int]:
        """SIGTERM every live replica (a paused one is resumed first); their exit statuses."""
        statuses = []
        for child in self.alive.values():
            child.process.send_signal(signal.SIGCONT)
            statuses.append(child.stop())
        self.alive.clear()
        return statuses

    def kill_all(self) -> None:
        """Teardown: kill whatever still runs."""
        for child in self.started.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGCONT)
            child.kill()
