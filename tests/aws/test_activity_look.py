"""The cheap look between passes, against the sandbox: what it notices, and what it costs.

The ledger side is built by the planner's own builders; the ECS side is real
sandbox tasks started with this owner's startedBy, moved by the sandbox's
agent on the fake clock. Costs are counted calls, never timings.
"""

from __future__ import annotations

from collections import Counter

import pytest

from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.model.identity import started_by
from controller.model.run import LedgerView, RunRecord, TaskRecord
from controller.observe.activity import TaskStage, Watch, look, stage_of, watch_of
from controller.sandbox import Sandbox
from tests.plan.builders import OWNER, desired_run, ledger, placed, start
from tests.sandbox.helpers import environment, register

CLUSTER = "batch"


@pytest.fixture
def sandbox(module_sandbox: Sandbox) -> Sandbox:
    module_sandbox.reset()
    module_sandbox.create_cluster(CLUSTER)
    module_sandbox.add_container_instances(CLUSTER, 20, cpu=2048, memory=4096)
    return module_sandbox


@pytest.fixture
def session(sandbox: Sandbox) -> AwsSession:
    return AwsSession(sandbox.region)


def start_tasks(sandbox: Sandbox, count: int, seconds: int = 60) -> list[str]:
    """`count` sandbox tasks of this owner that run `seconds`; their ARNs."""
    ecs = sandbox.client("ecs", counted=False)
    containers = [
        {"name": "app", "image": "x", "environment": environment(SANDBOX_DURATION_SECONDS=seconds)}
    ]
    register(ecs, cpu="128", memory="128", containerDefinitions=containers)
    arns: list[str] = []
    while len(arns) < count:
        answer = ecs.run_task(
            cluster=CLUSTER,
            taskDefinition="job",
            count=min(10, count - len(arns)),
            startedBy=started_by(OWNER),
        )
        arns.extend(t["taskArn"] for t in answer["tasks"])
    return arns


def ledger_of(arns: list[str], status: str = "PENDING", prefix: str = "job") -> LedgerView:
    """A ledger with one placed run per task ARN, each task last seen as `status`."""
    records: list[RunRecord] = []
    for index, arn in enumerate(arns):
        desired = desired_run(f"{prefix}-{index}")
        records.append(placed(start(desired), TaskRecord(arn=arn, last_status=status)))
    return ledger(*records)


def looked(session: AwsSession, watch: Watch, sandbox: Sandbox) -> tuple[str | None, Counter[str]]:
    before = session.call_counts()
    change = look(EcsGateway(session), EcsInstanceGateway(session), watch, OWNER)
    calls = Counter({op: n for (_, op), n in (session.call_counts() - before).items()})
    return change, calls


def test_stages_group_the_ecs_statuses_that_change_nothing_for_a_run() -> None:
    assert {stage_of(s) for s in ("PROVISIONING", "PENDING", "ACTIVATING")} == {TaskStage.WAITING}
    assert {stage_of(s) for s in ("RUNNING", "DEACTIVATING", "STOPPING")} == {TaskStage.RUNNING}
    assert stage_of("STOPPED") is TaskStage.STOPPED


def test_a_look_sees_a_task_start_then_stop_and_nothing_in_between(
    sandbox: Sandbox, clock: FakeClock, session: AwsSession
) -> None:
    arns = start_tasks(sandbox, 1, seconds=60)
    pending = watch_of(ledger_of(arns, "PENDING"))
    sandbox.tick()  # the agent starts it
    change, calls = looked(session, pending, sandbox)
    assert change is not None
    assert change.endswith("RUNNING")
    assert calls == {"DescribeTasks": 1}

    running = watch_of(ledger_of(arns, "RUNNING"))
    assert looked(session, running, sandbox)[0] is None
    clock.advance(61)
    sandbox.tick()
    change, _ = looked(session, running, sandbox)
    assert change is not None
    assert change.endswith("STOPPED")


def test_a_task_ecs_forgot_is_a_change(sandbox: Sandbox, session: AwsSession) -> None:
    watch = watch_of(ledger_of([f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/gone"]))
    change, _ = looked(session, watch, sandbox)
    assert change == "task gone vanished"


def test_the_cost_is_one_describe_per_100_active_tasks_and_nothing_for_finished_ones(
    sandbox: Sandbox, clock: FakeClock, session: AwsSession
) -> None:
    arns = start_tasks(sandbox, 250, seconds=3600)
    sandbox.tick()
    view = ledger_of(arns, "RUNNING")
    finished = start_tasks(sandbox, 30, seconds=1)
    clock.advance(2)
    sandbox.tick()
    done = ledger_of(finished, "STOPPED", prefix="done")  # recorded as stopped: not looked at
    watch = watch_of(LedgerView(runs={**view.runs, **done.runs}))
    assert watch.active_tasks == 250
    change, calls = looked(session, watch, sandbox)
    assert change is None
    assert calls == {"DescribeTasks": 3}


def test_nothing_in_flight_is_an_empty_watch() -> None:
    assert watch_of(LedgerView()).empty


def test_new_container_instances_are_noticed_where_runs_wait_for_room(
    sandbox: Sandbox, session: AwsSession
) -> None:
    watch = Watch(instances={CLUSTER: 20})
    change, calls = looked(session, watch, sandbox)
    assert (change, calls) == (None, {"ListContainerInstances": 1})
    sandbox.add_container_instances(CLUSTER, 2)
    change, _ = looked(session, watch, sandbox)
    assert change == f"container instances in {CLUSTER}: 20 -> 22"


def test_a_task_appearing_for_an_unanswered_intent_is_a_change(
    sandbox: Sandbox, session: AwsSession
) -> None:
    record = start(desired_run("job-x"))  # intent recorded, no answer
    watch = watch_of(ledger(record))
    assert dict(watch.intents) == {CLUSTER: frozenset()}
    assert looked(session, watch, sandbox)[0] is None
    arn = start_tasks(sandbox, 1)[0]
    change, _ = looked(session, watch, sandbox)
    assert change == f"task {arn.rsplit('/', 1)[-1]} appeared in {CLUSTER}"
