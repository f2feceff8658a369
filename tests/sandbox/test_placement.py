"""Patch b: RunTask placement failures as real ECS reports them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.sandbox import Sandbox
from tests.sandbox.helpers import register


def test_a_cluster_without_instances_is_an_invalid_parameter(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("empty")
    register(ecs)
    with pytest.raises(ClientError) as raised:
        ecs.run_task(cluster="empty", taskDefinition="job", launchType="EC2")
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == "No Container Instances were found in your cluster."
    # A client error, answered once: not a 500 that botocore retried.
    assert sandbox.calls[("ecs", "RunTask")] == 1


def test_draining_instances_do_not_count(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("batch")
    arns = sandbox.add_container_instances("batch", 1)
    ecs.update_container_instances_state(
        cluster="batch", containerInstances=arns, status="DRAINING"
    )
    register(ecs)
    with pytest.raises(ClientError, match="No Container Instances"):
        ecs.run_task(cluster="batch", taskDefinition="job")


def test_partial_placement_returns_the_placed_tasks_and_a_failure_per_instance(
    sandbox: Sandbox, ecs: Any
) -> None:
    sandbox.create_cluster("batch")
    first = sandbox.add_container_instances("batch", 1, cpu=512, memory=4096)
    second = sandbox.add_container_instances("batch", 1, cpu=256, memory=4096)
    register(ecs, cpu="256", memory="512")
    response = ecs.run_task(cluster="batch", taskDefinition="job", count=5)
    assert len(response["tasks"]) == 3
    assert sorted(response["failures"], key=lambda f: f["arn"]) == sorted(
        [{"arn": arn, "reason": "RESOURCE:CPU"} for arn in first + second], key=lambda f: f["arn"]
    )
    instances = {task["containerInstanceArn"] for task in response["tasks"]}
    assert instances == {first[0], second[0]}


def test_fargate_needs_no_container_instances(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("serverless")
    subnet = sandbox.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    register(ecs, requiresCompatibilities=["FARGATE"], networkMode="awsvpc")
    response = ecs.run_task(
        cluster="serverless",
        taskDefinition="job",
        launchType="FARGATE",
        count=3,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}},
    )
    assert len(response["tasks"]) == 3
    assert response["failures"] == []
    assert {task["launchType"] for task in response["tasks"]} == {"FARGATE"}


def test_no_launch_type_means_ec2(sandbox: Sandbox, ecs: Any) -> None:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1)
    register(ecs)
    [task] = ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]
    assert task["launchType"] == "EC2"
