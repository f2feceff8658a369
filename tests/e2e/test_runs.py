"""Runs through the real CLI on the sandbox: lifecycle, retries, deadlines, crashes, memory.

Each test drives `python -m controller` as a subprocess against moto's
server, exactly as an operator (or the acceptance suite) would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


def test_a_run_goes_pending_running_succeeded(world: World) -> None:
    world.write("a.yaml", job("nightly", duration=30))
    first = world.reconcile()
    assert first.returncode == 0, first.stderr
    run = world.run("nightly")
    assert run["phase"] == "Pending"
    assert run["kind"] == "JobRun"
    assert run["runId"] == "1"
    assert run["taskDefinitionArn"].endswith(":task-definition/nightly:1")
    assert len(run["attempts"]) == 1
    assert len(run["attempts"][0]["taskArns"]) == 1

    world.clock.advance(5)
    assert world.reconcile().returncode == 0
    assert world.run("nightly")["phase"] == "Running"

    world.clock.advance(30)
    assert world.reconcile().returncode == 0
    run = world.run("nightly")
    assert (run["phase"], run["reason"]) == ("Succeeded", "Completed")
    attempt = run["attempts"][0]
    assert attempt["exitCodes"] == {"app": 0}
    assert attempt["startedAt"].endswith("Z")
    assert attempt["stoppedAt"].endswith("Z")
    assert len(world.all_tasks()) == 1


def test_exit_3_with_backoff_limit_1_fails_after_two_attempts(world: World) -> None:
    extra = "  backoffLimit: 1\n  backoff: {initialSeconds: 10, maxSeconds: 60}\n"
    world.write("a.yaml", job("flaky", exit_code="3", duration=1, extra=extra))
    world.reconcile()
    world.clock.advance(2)
    world.reconcile()
    run = world.run("flaky")
    assert (run["phase"], run["reason"]) == ("Pending", "Backoff")
    assert run["attempts"][0]["exitCodes"] == {"app": 3}

    world.clock.advance(5)  # still inside the 10 s backoff: no second attempt yet
    world.reconcile()
    assert len(world.run("flaky")["attempts"]) == 1

    world.clock.advance(10)
    world.reconcile()
    assert len(world.run("flaky")["attempts"]) == 2
    world.clock.advance(2)
    world.reconcile()
    run = world.run("flaky")
    assert (run["phase"], run["reason"]) == ("Failed", "BackoffLimitExceeded")
    assert [a["exitCodes"] for a in run["attempts"]] == [{"app": 3}, {"app": 3}]
    assert "exit code 3" in run["message"]
    assert len(world.all_tasks()) == 2


def test_deadline_stops_the_task_and_fails_the_run(world: World) -> None:
    world.write("a.yaml", job("slow", duration=600, extra="  activeDeadlineSeconds: 30\n"))
    world.reconcile()
    world.clock.advance(31)
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    run = world.run("slow")
    assert (run["phase"], run["reason"]) == ("Failed", "DeadlineExceeded")
    ecs = world.sandbox.client("ecs")
    [arn] = world.all_tasks()
    task = ecs.describe_tasks(cluster="batch", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"
    assert "ecs-job-controller" in task["stoppedReason"]
    assert world.tasks("RUNNING") == []


@pytest.mark.parametrize(
    "step", ["after-register", "after-intent", "after-run-task", "after-record"]
)
def test_a_crash_at_any_step_never_yields_two_tasks_for_one_attempt(
    world: World, step: str
) -> None:
    world.write("a.yaml", job("once", duration=300))
    crashed = world.reconcile(CONTROLLER_TEST_CRASH_AT=step)
    assert crashed.returncode == -9, (step, crashed.stderr)
    for _ in range(3):
        again = world.reconcile()
        assert again.returncode == 0, again.stderr
        world.clock.advance(1)
    assert len(world.all_tasks()) == 1
    run = world.run("once")
    assert len(run["attempts"]) == 1
    assert run["attempts"][0]["taskArns"] == world.all_tasks()
    assert run["phase"] == "Running"


def test_status_still_tells_the_outcome_after_ecs_forgot_the_task(world: World) -> None:
    world.write("a.yaml", job("report", duration=10))
    world.reconcile()
    world.clock.advance(11)
    world.reconcile()
    world.clock.advance(2 * 3600)  # ECS forgets stopped tasks after about an hour
    assert world.all_tasks() == []
    again = world.reconcile()
    assert again.returncode == 0, again.stderr
    run = world.run("report")
    assert (run["phase"], run["reason"]) == ("Succeeded", "Completed")
    assert run["attempts"][0]["exitCodes"] == {"app": 0}


def test_diff_exit_codes_follow_pending_changes(world: World) -> None:
    world.write("a.yaml", job("d", duration=5))
    pending = world.cli("diff", "-o", "json")
    assert pending.returncode == 1, pending.stderr
    actions = json.loads(pending.stdout)["actions"]
    assert [a["action"] for a in actions] == ["RegisterTaskDefinition", "StartAttempt"]
    assert world.all_tasks() == []  # diff wrote nothing
    world.reconcile()
    world.clock.advance(6)
    world.reconcile()
    assert world.cli("diff").returncode == 0


def test_an_invalid_manifest_is_reported_and_the_rest_still_runs(world: World) -> None:
    world.write("good.yaml", job("good"))
    world.write("bad.yaml", job("bad", extra="  backofLimit: 2\n"))
    done = world.reconcile()
    assert done.returncode == 1
    assert "bad.yaml:8: /spec/backofLimit" in done.stderr
    assert [r["name"] for r in world.status()["runs"]] == ["good"]


def test_validate_and_schema_through_the_cli(world: World) -> None:
    world.write("good.yaml", job("good"))
    assert world.cli("validate").returncode == 0
    world.write(
        "bad.yaml", "apiVersion: ecs-job-controller/v1\nkind: JobRun\nmetadata: {name: x}\n"
    )
    invalid = world.cli("validate")
    assert invalid.returncode == 1
    assert f"{world.manifests / 'bad.yaml'}:1: " in invalid.stderr
    assert world.cli("validate", "/does/not/exist").returncode == 2
    schema = world.cli("schema", "jobrun")
    assert schema.returncode == 0
    assert json.loads(schema.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_concurrent_registrations_are_retried_after_re_reading(world: World) -> None:
    world.write("a.yaml", job("busy"))
    world.sandbox.inject_fault(
        service="ecs",
        operation="RegisterTaskDefinition",
        code="ClientException",
        message="Too many concurrent attempts to create a new revision of the specified family.",
        times=2,
    )
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    assert world.sandbox.calls[("ecs", "RegisterTaskDefinition")] == 3
    ecs = world.sandbox.client("ecs", counted=False)
    assert len(ecs.list_task_definitions(familyPrefix="busy")["taskDefinitionArns"]) == 1
    assert len(world.all_tasks()) == 1


def test_throttled_run_task_is_retried_by_botocore(world: World) -> None:
    world.write("a.yaml", job("throttled"))
    world.sandbox.inject_fault(service="ecs", operation="RunTask", code="ThrottlingException")
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    assert len(world.all_tasks()) == 1
    assert world.run("throttled")["phase"] == "Pending"


def test_no_region_is_a_setup_error(world: World) -> None:
    world.write("a.yaml", job("a"))
    env = world.sandbox.subprocess_env()
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "controller", "--source", str(world.manifests), "--state",
         world.state, "reconcile", "--once"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no AWS region" in done.stderr
