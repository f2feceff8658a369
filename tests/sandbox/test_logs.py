"""Patch g: CloudWatch Logs groups, and the agent's lines in awslogs streams."""

from __future__ import annotations

from typing import Any

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from tests.sandbox.helpers import environment, register


def test_create_log_group(sandbox: Sandbox) -> None:
    sandbox.create_log_group("/ecs/jobs")
    groups = sandbox.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/ecs/jobs"]


def test_awslogs_containers_get_a_start_and_an_exit_line(
    sandbox: Sandbox, ecs: Any, clock: FakeClock
) -> None:
    sandbox.create_log_group("/ecs/jobs")
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1)
    options = {
        "awslogs-group": "/ecs/jobs",
        "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": "job",
    }
    container = {
        "name": "app",
        "image": "x",
        "logConfiguration": {"logDriver": "awslogs", "options": options},
        "environment": environment(SANDBOX_EXIT_CODE=2),
    }
    containers = [container]
    register(ecs, containerDefinitions=containers)
    [task] = ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]
    clock.advance(1)
    ecs.describe_tasks(cluster="batch", tasks=[task["taskArn"]])
    task_id = task["taskArn"].split("/")[-1]
    events = sandbox.client("logs").get_log_events(
        logGroupName="/ecs/jobs", logStreamName=f"job/app/{task_id}", startFromHead=True
    )["events"]
    assert [e["message"] for e in events] == [
        "app started (sandbox)",
        "app exited with code 2 (sandbox)",
    ]
