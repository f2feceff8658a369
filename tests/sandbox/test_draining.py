"""Patch f: DRAINING container instances (UpdateContainerInstancesState)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from tests.sandbox.helpers import environment, register

LONG = [{"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=3600)}]


@pytest.fixture
def arns(sandbox: Sandbox) -> list[str]:
    sandbox.create_cluster("batch")
    return sandbox.add_container_instances("batch", 2, cpu=1024, memory=2048)


def status_of(ecs: Any, arns: list[str]) -> dict[str, str]:
    described = ecs.describe_container_instances(cluster="batch", containerInstances=arns)
    return {i["containerInstanceArn"]: i["status"] for i in described["containerInstances"]}


def test_draining_and_back_to_active(ecs: Any, arns: list[str]) -> None:
    answer = ecs.update_container_instances_state(
        cluster="batch", containerInstances=arns[:1], status="DRAINING"
    )
    assert [i["status"] for i in answer["containerInstances"]] == ["DRAINING"]
    assert status_of(ecs, arns) == {arns[0]: "DRAINING", arns[1]: "ACTIVE"}
    ecs.update_container_instances_state(
        cluster="batch", containerInstances=arns[:1], status="ACTIVE"
    )
    assert status_of(ecs, arns) == {arns[0]: "ACTIVE", arns[1]: "ACTIVE"}


def test_an_unknown_instance_is_a_missing_failure(ecs: Any, arns: list[str]) -> None:
    answer = ecs.update_container_instances_state(
        cluster="batch", containerInstances=["0123-unknown"], status="DRAINING"
    )
    assert [f["reason"] for f in answer["failures"]] == ["MISSING"]


def test_only_active_and_draining_are_accepted(ecs: Any, arns: list[str]) -> None:
    with pytest.raises(ClientError) as raised:
        ecs.update_container_instances_state(
            cluster="batch", containerInstances=arns[:1], status="INACTIVE"
        )
    assert raised.value.response["Error"]["Code"] in (
        "InvalidParameterException",
        "ValidationException",
    )


def test_no_task_is_placed_on_a_draining_instance(ecs: Any, arns: list[str]) -> None:
    register(ecs, cpu="256", memory="256", containerDefinitions=LONG)
    ecs.update_container_instances_state(
        cluster="batch", containerInstances=arns[:1], status="DRAINING"
    )
    placed = ecs.run_task(cluster="batch", taskDefinition="job", count=4, launchType="EC2")
    assert {t["containerInstanceArn"] for t in placed["tasks"]} == {arns[1]}
    ecs.update_container_instances_state(
        cluster="batch", containerInstances=arns[1:], status="DRAINING"
    )
    with pytest.raises(ClientError) as raised:
        ecs.run_task(cluster="batch", taskDefinition="job", launchType="EC2")
    assert "No Container Instances were found" in raised.value.response["Error"]["Message"]


def test_tasks_already_there_keep_running_while_it_drains(
    ecs: Any, arns: list[str], clock: FakeClock
) -> None:
    register(ecs, cpu="1024", memory="256", containerDefinitions=LONG)
    [task] = ecs.run_task(cluster="batch", taskDefinition="job", launchType="EC2")["tasks"]
    host = task["containerInstanceArn"]
    ecs.update_container_instances_state(
        cluster="batch", containerInstances=[host], status="DRAINING"
    )
    clock.advance(60)
    described = ecs.describe_tasks(cluster="batch", tasks=[task["taskArn"]])["tasks"][0]
    assert described["lastStatus"] == "RUNNING"
    instance = ecs.describe_container_instances(cluster="batch", containerInstances=[host])
    assert instance["containerInstances"][0]["runningTasksCount"] == 1


def test_a_status_change_is_an_ecs_event(sandbox: Sandbox, ecs: Any, arns: list[str]) -> None:
    url = sandbox.create_events_queue("changes")
    sqs = sandbox.client("sqs")
    sqs.purge_queue(QueueUrl=url)
    ecs.update_container_instances_state(
        cluster="batch", containerInstances=arns[:1], status="DRAINING"
    )
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    details = [json.loads(m["Body"])["detail"] for m in messages]
    assert {(d["containerInstanceArn"], d["status"]) for d in details} == {(arns[0], "DRAINING")}
