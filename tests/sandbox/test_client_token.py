"""Patch c: RunTask clientToken idempotency (24 hours per cluster, sandbox clock)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from tests.sandbox.helpers import environment, register

TOKEN = "a" * 64


@pytest.fixture
def cluster(sandbox: Sandbox, ecs: Any) -> str:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1, cpu=4096, memory=8192)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=600)}
    ]
    register(ecs, containerDefinitions=containers)
    return "batch"


def all_tasks(ecs: Any, cluster: str) -> list[str]:
    running = ecs.list_tasks(cluster=cluster)["taskArns"]
    stopped = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    return list(running) + list(stopped)


def test_the_same_token_twice_starts_one_task(ecs: Any, cluster: str) -> None:
    first = ecs.run_task(
        cluster=cluster, taskDefinition="job", startedBy="ejc/a", clientToken=TOKEN
    )
    again = ecs.run_task(
        cluster=cluster, taskDefinition="job", startedBy="ejc/a", clientToken=TOKEN
    )
    assert [t["taskArn"] for t in again["tasks"]] == [t["taskArn"] for t in first["tasks"]]
    assert all_tasks(ecs, cluster) == [first["tasks"][0]["taskArn"]]


def test_a_repeat_after_the_task_stopped_returns_it_as_it_is_now(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    first = ecs.run_task(cluster=cluster, taskDefinition="job", clientToken=TOKEN)
    clock.advance(601)
    again = ecs.run_task(cluster=cluster, taskDefinition="job", clientToken=TOKEN)
    assert again["tasks"][0]["taskArn"] == first["tasks"][0]["taskArn"]
    assert again["tasks"][0]["lastStatus"] == "STOPPED"
    assert len(all_tasks(ecs, cluster)) == 1


def test_the_same_token_with_other_parameters_is_a_conflict(ecs: Any, cluster: str) -> None:
    first = ecs.run_task(
        cluster=cluster, taskDefinition="job", startedBy="ejc/a", clientToken=TOKEN
    )
    with pytest.raises(ClientError) as raised:
        ecs.run_task(cluster=cluster, taskDefinition="job", startedBy="ejc/b", clientToken=TOKEN)
    assert raised.value.response["Error"]["Code"] == "ConflictException"
    assert raised.value.response["resourceIds"] == [first["tasks"][0]["taskArn"]]
    assert len(all_tasks(ecs, cluster)) == 1


def test_tokens_are_per_cluster(sandbox: Sandbox, ecs: Any, cluster: str) -> None:
    sandbox.create_cluster("other")
    sandbox.add_container_instances("other", 1)
    one = ecs.run_task(cluster=cluster, taskDefinition="job", clientToken=TOKEN)
    two = ecs.run_task(cluster="other", taskDefinition="job", clientToken=TOKEN)
    assert one["tasks"][0]["taskArn"] != two["tasks"][0]["taskArn"]


def test_a_token_expires_after_24_hours(ecs: Any, cluster: str, clock: FakeClock) -> None:
    first = ecs.run_task(cluster=cluster, taskDefinition="job", clientToken=TOKEN)["tasks"][0]
    clock.advance(24 * 3600 - 1)
    still = ecs.run_task(cluster=cluster, taskDefinition="job", clientToken=TOKEN)["tasks"][0]
    assert still["taskArn"] == first["taskArn"]
    clock.advance(1)
    later = ecs.run_task(cluster=cluster, taskDefinition="job", clientToken=TOKEN)["tasks"][0]
    assert later["taskArn"] != first["taskArn"]


def test_a_token_whose_call_placed_nothing_can_place_later(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("tiny")
    [instance] = sandbox.add_container_instances("tiny", 1, cpu=128, memory=8192)
    register(ecs, cpu="256", memory="512")
    full = ecs.run_task(cluster="tiny", taskDefinition="job", clientToken=TOKEN)
    assert full["failures"] == [{"arn": instance, "reason": "RESOURCE:CPU"}]
    sandbox.add_container_instances("tiny", 1, cpu=1024, memory=8192)
    placed = ecs.run_task(cluster="tiny", taskDefinition="job", clientToken=TOKEN)
    assert len(placed["tasks"]) == 1
    again = ecs.run_task(cluster="tiny", taskDefinition="job", clientToken=TOKEN)
    assert again["tasks"][0]["taskArn"] == placed["tasks"][0]["taskArn"]
