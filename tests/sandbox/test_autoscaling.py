"""Patch e: Auto Scaling groups whose instances join ECS, and SetDesiredCapacity bounds."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from tests.sandbox.helpers import describe, environment, register


@pytest.fixture
def autoscaling(sandbox: Sandbox) -> Any:
    return sandbox.client("autoscaling")


@pytest.fixture
def group(sandbox: Sandbox) -> str:
    sandbox.create_cluster("batch")
    sandbox.create_auto_scaling_group(
        "batch-asg",
        "batch",
        min_size=0,
        max_size=4,
        desired=1,
        instance_cpu=1024,
        instance_memory=2048,
        instance_type="c5.large",
        registration_delay_seconds=30,
    )
    return "batch-asg"


def instances(ecs: Any, cluster: str = "batch") -> list[str]:
    return list(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"])


def test_group_instances_register_after_the_delay_not_before(
    ecs: Any, group: str, clock: FakeClock
) -> None:
    clock.advance(29)
    assert instances(ecs) == []
    clock.advance(1)
    [arn] = instances(ecs)
    instance = ecs.describe_container_instances(cluster="batch", containerInstances=[arn])[
        "containerInstances"
    ][0]
    registered = {
        r["name"]: r["integerValue"]
        for r in instance["registeredResources"]
        if r["name"] in ("CPU", "MEMORY")
    }
    assert registered == {"CPU": 1024, "MEMORY": 2048}
    assert instance["registeredAt"] == clock.now()
    assert {"name": "ecs.instance-type", "value": "c5.large"} in instance["attributes"]


def test_scaling_out_registers_the_new_instances_after_the_delay(
    ecs: Any, autoscaling: Any, group: str, clock: FakeClock
) -> None:
    clock.advance(60)
    assert len(instances(ecs)) == 1
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3)
    clock.advance(29)
    assert len(instances(ecs)) == 1
    clock.advance(1)
    assert len(instances(ecs)) == 3
    described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    ec2_ids = {i["InstanceId"] for i in described["AutoScalingGroups"][0]["Instances"]}
    registered = ecs.describe_container_instances(
        cluster="batch", containerInstances=instances(ecs)
    )
    assert {i["ec2InstanceId"] for i in registered["containerInstances"]} == ec2_ids


def test_new_capacity_takes_the_tasks_that_did_not_fit(
    ecs: Any, autoscaling: Any, group: str, clock: FakeClock
) -> None:
    clock.advance(30)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=3600)}
    ]
    register(ecs, cpu="1024", memory="1024", containerDefinitions=containers)
    assert len(ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]) == 1
    assert (
        ecs.run_task(cluster="batch", taskDefinition="job")["failures"][0]["reason"]
        == "RESOURCE:CPU"
    )
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=2)
    clock.advance(30)
    assert len(ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]) == 1


@pytest.mark.parametrize(
    ("desired", "message"),
    [
        (5, "New SetDesiredCapacity value 5 is above max value 4 for the AutoScalingGroup."),
        (-1, "New SetDesiredCapacity value -1 is below min value 0 for the AutoScalingGroup."),
    ],
)
def test_desired_capacity_outside_the_bounds_is_a_validation_error(
    autoscaling: Any, group: str, desired: int, message: str
) -> None:
    with pytest.raises(ClientError) as raised:
        autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == message
    described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    assert described["AutoScalingGroups"][0]["DesiredCapacity"] == 1


def test_an_unknown_group_is_a_validation_error(sandbox: Sandbox, autoscaling: Any) -> None:
    with pytest.raises(ClientError) as raised:
        autoscaling.set_desired_capacity(AutoScalingGroupName="nope", DesiredCapacity=1)
    assert raised.value.response["Error"]["Code"] == "ValidationError"


def test_scaling_in_retires_instances_and_stops_their_tasks(
    ecs: Any, autoscaling: Any, group: str, clock: FakeClock
) -> None:
    clock.advance(30)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=3600)}
    ]
    register(ecs, cpu="256", memory="256", containerDefinitions=containers)
    [task] = ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0)
    assert instances(ecs) == []
    stopped = describe(ecs, "batch", task["taskArn"])
    assert (stopped["lastStatus"], stopped["stopCode"]) == ("STOPPED", "TerminationNotice")


def test_instances_added_to_a_group_are_attached_and_registered_at_once(
    sandbox: Sandbox, ecs: Any, autoscaling: Any, group: str
) -> None:
    arns = sandbox.add_container_instances("batch", 2, cpu=512, memory=512, asg_name=group)
    assert sorted(instances(ecs)) == sorted(arns)
    described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    assert described["AutoScalingGroups"][0]["DesiredCapacity"] == 3
    assert len(described["AutoScalingGroups"][0]["Instances"]) == 3
