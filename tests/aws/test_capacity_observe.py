"""The capacity reads and the one write, against the sandbox (DESIGN.md §6, §11).

The sandbox's Auto Scaling groups launch EC2 instances that register with
ECS only after a delay on the fake clock, so "launching" is a real state
here, not a stub; SetDesiredCapacity above MaxSize fails as on AWS. moto
5.2 answers DescribeInstanceTypes (m5.large: 2 vCPUs, 8192 MiB),
DescribeLaunchTemplateVersions and DescribeLaunchConfigurations, so the
size of an empty group's new instances is read the way it is on AWS.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.errors import AwsTerminalError, AwsTransientError
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.model.manifest import RunKey
from controller.observe.capacity import observe_capacity
from controller.plan.capacity import WaitingTask, plan_capacity
from controller.sandbox import Sandbox
from tests.sandbox.helpers import environment, register

CLUSTER = "batch"
GROUP = "batch-asg"


@pytest.fixture
def sandbox(module_sandbox: Sandbox) -> Sandbox:
    """The module's sandbox with no AWS state, faults or counted calls."""
    module_sandbox.reset()
    return module_sandbox


@pytest.fixture
def session(sandbox: Sandbox) -> AwsSession:
    return AwsSession(sandbox.region)


@pytest.fixture
def autoscaling(session: AwsSession) -> AutoScalingGateway:
    return AutoScalingGateway(session)


@pytest.fixture
def ecs_instances(session: AwsSession) -> EcsInstanceGateway:
    return EcsInstanceGateway(session)


def make_group(sandbox: Sandbox, desired: int, *, max_size: int = 5, **options: Any) -> None:
    sandbox.create_cluster(CLUSTER)
    sandbox.create_auto_scaling_group(
        GROUP, CLUSTER, min_size=0, max_size=max_size, desired=desired, **options
    )


def start_long_task(sandbox: Sandbox, cpu: str, memory: str) -> None:
    ecs = sandbox.client("ecs", counted=False)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=3600)}
    ]
    register(ecs, cpu=cpu, memory=memory, containerDefinitions=containers)
    assert len(ecs.run_task(cluster=CLUSTER, taskDefinition="job")["tasks"]) == 1


def calls_of(session: AwsSession) -> Counter[str]:
    return Counter({operation: n for (_, operation), n in session.calls.items()})


# --- observing a group ------------------------------------------------------------


def test_two_registered_instances_and_a_third_launching(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
) -> None:
    make_group(sandbox, desired=2, instance_cpu=2048, instance_memory=4096)
    clock.advance(30)  # both register
    start_long_task(sandbox, "512", "1024")
    autoscaling.set_desired_capacity(GROUP, 3)  # the third launches, registers in 30 s
    session.calls.clear()

    states = observe_capacity(ecs_instances, autoscaling, {GROUP: {CLUSTER}}).groups

    state = states[GROUP]
    assert (state.min_size, state.max_size, state.desired) == (0, 5, 3)
    assert len(state.instances) == 2
    assert state.launching == 1
    assert state.instance_size == (2048, 4096)  # the registered size, not m5.large's nominal
    remaining = sorted((i.remaining_cpu, i.remaining_memory) for i in state.instances)
    assert remaining == [(1536, 3072), (2048, 4096)]
    assert all(i.active and i.connected for i in state.instances)
    # Registered instances give the size: no launch-template or EC2 read.
    assert calls_of(session) == Counter(
        {
            "DescribeAutoScalingGroups": 1,
            "ListContainerInstances": 1,
            "DescribeContainerInstances": 1,
        }
    )

    # Three whole-instance tasks: one fits the idle instance, one the
    # launching one, the third would need another: asked for after the launch.
    waiting = [WaitingTask(RunKey(f"j{i}", "1"), 2048, 4096, GROUP) for i in range(3)]
    decision = plan_capacity(waiting, states)[GROUP]
    assert decision.target is None
    assert decision.reason == "waiting for 1 launching instance"
    assert (len(decision.fits_free), len(decision.fits_launching)) == (1, 1)

    clock.advance(30)
    later = observe_capacity(ecs_instances, autoscaling, {GROUP: {CLUSTER}}).groups[GROUP]
    assert (len(later.instances), later.launching) == (3, 0)


def test_a_draining_instance_is_observed_but_not_usable(
    sandbox: Sandbox,
    clock: FakeClock,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
) -> None:
    make_group(sandbox, desired=2)
    clock.advance(30)
    ecs = sandbox.client("ecs", counted=False)
    first = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"][0]
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[first], status="DRAINING"
    )
    state = observe_capacity(ecs_instances, autoscaling, {GROUP: {CLUSTER}}).groups[GROUP]
    assert sorted(i.active for i in state.instances) == [False, True]
    assert state.launching == 0


def test_instance_size_from_the_launch_template_when_nothing_is_registered(
    sandbox: Sandbox,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
) -> None:
    make_group(sandbox, desired=0, instance_type="m5.large")
    session.calls.clear()
    state = observe_capacity(ecs_instances, autoscaling, {GROUP: {CLUSTER}}).groups[GROUP]
    assert state.instances == ()
    assert state.launching == 0
    # m5.large as EC2 describes it: 2 vCPUs x 1024 units, 8 GiB.
    assert state.instance_size == (2048, 8192)
    assert calls_of(session)["DescribeLaunchTemplateVersions"] == 1
    assert calls_of(session)["DescribeInstanceTypes"] == 1

    waiting = [WaitingTask(RunKey(f"j{i}", "1"), 1024, 2048, GROUP) for i in range(5)]
    decision = plan_capacity(waiting, {GROUP: state})[GROUP]
    assert decision.summary == (
        "SetDesiredCapacity batch-asg 0 -> 3 "
        "(5 tasks waiting: 0 fit on free capacity, 5 need 3 new instances)"
    )


def test_instance_size_from_a_launch_configuration_and_from_a_mixed_policy(
    sandbox: Sandbox, autoscaling: AutoScalingGateway, ecs_instances: EcsInstanceGateway
) -> None:
    sandbox.create_cluster(CLUSTER)
    sandbox.create_auto_scaling_group("templated", CLUSTER, 0, 2, 0, instance_type="m5.large")
    client = sandbox.client("autoscaling", counted=False)
    client.create_launch_configuration(
        LaunchConfigurationName="old-style", ImageId="ami-12c6146b", InstanceType="c5.xlarge"
    )
    client.create_auto_scaling_group(
        AutoScalingGroupName="configured",
        LaunchConfigurationName="old-style",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=[f"{sandbox.region}a"],
    )
    client.create_auto_scaling_group(
        AutoScalingGroupName="mixed",
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateName": "templated",
                    "Version": "$Latest",
                },
                "Overrides": [{"InstanceType": "r5.large"}, {"InstanceType": "m5.xlarge"}],
            }
        },
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=[f"{sandbox.region}a"],
    )
    clusters = {name: {CLUSTER} for name in ("configured", "mixed", "templated", "missing")}
    states = observe_capacity(ecs_instances, autoscaling, clusters).groups
    assert sorted(states) == ["configured", "mixed", "templated"]  # "missing" does not exist
    assert states["configured"].instance_size == (4096, 8192)  # c5.xlarge
    assert states["mixed"].instance_size == (2048, 16384)  # r5.large, the first override
    assert states["templated"].instance_size == (2048, 8192)  # m5.large


def test_observing_and_planning_then_scaling_gives_the_tasks_room(
    sandbox: Sandbox,
    clock: FakeClock,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
) -> None:
    make_group(sandbox, desired=1, instance_cpu=1024, instance_memory=2048)
    clock.advance(30)
    waiting = [WaitingTask(RunKey(f"j{i}", "1"), 512, 1024, GROUP) for i in range(6)]
    decision = plan_capacity(
        waiting, observe_capacity(ecs_instances, autoscaling, {GROUP: {CLUSTER}}).groups
    )[GROUP]
    assert (decision.target, len(decision.fits_free), decision.new_instances) == (3, 2, 2)
    assert decision.target is not None
    autoscaling.set_desired_capacity(GROUP, decision.target)
    clock.advance(30)
    state = observe_capacity(ecs_instances, autoscaling, {GROUP: {CLUSTER}}).groups[GROUP]
    assert (state.desired, len(state.instances), state.launching) == (3, 3, 0)
    again = plan_capacity(waiting, {GROUP: state})[GROUP]
    assert (again.target, len(again.fits_free)) == (None, 6)


# --- the gateways -----------------------------------------------------------------


def test_set_desired_capacity_above_max_size_is_terminal(
    sandbox: Sandbox, autoscaling: AutoScalingGateway
) -> None:
    make_group(sandbox, desired=1, max_size=4)
    with pytest.raises(AwsTerminalError) as raised:
        autoscaling.set_desired_capacity(GROUP, 5)
    assert raised.value.code == "ValidationError"
    assert "above max value 4" in raised.value.aws_message
    assert autoscaling.describe_groups([GROUP])[GROUP].desired == 1


def test_a_scaling_activity_in_progress_is_transient(
    sandbox: Sandbox, autoscaling: AutoScalingGateway
) -> None:
    make_group(sandbox, desired=1)
    sandbox.inject_fault(
        "autoscaling", "SetDesiredCapacity", "ScalingActivityInProgress", message="busy"
    )
    with pytest.raises(AwsTransientError):
        autoscaling.set_desired_capacity(GROUP, 2)
    autoscaling.set_desired_capacity(GROUP, 2)
    assert autoscaling.describe_groups([GROUP])[GROUP].desired == 2


def test_describe_groups_reports_members_and_launch_template(
    sandbox: Sandbox, autoscaling: AutoScalingGateway
) -> None:
    make_group(sandbox, desired=2, instance_type="c5.large")
    described = autoscaling.describe_groups([GROUP, "nope"])
    assert list(described) == [GROUP]
    group = described[GROUP]
    assert group.launch_template is not None
    assert (group.launch_template.name, group.launch_template.version) == (GROUP, "$Latest")
    assert len(group.instances) == 2
    assert all(i.live and i.lifecycle_state == "InService" for i in group.instances)
    assert {i.instance_type for i in group.instances} == {"c5.large"}
    assert autoscaling.describe_groups([]) == {}


def test_unknown_instance_types_are_left_out_and_sizes_cached(
    sandbox: Sandbox, session: AwsSession, autoscaling: AutoScalingGateway
) -> None:
    sizes = autoscaling.instance_sizes(["m5.large", "zz.nope", "c5.large"])
    assert sizes == {"m5.large": (2048, 8192), "c5.large": (2048, 4096)}
    # One call for all three fails on the unknown type; then one each.
    assert calls_of(session)["DescribeInstanceTypes"] == 4
    assert autoscaling.instance_sizes(["c5.large"]) == {"c5.large": (2048, 4096)}
    assert calls_of(session)["DescribeInstanceTypes"] == 4


def test_container_instances_are_described_in_batches_of_100(
    sandbox: Sandbox, session: AwsSession, ecs_instances: EcsInstanceGateway
) -> None:
    sandbox.create_cluster(CLUSTER)
    sandbox.add_container_instances(CLUSTER, 150, cpu=1024, memory=2048)
    arns = ecs_instances.list_container_instances(CLUSTER)
    assert len(arns) == 150
    states = ecs_instances.describe_container_instances(CLUSTER, arns)
    assert len(states) == 150
    assert calls_of(session)["DescribeContainerInstances"] == 2
    assert {(s.registered_cpu, s.registered_memory) for s in states} == {(1024, 2048)}
    assert all(s.usable and s.ec2_instance_id for s in states)
