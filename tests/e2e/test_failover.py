"""High availability with processes: two `controller run` replicas, and the leader taken away.

Two replicas share one DynamoDB ledger in the sandbox (real time: the
sandbox's agent moves tasks on its own). 40 runs are in flight, their
tasks ending at staggered times, some failing. The leader is SIGKILLed
twice (a crashed task) and SIGSTOPped once (a frozen host, thawed after
the standby took over, possibly in the middle of a pass); after each kill
a fresh replica is started, so there is always one standby. Afterwards:

* every run reached the outcome its task decides (Succeeded or Failed),
* no attempt was started twice: ECS holds exactly one task per run and
  attempt (read from the tasks' own tags), and the ledger one attempt,
* each time, the standby took the lease over ("took over", not a release)
  and then ran a pass.

How long each takeover took is measured by bench/failover.py (this test
asserts no durations; the bounds on its waits are only there so a broken
failover fails instead of hanging).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.clock import SystemClock
from controller.sandbox import Sandbox
from tests.e2e.child import DEADLINE
from tests.e2e.conftest import World, job
from tests.e2e.replicas import Blow, Replicas

pytestmark = pytest.mark.e2e

TABLE = "ha-ledger"
RUNS = 40


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SystemClock(), tick_seconds=0.1) as sandbox:
        yield sandbox


class HaWorld(World):
    """The e2e World with its ledger in the sandbox's DynamoDB table."""

    @property
    def state(self) -> str:
        return f"dynamodb://{TABLE}"


def lease_reader(sandbox: Sandbox) -> Any:
    dynamodb = sandbox.client("dynamodb", counted=False)

    def read() -> dict[str, Any] | None:
        item = dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": "LEASE"}, "sk": {"S": "leader"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return {name: next(iter(value.values())) for name, value in item.items()}

    return read


def expected_phase(i: int) -> str:
    return "Failed" if i % 8 == 0 else "Succeeded"


def manifests(world: World) -> None:
    for i in range(RUNS):
        exit_code = "3" if expected_phase(i) == "Failed" else "0"
        # Ends spread over the whole test: before, between and after the failovers.
        world.write(
            f"job-{i:02d}.yaml", job(f"job-{i:02d}", exit_code=exit_code, duration=5 + 2 * i)
        )


def tasks_per_attempt(sandbox: Sandbox, owner: str) -> Counter[tuple[str, str]]:
    """(run, attempt) -> how many ECS tasks carry those tags."""
    ecs = sandbox.client("ecs", counted=False)
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        pages = ecs.get_paginator("list_tasks").paginate(
            cluster="batch", startedBy=f"ejc/{owner}", desiredStatus=status
        )
        arns += [arn for page in pages for arn in page["taskArns"]]
    found: Counter[tuple[str, str]] = Counter()
    for start in range(0, len(arns), 100):
        described = ecs.describe_tasks(
            cluster="batch", tasks=arns[start : start + 100], include=["TAGS"]
        )
        for task in described["tasks"]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            found[(tags["ecs-job-controller/run"], tags["ecs-job-controller/attempt"])] += 1
    return found


def test_the_standby_takes_over_from_a_killed_or_frozen_leader_and_nothing_runs_twice(
    module_sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox = module_sandbox
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 6, cpu=2048, memory=4096)  # room for 48
    (tmp_path / "manifests").mkdir()
    world = HaWorld(sandbox=sandbox, clock=None, root=tmp_path, owner="ha")
    manifests(world)
    argv = world.argv(
        "run", "--metrics-addr", "127.0.0.1:0", "--resync-seconds", "3600",
        "--active-poll-seconds", "1",
    )  # fmt: skip
    replicas = Replicas(argv, world.env(), lease_reader(sandbox))
    try:
        first = replicas.start()
        first.wait_line("RunTask job-39/1")  # every run started by the first leader
        replicas.start()
        failovers = []
        for blow in (Blow.KILL, Blow.KILL, Blow.PAUSE):
            failovers.append(replicas.fail_leader(blow))
            if blow is Blow.KILL:
                replicas.start()  # a new replica: one standby again
        leader = replicas.alive[replicas.leader()]

        # Every run reaches its outcome: checked after each of the leader's passes.
        since = 0
        phases: dict[str, str] = {}
        for _ in range(200):
            since = leader.wait_line("pass done", since=since, timeout=DEADLINE).number + 1
            phases = {r["name"]: r["phase"] for r in world.status()["runs"]}
            if all(p in ("Succeeded", "Failed") for p in phases.values()) and len(phases) == RUNS:
                break
        assert phases == {f"job-{i:02d}": expected_phase(i) for i in range(RUNS)}
        assert replicas.stop_all() == [0, 0]
    finally:
        replicas.kill_all()

    # No attempt started twice: one task per (run, attempt), one attempt per run.
    assert tasks_per_attempt(sandbox, "ha") == Counter(
        {(f"job-{i:02d}", "1"): 1 for i in range(RUNS)}
    )
    runs = world.status()["runs"]
    assert [len(r["attempts"]) for r in runs] == [1] * RUNS
    # Each time the standby stole the expired lease from the old leader.
    assert [f.blow for f in failovers] == [Blow.KILL, Blow.KILL, Blow.PAUSE]
    assert all(f.new_leader != f.old_leader for f in failovers)
    assert all(f.took_over_at <= f.first_pass_at for f in failovers)
