"""Safe by default: test hooks only count in a sandbox, and a lost ledger never restarts history.

Through the real CLI against the sandbox. "Outside a sandbox" is made the
way it happens in production: no endpoint configured (boto3 goes to AWS),
or one service's endpoint pointing away from the loopback address. The
commands must stop before any AWS call, so nothing ever leaves the machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

NOW = "2026-11-28T03:30:00+00:00"


def run_cli(
    world: World, env: dict[str, str], *args: str, state: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI with exactly `env` (no CONTROLLER_TEST_NOW unless it is in there)."""
    argv = [
        sys.executable,
        "-m",
        "controller",
        "--source",
        str(world.manifests),
        "--state",
        state or world.state,
        "--owner",
        world.owner,
        *args,
    ]
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
