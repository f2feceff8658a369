"""Safe by default: test hooks only count in a sandbox, and a lost ledger never restarts history.

Through the real CLI against the sandbox. "Outside a sandbox" is made the
way it happens in production: no endpoint configured (boto3 goes to AWS),
or one service's endpoint pointing away from the loopback address. The
commands must stop before any AWS call, so nothing ever leaves the machine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.state.sqlite import SqliteLedger
from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

NOW = "2026-11-28T03:30:00+00:00"


def run_cli(
    world: World, env: dict[str, str], *args: str, state: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI with exactly `env` (no CONTROLLER_TEST_NOW unless it is in there)."""
    argv = world.argv(*args, state=state)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def no_endpoint(world: World) -> dict[str, str]:
    """The sandbox's environment without its endpoint: boto3 would talk to AWS."""
    env = world.sandbox.subprocess_env()
    del env["AWS_ENDPOINT_URL"]
    return env


def ecs_elsewhere(world: World) -> dict[str, str]:
    """Every service in the sandbox but ECS, which goes to AWS."""
    env = world.sandbox.subprocess_env()
    env["AWS_ENDPOINT_URL_ECS"] = "https://ecs.us-east-1.amazonaws.com"
    return env


def dynamodb_elsewhere(world: World) -> dict[str, str]:
    """A DynamoDB ledger on a (private, but not loopback) network address."""
    env = world.sandbox.subprocess_env()
    env["AWS_ENDPOINT_URL_DYNAMODB"] = "http://10.0.0.1:8000"
    return env


OUTSIDE = [no_endpoint, ecs_elsewhere]
HOOKS = [("CONTROLLER_TEST_NOW", NOW), ("CONTROLLER_TEST_CRASH_AT", "after-intent")]


@pytest.mark.parametrize("hook", HOOKS, ids=[h[0] for h in HOOKS])
@pytest.mark.parametrize("outside", OUTSIDE, ids=[o.__name__ for o in OUTSIDE])
@pytest.mark.parametrize(
    "command",
    [("reconcile", "--once"), ("reconcile", "--once", "--dry-run"), ("diff",), ("status",)],
    ids=["reconcile", "dry-run", "diff", "status"],
)
def test_a_test_hook_outside_a_sandbox_is_a_setup_error(
    world: World,
    hook: tuple[str, str],
    outside: Callable[[World], dict[str, str]],
    command: tuple[str, ...],
) -> None:
    world.write("a.yaml", job("a"))
    env = {**outside(world), hook[0]: hook[1]}

    done = run_cli(world, env, *command)

    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)  # not -9: alive
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {hook[0]} is set outside a sandbox (")
    assert "ecs at https://ecs.us-east-1.amazonaws.com" in line
    assert "not a loopback address" in line
    assert world.sandbox.calls == {}  # stopped before any AWS call
    assert not (world.root / "state.db").exists()


def test_run_refuses_a_test_hook_outside_a_sandbox(world: World) -> None:
    world.write("a.yaml", job("a"))
    env = {**no_endpoint(world), "CONTROLLER_TEST_NOW": NOW}
    done = run_cli(world, env, "run", "--metrics-addr", "127.0.0.1:0")
    assert done.returncode == 2, done.stderr
    assert "CONTROLLER_TEST_NOW is set outside a sandbox" in done.stderr
    assert world.sandbox.calls == {}


def test_the_ledger_endpoint_counts_too(world: World) -> None:
    world.write("a.yaml", job("a"))
    env = {**dynamodb_elsewhere(world), "CONTROLLER_TEST_NOW": NOW}
    done = run_cli(world, env, "status", state="dynamodb://ledger")
    assert done.returncode == 2, done.stderr
    assert "(dynamodb at http://10.0.0.1:8000, not a loopback address)" in done.stderr


def test_both_hooks_outside_a_sandbox_are_named(world: World) -> None:
    env = {**no_endpoint(world), "CONTROLLER_TEST_NOW": NOW, "CONTROLLER_TEST_CRASH_AT": "x"}
    done = run_cli(world, env, "status")
    assert done.returncode == 2
    assert "CONTROLLER_TEST_NOW and CONTROLLER_TEST_CRASH_AT are set outside" in done.stderr


def test_without_hooks_no_endpoint_is_fine(world: World) -> None:
    # Production: no hook, no endpoint. status reads the SQLite ledger, no AWS at all.
    done = run_cli(world, no_endpoint(world), "status")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_an_honoured_clock_hook_says_so_in_one_warning_line(world: World) -> None:
    world.write("a.yaml", job("a"))
    env = {**world.sandbox.subprocess_env(), "CONTROLLER_TEST_NOW": NOW}

    for command in (("reconcile", "--once"), ("status",)):
        done = run_cli(world, env, *command)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [
            f"warning: CONTROLLER_TEST_NOW is set: the clock reads {NOW}"
        ]


def test_an_honoured_crash_hook_says_so_then_crashes(world: World) -> None:
    world.write("a.yaml", job("a"))
    env = {**world.sandbox.subprocess_env(), "CONTROLLER_TEST_CRASH_AT": "after-intent"}
    done = run_cli(world, env, "reconcile", "--once")
    assert done.returncode == -9
    assert done.stderr.splitlines() == [
        "warning: CONTROLLER_TEST_CRASH_AT is set: the process kills itself at step after-intent"
    ]


def test_an_endpoint_from_the_config_file_is_asked_of_the_clients(
    world: World, tmp_path: Path
) -> None:
    world.write("a.yaml", job("a"))
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nendpoint_url = {world.sandbox.endpoint_url}\n")
    env = {**no_endpoint(world), "AWS_CONFIG_FILE": str(config), "CONTROLLER_TEST_NOW": NOW}
    done = run_cli(world, env, "reconcile", "--once")
    assert done.returncode == 0, done.stderr
    assert len(world.all_tasks()) == 1


# -- a lost ledger ---------------------------------------------------------------------


def lose_ledger(world: World) -> None:
    """Delete the SQLite ledger and its WAL files, as a lost volume would."""
    for path in world.root.glob("state.db*"):
        if not path.name.endswith(".lock"):
            path.unlink()


def run_tasks(world: World) -> int:
    return world.sandbox.calls[("ecs", "RunTask")]


@pytest.fixture
def history(world: World) -> World:
    """Three JobRuns that ran and succeeded, a day ago: ECS forgot tasks and tokens since."""
    for name in ("a", "b", "c"):
        world.write(f"{name}.yaml", job(name, duration=30))
    assert world.reconcile().returncode == 0
    world.clock.advance(60)
    assert world.reconcile().returncode == 0
    assert {r["phase"] for r in world.status()["runs"]} == {"Succeeded"}
    world.clock.advance(25 * 3600)  # past the task memory (1 h) and the client tokens (24 h)
    assert world.all_tasks() == []
    return world


def test_an_emptied_ledger_refuses_to_start_anything(history: World) -> None:
    world = history
    lose_ledger(world)
    before = run_tasks(world)

    done = world.reconcile()

    assert done.returncode == 2, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: ledger {world.root / 'state.db'} is empty but owner e2e has 3 task-definition"
        " revisions / 0 tasks in AWS: restore the ledger, or pass --adopt-history to record"
        " every current manifest's run as already done"
    ]
    assert run_tasks(world) == before
    assert world.status()["runs"] == []


def test_tasks_of_the_owner_count_as_history_too(world: World) -> None:
    world.write("a.yaml", job("a", duration=600))
    world.write("b.yaml", job("b", duration=600, family="a"))  # one revision, two tasks
    assert world.reconcile().returncode == 0
    lose_ledger(world)
    done = world.reconcile()
    assert done.returncode == 2
    assert "has 1 task-definition revisions / 2 tasks in AWS" in done.stderr


def test_diff_reports_a_lost_ledger_as_an_error_and_writes_nothing(history: World) -> None:
    world = history
    lose_ledger(world)
    for command in (("diff",), ("reconcile", "--once", "--dry-run")):
        done = world.cli(*command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "is empty but owner e2e has 3 task-definition revisions" in done.stderr
    assert world.status()["runs"] == []


def test_run_refuses_a_lost_ledger_at_start(history: World) -> None:
    world = history
    lose_ledger(world)
    done = world.cli("run", "--metrics-addr", "127.0.0.1:0", "--resync-seconds", "3600")
    assert done.returncode == 2, done.stderr
    assert "is empty but owner e2e has 3 task-definition revisions" in done.stderr
    assert world.all_tasks() == []


def test_adopt_history_records_the_current_runs_as_done(history: World) -> None:
    world = history
    world.write("nightly.yaml", cron_job("nightly"))
    lose_ledger(world)
    before = run_tasks(world)

    adopted = world.cli("reconcile", "--once", "--adopt-history")

    assert adopted.returncode == 0, adopted.stderr
    runs = world.status()["runs"]
    assert {(r["name"], r["phase"], r["reason"]) for r in runs} == {
        (name, "Succeeded", "Adopted") for name in ("a", "b", "c")
    }
    assert all(r["attempts"] == [] for r in runs)
    ledger = SqliteLedger(world.root / "state.db")
    try:
        assert ledger.view().cron_last_scheduled == {"nightly": world.clock.now()}
    finally:
        ledger.close()
    # The next passes plan as usual: nothing past runs again, a new runId does.
    again = world.reconcile()
    assert again.returncode == 0, again.stderr
    assert run_tasks(world) == before
    world.write("a.yaml", job("a", duration=30, run_id="2"))
    assert world.reconcile().returncode == 0
    assert run_tasks(world) == before + 1
    assert [r["phase"] for r in world.status()["runs"] if r["runId"] == "2"] == ["Pending"]


def test_a_new_ledger_without_history_starts_as_usual(world: World) -> None:
    world.write("a.yaml", job("a"))
    done = world.cli("reconcile", "--once", "--adopt-history")  # nothing to adopt: a normal pass
    assert done.returncode == 0, done.stderr
    assert len(world.all_tasks()) == 1
    assert world.run("a")["reason"] != "Adopted"


def cron_job(name: str) -> str:
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  schedule: '* * * * *'\n"
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    launchType: EC2\n"
        "    taskDefinition:\n"
        "      family: a\n"
        "      cpu: '256'\n"
        "      memory: '512'\n"
        "      containerDefinitions:\n"
        "        - {name: app, image: busybox}\n"
    )
