"""Patch e (second half): TerminateInstanceInAutoScalingGroup, its decrement and protection."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from tests.sandbox.helpers import describe, environment, no_retries, register


def make_group(sandbox: Sandbox, clock: FakeClock, *, protect: bool = False) -> str:
    sandbox.create_cluster("batch")
    sandbox.create_auto_scaling_group(
        "batch-asg",
        "batch",
        min_size=1,
        max_size=4,
        desired=3,
        instance_cpu=1024,
        instance_memory=2048,
        registration_delay_seconds=30,
        protect_new_instances=protect,
    )
    clock.advance(30)
    sandbox.tick()
    return "batch-asg"


def members(autoscaling: Any, group: str) -> dict[str, Any]:
    described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return dict(described["AutoScalingGroups"][0])


def test_terminating_with_decrement_shrinks_the_group_and_retires_the_instance(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    autoscaling = sandbox.client("autoscaling")
    ecs = sandbox.client("ecs")
    group = make_group(sandbox, clock)
    victim = members(autoscaling, group)["Instances"][0]["InstanceId"]
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=True
    )
    after = members(autoscaling, group)
    assert after["DesiredCapacity"] == 2
    assert victim not in {i["InstanceId"] for i in after["Instances"]}
    sandbox.tick()
    arns = ecs.list_container_instances(cluster="batch")["containerInstanceArns"]
    registered = ecs.describe_container_instances(cluster="batch", containerInstances=arns)
    assert victim not in {i["ec2InstanceId"] for i in registered["containerInstances"]}
    [retired] = sandbox.retired_instances
    assert (retired.instance_id, retired.group, retired.running_tasks) == (victim, group, 0)


def test_a_terminated_instance_that_still_ran_a_task_is_on_record(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    autoscaling = sandbox.client("autoscaling")
    ecs = sandbox.client("ecs")
    make_group(sandbox, clock)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=3600)}
    ]
    register(ecs, cpu="256", memory="256", containerDefinitions=containers)
    [task] = ecs.run_task(cluster="batch", taskDefinition="job")["tasks"]
    host = ecs.describe_container_instances(
        cluster="batch", containerInstances=[task["containerInstanceArn"]]
    )["containerInstances"][0]["ec2InstanceId"]
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=host, ShouldDecrementDesiredCapacity=True
    )
    sandbox.tick()
    assert [r.running_tasks for r in sandbox.retired_instances] == [1]
    assert describe(ecs, "batch", task["taskArn"])["stopCode"] == "TerminationNotice"


def test_a_decrement_below_min_size_is_a_validation_error(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    autoscaling = sandbox.client("autoscaling")
    group = make_group(sandbox, clock)
    ids = [i["InstanceId"] for i in members(autoscaling, group)["Instances"]]
    for instance_id in ids[:2]:
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
        )
    with pytest.raises(ClientError) as raised:
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=ids[2], ShouldDecrementDesiredCapacity=True
        )
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "min size constraint" in raised.value.response["Error"]["Message"]
    assert members(autoscaling, group)["DesiredCapacity"] == 1
    assert ids[2] in {i["InstanceId"] for i in members(autoscaling, group)["Instances"]}


def test_an_instance_of_no_group_is_a_validation_error(sandbox: Sandbox, clock: FakeClock) -> None:
    make_group(sandbox, clock)
    autoscaling = no_retries(sandbox, "autoscaling")
    with pytest.raises(ClientError) as raised:
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId="i-0123456789abcdef0", ShouldDecrementDesiredCapacity=True
        )
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "No managed instance found" in raised.value.response["Error"]["Message"]


def test_protection_is_reported_but_does_not_stop_this_call(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    # As on AWS: scale-in protection guards the group's own scale-in only,
    # so whoever calls TerminateInstanceInAutoScalingGroup must check it.
    autoscaling = sandbox.client("autoscaling")
    group = make_group(sandbox, clock, protect=True)
    listed = members(autoscaling, group)["Instances"]
    assert all(i["ProtectedFromScaleIn"] for i in listed)
    autoscaling.set_instance_protection(
        InstanceIds=[listed[0]["InstanceId"]],
        AutoScalingGroupName=group,
        ProtectedFromScaleIn=False,
    )
    flags = {
        i["InstanceId"]: i["ProtectedFromScaleIn"] for i in members(autoscaling, group)["Instances"]
    }
    assert flags[listed[0]["InstanceId"]] is False
    assert flags[listed[1]["InstanceId"]] is True
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=listed[1]["InstanceId"], ShouldDecrementDesiredCapacity=True
    )
    assert listed[1]["InstanceId"] not in {
        i["InstanceId"] for i in members(autoscaling, group)["Instances"]
    }
