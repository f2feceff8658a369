"""Retry rules through the real CLI on the sandbox: FailRun stops retries, Ignore does not count.

The sandbox's task script decides how each attempt ends: SANDBOX_EXIT_CODE
and SANDBOX_STOP_CODE take one entry per attempt (`ecs-job-controller/attempt`
tag), an empty stop-code entry meaning the task runs to its exit code.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

RULES = (
    "  backoffLimit: 3\n"
    "  backoff: {initialSeconds: 10, maxSeconds: 60}\n"
    "  retryPolicy:\n"
    "    rules:\n"
    "      - action: Ignore\n"
    "        onStopCodes: [SpotInterruption]\n"
    "      - action: FailRun\n"
    "        onExitCodes: {container: app, operator: In, values: [2]}\n"
)


def test_fail_run_ends_the_run_at_once_where_backoff_limit_would_retry(world: World) -> None:
    world.write("ruled.yaml", job("ruled", exit_code="2", duration=1, extra=RULES))
    plain = "  backoffLimit: 3\n  backoff: {initialSeconds: 10, maxSeconds: 60}\n"
    world.write("plain.yaml", job("plain", exit_code="2", duration=1, extra=plain))
    assert world.reconcile().returncode == 0
    world.clock.advance(2)
    done = world.reconcile()
    assert done.returncode == 0, done.stderr

    ruled = world.run("ruled")
    assert (ruled["phase"], ruled["reason"]) == ("Failed", "FailedByRetryRule")
    assert ruled["message"].startswith(
        "retryPolicy.rules[1] (FailRun) matched container app exit code 2"
    )
    assert [a["exitCodes"] for a in ruled["attempts"]] == [{"app": 2}]
    # Without the rule the same exit is retried: backoffLimit 3 allows it.
    assert (world.run("plain")["phase"], world.run("plain")["reason"]) == ("Pending", "Backoff")

    world.clock.advance(11)  # past the backoff: the plain run retries, the ruled one never
    assert world.reconcile().returncode == 0
    assert len(world.run("ruled")["attempts"]) == 1
    assert len(world.run("plain")["attempts"]) == 2
    assert len(world.all_tasks()) == 3  # RunTask: once for the ruled run, twice for the plain one


def test_ignored_spot_interruptions_use_no_budget_then_fail_run_decides(world: World) -> None:
    """Four interruptions would exhaust the infrastructure budget (3); ignored, they do not."""
    extra = RULES.replace("backoffLimit: 3", "backoffLimit: 0")
    text = job("spot", exit_code="2", duration=1, extra=extra).replace(
        "          - {name: SANDBOX_EXIT_CODE",
        "          - {name: SANDBOX_STOP_CODE, value: '"
        + "SpotInterruption," * 4
        + "'}\n          - {name: SANDBOX_EXIT_CODE",
    )
    world.write("spot.yaml", text)
    for _ in range(10):  # each pass ends the attempt before and starts the next
        done = world.reconcile()
        assert done.returncode == 0, done.stderr
        if world.run("spot")["phase"] == "Failed":
            break
        world.clock.advance(61)  # past the task's 1 s and the longest backoff (60 s)
    run = world.run("spot")
    assert (run["phase"], run["reason"]) == ("Failed", "FailedByRetryRule"), run["message"]
    assert [a["exitCodes"] for a in run["attempts"]] == [{"app": None}] * 4 + [{"app": 2}]
