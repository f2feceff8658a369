"""Scale-in's reads and writes against the sandbox: what is observed, what each call costs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from controller.apply.executor import Executor
from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.errors import AwsTerminalError
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.model.capacity import IdleInstance
from controller.model.identity import TAG_SCALE_IN
from controller.model.run import EventKind
from controller.observe.capacity import ScaleInCandidates, observe_capacity
from controller.plan.actions import DrainInstance, Plan, ReactivateInstance, TerminateInstance
from controller.sandbox import Sandbox
from controller.state.sqlite import SqliteLedger
from tests.sandbox.helpers import environment, register

CLUSTER = "batch"
GROUP = "batch-asg"
OWNER = "team"


@pytest.fixture
def sandbox(module_sandbox: Sandbox) -> Sandbox:
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


def make_group(
    sandbox: Sandbox, clock: FakeClock, desired: int, *, tags: dict[str, str], min_size: int = 1
) -> None:
    sandbox.create_cluster(CLUSTER)
    sandbox.create_auto_scaling_group(
        GROUP,
        CLUSTER,
        min_size=min_size,
        max_size=5,
        desired=desired,
        instance_cpu=2048,
        instance_memory=4096,
        tags=tags,
    )
    clock.advance(30)
    sandbox.tick()


def candidates(enabled: bool = True) -> ScaleInCandidates:
    return ScaleInCandidates(clusters={GROUP: {CLUSTER}}, owner=OWNER, enabled=enabled)


def calls_of(session: AwsSession) -> Counter[str]:
    return Counter({operation: n for (_, operation), n in session.calls.items()})


def test_an_opted_in_group_above_min_size_is_read_with_its_task_counts(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
) -> None:
    make_group(sandbox, clock, 2, tags={TAG_SCALE_IN: OWNER})
    ecs: Any = sandbox.client("ecs", counted=False)
    long = [{"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=900)}]
    register(ecs, cpu="256", memory="256", containerDefinitions=long)
    [task] = ecs.run_task(cluster=CLUSTER, taskDefinition="job")["tasks"]
    asg: Any = sandbox.client("autoscaling", counted=False)
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    protected = members["AutoScalingGroups"][0]["Instances"][1]["InstanceId"]
    asg.set_instance_protection(
        InstanceIds=[protected], AutoScalingGroupName=GROUP, ProtectedFromScaleIn=True
    )
    session.calls.clear()

    state = observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP]

    assert state.tags[TAG_SCALE_IN] == OWNER
    assert state.instances_read
    busy = [i for i in state.instances if i.running_tasks]
    assert [i.arn for i in busy] == [task["containerInstanceArn"]]
    assert {i.cluster for i in state.instances} == {CLUSTER}
    assert [i.instance_id for i in state.instances if i.protected] == [protected]
    assert calls_of(session) == Counter(
        {
            "DescribeAutoScalingGroups": 1,
            "ListContainerInstances": 1,
            "DescribeContainerInstances": 1,
        }
    )


def test_at_min_size_only_the_group_is_described(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
) -> None:
    make_group(sandbox, clock, 1, tags={TAG_SCALE_IN: OWNER})
    session.calls.clear()
    state = observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP]
    assert not state.instances_read
    assert state.instances == ()
    assert calls_of(session) == Counter({"DescribeAutoScalingGroups": 1})


@pytest.mark.parametrize(
    ("tags", "enabled"),
    [({}, True), ({TAG_SCALE_IN: "other"}, True), ({TAG_SCALE_IN: OWNER}, False)],
)
def test_a_group_not_opted_in_for_this_owner_is_left_out(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
    tags: dict[str, str],
    enabled: bool,
) -> None:
    make_group(sandbox, clock, 3, tags=tags)
    session.calls.clear()
    observed = observe_capacity(ecs_instances, autoscaling, {}, candidates(enabled))
    assert observed.groups == {}
    assert calls_of(session) == Counter({"DescribeAutoScalingGroups": 1})


def test_draining_and_back(
    sandbox: Sandbox, clock: FakeClock, ecs_instances: EcsInstanceGateway
) -> None:
    make_group(sandbox, clock, 2, tags={})
    arn = ecs_instances.list_container_instances(CLUSTER)[0]
    assert ecs_instances.set_state(CLUSTER, arn, "DRAINING") == []
    [state] = ecs_instances.describe_container_instances(CLUSTER, [arn])
    assert state.status == "DRAINING"
    assert ecs_instances.set_state(CLUSTER, arn, "ACTIVE") == []
    missing = ecs_instances.set_state(CLUSTER, arn.rsplit("/", 1)[0] + "/gone", "ACTIVE")
    assert [f.reason for f in missing] == ["MISSING"]


def test_terminate_decrements_and_refuses_below_min_size(
    sandbox: Sandbox, clock: FakeClock, autoscaling: AutoScalingGateway
) -> None:
    make_group(sandbox, clock, 2, tags={})
    group = autoscaling.describe_groups([GROUP])[GROUP]
    first, second = (m.instance_id for m in group.instances)
    autoscaling.terminate_instance(first)
    assert autoscaling.describe_groups([GROUP])[GROUP].desired == 1
    with pytest.raises(AwsTerminalError) as refused:
        autoscaling.terminate_instance(second)
    assert refused.value.code == "ValidationError"


# --- the executor's scale-in actions ---------------------------------------------------


def _executor(session: AwsSession, ledger: SqliteLedger, clock: FakeClock) -> Executor:
    return Executor(
        EcsGateway(session),
        ledger,
        OWNER,
        clock,
        autoscaling=AutoScalingGateway(session),
        ecs_instances=EcsInstanceGateway(session),
    )


def test_a_release_drains_then_terminates_with_an_event_each(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
    tmp_path: Path,
) -> None:
    make_group(sandbox, clock, 2, tags={TAG_SCALE_IN: OWNER})
    state = observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP]
    victim = state.instances[0]
    mark = IdleInstance(victim.instance_id, GROUP, CLUSTER, clock.now())
    ledger = SqliteLedger(tmp_path / "state.db")
    executor = _executor(session, ledger, clock)

    drain = DrainInstance(
        GROUP,
        victim.instance_id,
        CLUSTER,
        victim.arn,
        replace(mark, draining_since=clock.now()),
        "idle",
    )
    assert executor.apply(Plan(actions=(drain,))).ok
    assert ledger.view().idle_instances[victim.instance_id].draining_since == clock.now()
    drained = observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP]
    assert [i.instance_id for i in drained.instances if i.draining] == [victim.instance_id]

    terminate = TerminateInstance(GROUP, victim.instance_id, CLUSTER, victim.arn, "still empty")
    result = executor.apply(Plan(actions=(terminate,)))
    assert result.ok
    assert result.scale_ins == Counter({GROUP: 1})
    assert ledger.view().idle_instances == {}
    assert autoscaling.describe_groups([GROUP])[GROUP].desired == 1
    reasons = [e.reason for e in ledger.events()]
    assert reasons == [EventKind.DRAINING, EventKind.SCALE_IN]
    ledger.close()


def test_a_drain_whose_call_fails_keeps_its_decision_for_the_next_pass(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
    tmp_path: Path,
) -> None:
    make_group(sandbox, clock, 2, tags={TAG_SCALE_IN: OWNER})
    victim = (
        observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP].instances[0]
    )
    record = IdleInstance(victim.instance_id, GROUP, CLUSTER, clock.now(), clock.now())
    ledger = SqliteLedger(tmp_path / "state.db")
    sandbox.inject_fault("ecs", "UpdateContainerInstancesState", "AccessDeniedException")
    drain = DrainInstance(GROUP, victim.instance_id, CLUSTER, victim.arn, record, "idle")
    result = _executor(session, ledger, clock).apply(Plan(actions=(drain,)))
    assert not result.ok
    # The decision is on record before the call: the planner sends it again.
    assert ledger.view().idle_instances[victim.instance_id] == record
    ledger.close()


def test_reactivating_sets_active_and_records_why(
    sandbox: Sandbox,
    clock: FakeClock,
    session: AwsSession,
    autoscaling: AutoScalingGateway,
    ecs_instances: EcsInstanceGateway,
    tmp_path: Path,
) -> None:
    make_group(sandbox, clock, 2, tags={TAG_SCALE_IN: OWNER})
    victim = (
        observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP].instances[0]
    )
    ecs_instances.set_state(CLUSTER, victim.arn, "DRAINING")
    ledger = SqliteLedger(tmp_path / "state.db")
    ledger.put_idle_instance(IdleInstance(victim.instance_id, GROUP, CLUSTER, clock.now()))
    why = "1 running task(s) placed on it while it drained"
    back = ReactivateInstance(GROUP, victim.instance_id, CLUSTER, victim.arn, why)
    assert _executor(session, ledger, clock).apply(Plan(actions=(back,))).ok
    state = observe_capacity(ecs_instances, autoscaling, {}, candidates()).groups[GROUP]
    assert all(i.active for i in state.instances)
    assert ledger.view().idle_instances == {}
    [event] = ledger.events()
    assert (event.reason, why in event.message) == (EventKind.REACTIVATED, True)
    ledger.close()
