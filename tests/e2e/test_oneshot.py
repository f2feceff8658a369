"""`controller oneshot` through the real CLI on a real-time sandbox: every exit path (issue 15).

The sandbox runs on the system clock with a ticker, as ECS does, and the
CLI has no CONTROLLER_TEST_NOW: a oneshot waits in real time, as in CI.
Tasks last a second or two (SANDBOX_DURATION_SECONDS), or 600 s where the
test stops them; `--poll-seconds 0.2` keeps the waits short. Each test
waits, bounded, on what the child says or on its exit, then asserts state
through `status -o json` and the sandbox's calls; none asserts how long
anything took.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.clock import SystemClock
from controller.sandbox import Sandbox
from tests.e2e.child import Child
from tests.e2e.conftest import World, fresh_world, job

pytestmark = pytest.mark.e2e

TICK_SECONDS = 0.1
POLL = ("--poll-seconds", "0.2")
AWSLOGS = (
    "        logConfiguration:\n"
    "          logDriver: awslogs\n"
    "          options: {awslogs-group: /ecs/batch, awslogs-region: us-east-1, "
    "awslogs-stream-prefix: jobs}\n"
)
#: Infrastructure retries back off 1 s each, so a failed start gives up within seconds.
SHORT_BACKOFF = "  backoff: {initialSeconds: 1, maxSeconds: 1}\n"


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SystemClock(), tick_seconds=TICK_SECONDS) as sandbox:
        yield sandbox


@pytest.fixture
def world(module_sandbox: Sandbox, tmp_path: Path) -> World:
    world = fresh_world(module_sandbox, None, tmp_path, owner="os")
    module_sandbox.create_log_group("/ecs/batch")
    return world


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def manifest_file(world: World, name: str, text: str) -> Path:
    """A manifest file outside --source (the usual oneshot FILE)."""
    path = world.root / f"{name}.yaml"
    path.write_text(text)
    return path


def stopping_job(name: str, extra: str = "") -> str:
    """A JobRun whose task fails to start in the sandbox (SANDBOX_STOP_CODE)."""
    text = job(name, duration=1, extra=extra + SHORT_BACKOFF)
    return text + "          - {name: SANDBOX_STOP_CODE, value: TaskFailedToStart}\n"


def only_run(world: World, name: str) -> dict[str, object]:
    runs = [r for r in world.status()["runs"] if r["name"] == name]
    assert len(runs) == 1, runs
    return runs[0]


def test_success_exits_0_streams_the_logs_and_shows_the_phases(world: World) -> None:
    path = manifest_file(world, "ok", job("ok", duration=1) + AWSLOGS)

    done = world.cli("oneshot", str(path), *POLL)

    assert done.returncode == 0, done.stderr
    assert "[app] app started (sandbox)" in done.stdout
    assert "[app] app exited with code 0 (sandbox)" in done.stdout
    phases = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert any(" Succeeded (Completed): " in line for line in phases), done.stderr
    run = only_run(world, "ok")
    assert (run["origin"], run["phase"]) == ("oneshot", "Succeeded")
    assert str(run["runId"]).startswith("oneshot-")
    calls = world.sandbox.calls
    assert (calls[("ecs", "RegisterTaskDefinition")], calls[("ecs", "RunTask")]) == (1, 1)


def test_the_container_exit_code_is_the_exit_status(world: World) -> None:
    path = manifest_file(world, "three", job("three", exit_code="3", duration=1))

    done = world.cli("oneshot", str(path), "--no-logs", *POLL)

    assert done.returncode == 3, done.stderr
    assert "container app: exit code 3" in done.stderr
    assert done.stdout == ""


def test_backoff_limit_retries_apply_and_the_last_attempt_decides(world: World) -> None:
    extra = "  backoffLimit: 1\n" + SHORT_BACKOFF
    path = manifest_file(world, "flaky", job("flaky", exit_code="3,0", duration=1, extra=extra))

    done = world.cli("oneshot", str(path), "--no-logs", "-o", "json", *POLL)

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["exitCode"] == 0
    assert document["phase"] == "Succeeded"
    assert [a["exitCodes"] for a in document["attempts"]] == [{"app": 3}, {"app": 0}]


def test_a_task_that_fails_to_start_exits_1_with_the_reason(world: World) -> None:
    world.write("stuck.yaml", stopping_job("stuck"))

    done = world.cli("oneshot", "stuck", "--no-logs", *POLL)

    assert done.returncode == 1, done.stderr
    assert "TaskFailedToStart: CannotPullContainerError" in done.stderr
    run = only_run(world, "stuck")
    assert (run["phase"], run["reason"]) == ("Failed", "InfrastructureFailures")


def test_timeout_stops_the_task_and_exits_124(world: World) -> None:
    path = manifest_file(world, "slow", job("slow", duration=600))

    done = world.cli("oneshot", str(path), "--timeout", "1", "--no-logs", *POLL)

    assert done.returncode == 124, done.stderr
    assert "--timeout 1s expired: stopping slow/" in done.stderr
    assert world.tasks("RUNNING") == []
    (stopped,) = world.tasks("STOPPED")
    run = only_run(world, "slow")
    assert (run["phase"], run["reason"]) == ("Failed", "Cancelled")
    assert run["attempts"][0]["taskArns"] == [stopped]  # type: ignore[index]
    assert world.sandbox.calls[("ecs", "StopTask")] == 1


def test_sigint_stops_the_task_and_exits_130(world: World, children: list[Child]) -> None:
    path = manifest_file(world, "slow", job("slow", duration=600))
    child = Child(world.argv("oneshot", str(path), "--no-logs", *POLL), world.env())
    children.append(child)
    child.wait_line(" Running (Running): ")

    child.process.send_signal(signal.SIGINT)

    assert child.wait() == 130, child.output()
    assert "interrupted (SIGINT): stopping slow/" in child.output()
    assert world.tasks("RUNNING") == []
    run = only_run(world, "slow")
    assert (run["phase"], run["reason"]) == ("Failed", "Cancelled")


def test_no_stop_on_interrupt_leaves_the_task_running(world: World, children: list[Child]) -> None:
    path = manifest_file(world, "slow", job("slow", duration=600))
    argv = world.argv("oneshot", str(path), "--no-logs", "--no-stop-on-interrupt", *POLL)
    child = Child(argv, world.env())
    children.append(child)
    child.wait_line(" Running (Running): ")

    child.process.send_signal(signal.SIGINT)

    assert child.wait() == 130, child.output()
    assert len(world.tasks("RUNNING")) == 1
    assert only_run(world, "slow")["phase"] == "Running"


def test_a_crashed_oneshot_is_adopted_by_the_next_with_the_same_run_id(world: World) -> None:
    path = manifest_file(world, "once", job("once", duration=2))
    args = ("oneshot", str(path), "--run-id", "ci-42", "--no-logs", *POLL)

    crashed = world.cli(*args, env={"CONTROLLER_TEST_CRASH_AT": "after-run-task"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert world.sandbox.calls[("ecs", "RunTask")] == 1

    again = world.cli(*args)

    assert again.returncode == 0, again.stderr
    assert world.sandbox.calls[("ecs", "RunTask")] == 1  # adopted, never started twice
    run = only_run(world, "once")
    assert (run["runId"], run["phase"]) == ("ci-42", "Succeeded")
    assert len(run["attempts"]) == 1  # type: ignore[arg-type]


def test_no_wait_prints_the_run_key_and_task_arn(world: World) -> None:
    path = manifest_file(world, "bg", job("bg", duration=600))

    done = world.cli("oneshot", str(path), "--run-id", "bg-1", "--no-wait")

    assert done.returncode == 0, done.stderr
    key, arn = done.stdout.split()
    assert key == "bg/bg-1"
    assert world.tasks("RUNNING") == [arn]


def test_a_full_pass_beside_a_oneshot_run_neither_orphans_nor_cancels_it(
    world: World, children: list[Child]
) -> None:
    world.write("other.yaml", job("other", duration=600))
    path = manifest_file(world, "side", job("side", duration=600))
    child = Child(world.argv("oneshot", str(path), "--no-logs", *POLL), world.env())
    children.append(child)
    child.wait_line(" Running (Running): ")

    beside = world.cli("reconcile", "--once", "--stop-orphans")

    assert beside.returncode == 0, beside.stderr
    run = only_run(world, "side")
    assert (run["phase"], run["reason"]) == ("Running", "Running")
    assert ("ecs", "StopTask") not in world.sandbox.calls
    assert len(world.tasks("RUNNING")) == 2  # the oneshot's and the pass's own `other`
    child.process.send_signal(signal.SIGINT)  # the oneshot's own way to end it
    assert child.wait() == 130, child.output()
    assert only_run(world, "side")["reason"] == "Cancelled"


def test_a_name_not_in_the_source_is_one_line_and_exit_1(world: World) -> None:
    done = world.cli("oneshot", "nope")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: no JobRun or CronJob nope in {world.manifests}"
    ]


def test_an_indexed_run_waits_for_every_index_and_exits_0(world: World) -> None:
    extra = "  completions: 3\n  parallelism: 2\n"
    path = manifest_file(world, "shards", job("shards", duration=1, extra=extra))

    done = world.cli("oneshot", str(path), "--no-logs", "-o", "json", *POLL)

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["phase"], document["exitCode"]) == ("Succeeded", 0)
    assert document["indexCounts"] == {"completed": 3, "failed": 0, "running": 0, "pending": 0}
    calls = world.sandbox.calls
    assert (calls[("ecs", "RegisterTaskDefinition")], calls[("ecs", "RunTask")]) == (1, 3)


def test_an_indexed_run_whose_index_fails_exits_with_its_code(world: World) -> None:
    extra = "  completions: 2\n"
    path = manifest_file(world, "bad", job("bad", exit_code="4", duration=1, extra=extra))

    done = world.cli("oneshot", str(path), "--no-logs", *POLL)

    assert done.returncode == 4, done.stderr
    assert "FailedIndexes" in done.stderr


def test_a_oneshot_run_is_announced_under_the_manifests_spec_notify(world: World) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-team")
    notify = f"  notify: {{snsTopicArn: '{topic}'}}\n"
    path = manifest_file(world, "etl", job("etl", exit_code="3", duration=1, extra=notify))
    done = world.cli("oneshot", str(path), "--no-logs", *POLL)
    assert done.returncode == 3, done.stderr

    [envelope] = world.sandbox.received(queue)
    body = json.loads(envelope["Message"])
    assert (body["name"], body["phase"]) == ("etl", "Failed")
    assert body["reason"] == "BackoffLimitExceeded"
    assert body["runId"] == only_run(world, "etl")["runId"]
