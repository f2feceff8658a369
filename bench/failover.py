"""Benchmark (issue 16): how long two `controller run` replicas take to fail over.

Two replicas on one DynamoDB ledger in a real-time sandbox (its agent moves
tasks on its own), with runs in flight: 20 long tasks, and 20 short ones
ending while the leader changes hands. The leader is taken away again and
again, by SIGKILL (a crashed task: its lease is never released) and by
SIGSTOP (a frozen host: thawed once the standby leads); after a kill a
fresh replica starts, so there is always one standby. The procedure is the
HA test's (tests/e2e/replicas.py).

Per failover, from the replicas' own log-line timestamps and the lease item:

* signal -> first pass: from the signal to the end of the new leader's
  first pass (what an operator sees as the gap);
* expiry -> first pass: from the moment the lease the old leader last
  renewed expired (renewal + 15 s) to that pass's end. The standby counts
  the 15 s from when *it* saw the last renewal (client-go's rule: no trust
  in other hosts' clocks), then tries every 2 s retry period, then runs a
  pass: expected within a retry period plus one pass.

The design's bound is lease duration + one pass after the signal (15 s +
retry period + a pass). Nothing is asserted; the table is the figure.

    .venv/bin/python -m bench.failover [--kills N] [--pauses N]

Default 4 kills and 3 pauses: about 3 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench.figure_table import print_figure_table
from controller.clock import SystemClock
from controller.sandbox import Sandbox
from tests.e2e.conftest import World, job
from tests.e2e.replicas import LEASE_SECONDS, Blow, Failover, Replicas

warnings.filterwarnings("ignore", category=UserWarning, module="moto")

TABLE = "failover-ledger"
OWNER = "bench"


class BenchWorld(World):
    """The e2e World on the DynamoDB ledger."""

    @property
    def state(self) -> str:
        return f"dynamodb://{TABLE}"


def lease_reader(sandbox: Sandbox) -> Any:
    dynamodb = sandbox.client("dynamodb", counted=False)

    def read() -> dict[str, Any] | None:
        key = {"pk": {"S": "LEASE"}, "sk": {"S": "leader"}}
        item = dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
        return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}

    return read


def run_trials(blows: list[Blow]) -> list[Failover]:
    with (
        tempfile.TemporaryDirectory() as scratch,
        Sandbox(SystemClock(), tick_seconds=0.1) as sandbox,
    ):
        root = Path(scratch)
        (root / "manifests").mkdir()
        sandbox.create_cluster("batch")
        sandbox.add_container_instances("batch", 6, cpu=2048, memory=4096)
        world = BenchWorld(sandbox=sandbox, clock=None, root=root, owner=OWNER)
        for i in range(20):
            world.write(f"long-{i:02d}.yaml", job(f"long-{i:02d}", duration=3600))
            world.write(f"short-{i:02d}.yaml", job(f"short-{i:02d}", duration=5 + 4 * i))
        argv = world.argv(
            "run", "--metrics-addr", "127.0.0.1:0", "--resync-seconds", "3600",
            "--active-poll-seconds", "1",
        )  # fmt: skip
        replicas = Replicas(argv, world.env(), lease_reader(sandbox))
        failovers: list[Failover] = []
        try:
            first = replicas.start()
            first.wait_line("RunTask short-19/1")
            replicas.start()
            for number, blow in enumerate(blows, 1):
                failover = replicas.fail_leader(blow)
                failovers.append(failover)
                print(
                    f"  {number}/{len(blows)} {blow.value}: signal -> first pass"
                    f" {failover.signal_to_pass:.2f} s",
                    file=sys.stderr,
                )
                if blow is Blow.KILL:
                    replicas.start()
            replicas.stop_all()
        finally:
            replicas.kill_all()
        return failovers


def row(name: str, values: list[float]) -> list[str]:
    return [
        name,
        str(len(values)),
        f"{statistics.median(values):.2f}",
        f"{max(values):.2f}",
        f"{min(values):.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--pauses", type=int, default=3)
    args = parser.parse_args()
    # Alternate the blows, so neither always meets the same state of the world.
    blows: list[Blow] = []
    for k in range(max(args.kills, args.pauses)):
        blows += [Blow.KILL] if k < args.kills else []
        blows += [Blow.PAUSE] if k < args.pauses else []
    started = time.monotonic()
    failovers = run_trials(blows)
    rows = []
    for blow in (Blow.KILL, Blow.PAUSE):
        mine = [f for f in failovers if f.blow is blow]
        if mine:
            rows.append(
                row(f"{blow.value}: signal -> first pass", [f.signal_to_pass for f in mine])
            )
            rows.append(
                row(f"{blow.value}: expiry -> first pass", [f.expiry_to_pass for f in mine])
            )
    print(f"lease duration {LEASE_SECONDS:g} s, retry period 2 s; 40 runs in flight")
    print_figure_table(["failover (s)", "n", "median", "max", "min"], rows)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
