"""One writer at a time: `reconcile --once` and `run` share the ledger lock (or lease).

Every test drives the real CLI against the sandbox. Concurrent writers are
real concurrent processes; a test that needs "the lock is taken" holds it
with a live `controller run` (or, where only the key matters, a FileLease in
this process, which the kernel treats like any other holder). Waiting here is
for another process, bounded, on what it says (`tests/e2e/child.py`): no
assertion rests on a fixed sleep, nothing polls.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from controller.state.file_lock import FileLease, lease_path
from tests.e2e.child import Child
from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


def environment(world: World) -> dict[str, str]:
    env = world.sandbox.subprocess_env()
    env["CONTROLLER_TEST_NOW"] = world.clock.now().isoformat()
    return env


@pytest.fixture
def launch(world: World) -> Iterator[Callable[..., Child]]:
    """Start controller commands in the background; killed at teardown if still alive."""
    started: list[Child] = []

    def start(*args: str, state: str | None = None) -> Child:
        started.append(Child(world.argv(*args, state=state), environment(world)))
        return started[-1]

    yield start
    for child in started:
        child.kill()


def start_run(launch: Callable[..., Child], state: str | None = None) -> Child:
    """A live `controller run` that has finished its first pass."""
    running = launch(
        "run", "--resync-seconds", "3600", "--metrics-addr", "127.0.0.1:0", state=state
    )
    running.wait_line("pass done")
    return running


def cli(world: World, *args: str, state: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        world.argv(*args, state=state),
        env=environment(world),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def registrations(world: World) -> int:
    return world.sandbox.calls[("ecs", "RegisterTaskDefinition")]


def test_two_concurrent_reconciles_register_each_revision_once(
    world: World, launch: Callable[..., Child]
) -> None:
    world.sandbox.add_container_instances("batch", 2, cpu=2048, memory=4096)  # room for 32
    for i in range(30):
        world.write(f"job-{i:02d}.yaml", job(f"job-{i:02d}"))
    first = launch("reconcile", "--once", "--lock-timeout", "120")
    second = launch("reconcile", "--once", "--lock-timeout", "120")

    assert (first.wait(), second.wait()) == (0, 0), first.output() + second.output()
    # The second pass waited for the first and found everything done.
    assert registrations(world) == 30
    ecs = world.sandbox.client("ecs", counted=False)
    for i in range(30):
        family = ecs.list_task_definitions(familyPrefix=f"job-{i:02d}")["taskDefinitionArns"]
        assert len(family) == 1
    assert len(world.all_tasks()) == 30
    runs = world.status()["runs"]
    assert len(runs) == 30
    assert all(len(r["attempts"]) == 1 for r in runs)


def test_reconcile_beside_a_live_run_waits_then_exits_2_naming_the_holder(
    world: World, launch: Callable[..., Child]
) -> None:
    world.write("a.yaml", job("a"))
    running = start_run(launch)
    started = time.monotonic()

    refused = world.cli("reconcile", "--once", "--lock-timeout", "1")

    assert refused.returncode == 2, refused.stderr
    assert time.monotonic() - started >= 1  # it waited its timeout first
    errors = [line for line in refused.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1
    assert errors[0].startswith("error: ")
    assert f"pid {running.process.pid}, `controller run`" in refused.stderr
    assert "still after waiting 1s (--lock-timeout)" in refused.stderr
    assert running.stop() == 0
    # Once the holder has gone, the same command goes through.
    done = world.cli("reconcile", "--once", "--lock-timeout", "1")
    assert done.returncode == 0, done.stderr


def test_reconcile_waits_for_a_run_that_is_stopping_and_then_passes(
    world: World, launch: Callable[..., Child]
) -> None:
    world.write("a.yaml", job("a"))
    running = start_run(launch)
    waiting = launch("reconcile", "--once", "--lock-timeout", "60")
    running.process.send_signal(signal.SIGTERM)

    assert running.wait() == 0
    assert waiting.wait() == 0, waiting.output()
    assert len(world.all_tasks()) == 1


def test_run_waits_up_to_its_lock_timeout_at_start(
    world: World, launch: Callable[..., Child]
) -> None:
    world.write("a.yaml", job("a"))
    with FileLease(lease_path(world.root / "state.db"), "controller reconcile --once"):
        started = time.monotonic()
        second = world.cli("run", "--metrics-addr", "127.0.0.1:0", "--lock-timeout", "1")
    assert second.returncode == 2
    assert time.monotonic() - started >= 1
    assert f"pid {os.getpid()}, `controller reconcile --once`" in second.stderr
    assert world.all_tasks() == []


def test_a_ledger_alias_through_a_symlink_shares_the_lock(
    world: World, launch: Callable[..., Child]
) -> None:
    world.write("a.yaml", job("a"))
    running = start_run(launch)
    alias = world.root / "alias.db"
    alias.symlink_to(world.root / "state.db")
    linked = world.root / "linked"
    linked.symlink_to(world.root)

    for state in (f"sqlite:{alias}", f"sqlite:{linked / 'state.db'}"):
        refused = cli(world, "reconcile", "--once", "--lock-timeout", "0", state=state)
        assert refused.returncode == 2, (state, refused.stderr)
        assert f"pid {running.process.pid}" in refused.stderr
    assert running.stop() == 0


def test_dry_runs_take_no_lock(world: World) -> None:
    world.write("a.yaml", job("a"))
    with FileLease(lease_path(world.root / "state.db"), "controller run"):
        # A lock timeout far beyond the subprocess timeout: waiting would fail the test.
        dry = world.cli("reconcile", "--once", "--dry-run", "--lock-timeout", "600")
        diff = world.cli("diff", "--lock-timeout", "600")
    assert dry.returncode == 0, dry.stderr
    assert "would: RunTask a/1" in dry.stdout
    assert diff.returncode == 1, diff.stderr
    assert world.all_tasks() == []


@dataclass
class DynamoDbWorld(World):
    """The e2e World with its ledger in the sandbox's DynamoDB table."""

    @property
    def state(self) -> str:
        return "dynamodb://one-writer"


@pytest.fixture
def dynamo_world(world: World) -> DynamoDbWorld:
    return DynamoDbWorld(sandbox=world.sandbox, clock=world.clock, root=world.root)


def test_reconcile_on_dynamodb_takes_the_leader_lease_for_its_pass(
    dynamo_world: DynamoDbWorld, launch: Callable[..., Child]
) -> None:
    world = dynamo_world
    world.write("a.yaml", job("a"))
    running = start_run(launch, state=world.state)

    refused = world.cli("reconcile", "--once", "--lock-timeout", "3")
    assert refused.returncode == 2, refused.stderr
    assert f":{running.process.pid}:" in refused.stderr  # the holder's identity
    assert "holds the lease of dynamodb://one-writer" in refused.stderr
    assert running.stop() == 0  # releases the lease

    # Each pass releases the lease after itself: passes follow one another
    # at once instead of waiting for the lease to expire (15 s).
    world.write("b.yaml", job("b"))
    for _ in range(2):
        done = world.cli("reconcile", "--once", "--lock-timeout", "5")
        assert done.returncode == 0, done.stderr
    assert len(world.all_tasks()) == 2


# -- a registration whose answer was lost ---------------------------------------------


def family_revisions(world: World, family: str) -> list[str]:
    ecs = world.sandbox.client("ecs", counted=False)
    arns: list[str] = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    return arns


def test_a_registration_answered_500_after_ecs_made_it_is_found_not_repeated(
    world: World,
) -> None:
    world.write("a.yaml", job("a"))
    world.sandbox.inject_fault(
        "ecs", "RegisterTaskDefinition", "ServerException", status=500, executed=True
    )

    done = world.reconcile()

    assert done.returncode == 0, done.stderr
    [arn] = family_revisions(world, "a")
    assert registrations(world) == 1  # the one unanswered call, never repeated
    assert world.run("a")["taskDefinitionArn"] == arn
    assert len(world.all_tasks()) == 1


def test_a_registration_that_failed_before_ecs_made_it_is_retried(world: World) -> None:
    world.write("a.yaml", job("a"))
    world.sandbox.inject_fault("ecs", "RegisterTaskDefinition", "ServerException", status=500)
    world.sandbox.inject_fault("ecs", "RegisterTaskDefinition", "ThrottlingException")

    done = world.reconcile()

    assert done.returncode == 0, done.stderr
    assert registrations(world) == 3  # two refused, then one that registered
    [arn] = family_revisions(world, "a")
    assert world.run("a")["taskDefinitionArn"] == arn


def test_every_answer_lost_still_makes_one_revision(world: World) -> None:
    world.write("a.yaml", job("a"))
    world.write("b.yaml", job("b", family="a"))  # the same spec: one registration for both
    world.sandbox.inject_fault(
        "ecs", "RegisterTaskDefinition", "ServerException", status=500, executed=True, times=10
    )

    done = world.reconcile()

    assert done.returncode == 0, done.stderr
    assert len(family_revisions(world, "a")) == 1
    assert registrations(world) == 1
    assert {world.run("a")["taskDefinitionArn"], world.run("b")["taskDefinitionArn"]} == set(
        family_revisions(world, "a")
    )
