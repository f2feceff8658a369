"""`controller logs` reads a run's awslogs streams, found through the ledger."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

AWSLOGS = (
    "        logConfiguration:\n"
    "          logDriver: awslogs\n"
    "          options: {awslogs-group: /ecs/batch, awslogs-region: us-east-1, "
    "awslogs-stream-prefix: jobs}\n"
)


def test_logs_of_the_latest_attempt_and_of_a_chosen_one(world: World) -> None:
    world.sandbox.create_log_group("/ecs/batch")
    extra = "  backoffLimit: 1\n  backoff: {initialSeconds: 1, maxSeconds: 1}\n"
    world.write("a.yaml", job("talk", exit_code="3,0", duration=5, extra=extra) + AWSLOGS)
    world.reconcile()
    world.clock.advance(6)
    world.reconcile()  # attempt 1 failed; attempt 2 starts after the backoff
    world.clock.advance(2)
    world.reconcile()
    world.clock.advance(6)
    world.reconcile()
    assert world.run("talk")["phase"] == "Succeeded"

    latest = world.cli("logs", "talk")
    assert latest.returncode == 0, latest.stderr
    assert "attempt 2" in latest.stdout
    assert "started (sandbox)" in latest.stdout
    assert "app exited with code 0 (sandbox)" in latest.stdout

    first = world.cli("logs", "talk", "--run-id", "1", "--attempt", "1")
    assert first.returncode == 0, first.stderr
    assert "attempt 1" in first.stdout
    assert first.stdout.splitlines()[-1] == "app exited with code 3 (sandbox)"


def test_logs_of_an_unknown_run_is_an_error(world: World) -> None:
    missing = world.cli("logs", "nope")
    assert missing.returncode == 1
    assert "no run nope in the ledger" in missing.stderr


def test_follow_ends_once_the_tasks_have_stopped(world: World) -> None:
    world.sandbox.create_log_group("/ecs/batch")
    world.write("a.yaml", job("brief", duration=5) + AWSLOGS)
    world.reconcile()
    world.clock.advance(6)
    followed = world.cli("logs", "brief", "--follow")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.count("app exited with code 0 (sandbox)") == 1


def test_logs_of_an_indexed_run_pick_one_index(world: World) -> None:
    world.sandbox.create_log_group("/ecs/batch")
    world.write("a.yaml", job("shards", duration=1, extra="  completions: 2\n") + AWSLOGS)
    world.reconcile()
    world.clock.advance(3)
    world.reconcile()
    assert world.run("shards")["phase"] == "Succeeded"

    chosen = world.cli("logs", "shards", "--index", "0")
    assert chosen.returncode == 0, chosen.stderr
    assert "# shards/1#0 attempt 1: 1 task(s)" in chosen.stdout
    assert "app exited with code 0 (sandbox)" in chosen.stdout
    latest = world.cli("logs", "shards")
    assert "# shards/1#1 attempt 1" in latest.stdout
    missing = world.cli("logs", "shards", "--index", "5")
    assert missing.returncode == 1
    assert "has no index 5" in missing.stderr
