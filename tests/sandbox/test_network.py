"""Sandbox networks: placeholder subnet and security-group IDs made real for awsvpc tasks."""

from __future__ import annotations

from typing import Any

from controller.sandbox import Sandbox
from tests.sandbox.helpers import register


def test_a_fargate_task_runs_in_a_subnet_with_the_given_id(sandbox: Sandbox) -> None:
    sandbox.create_cluster("batch")
    sandbox.create_network("subnet-0a1b2c3d", "sg-0a1b2c3d")
    ec2: Any = sandbox.client("ec2", counted=False)
    [subnet] = ec2.describe_subnets(SubnetIds=["subnet-0a1b2c3d"])["Subnets"]
    assert subnet["SubnetId"] == "subnet-0a1b2c3d"
    ecs: Any = sandbox.client("ecs")
    register(
        ecs,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    answer = ecs.run_task(
        cluster="batch",
        taskDefinition="job",
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d"],
                "securityGroups": ["sg-0a1b2c3d"],
            }
        },
    )
    assert answer["failures"] == []
    [task] = answer["tasks"]
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["subnetId"] == "subnet-0a1b2c3d"
