"""SANDBOX_THROTTLE: token buckets shared by every client, answered as AWS answers throttling."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.throttle import ECS_API_BUCKETS, Throttle, TokenBucket
from tests.sandbox.helpers import no_retries, register


@pytest.fixture
def cluster(sandbox: Sandbox) -> str:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1, cpu=4096, memory=8192)
    register(sandbox.client("ecs", counted=False))
    return "batch"


def test_a_bucket_lets_its_burst_through_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(burst=3, refill=2)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert [bucket.take(0.5) for _ in range(2)] == [True, False]  # 0.5 s x 2/s: one token
    assert [bucket.take(0.75) for _ in range(2)] == [False, False]  # half a token is none
    assert [bucket.take(1.0) for _ in range(2)] == [True, False]
    # Refill stops at the burst however long nobody called.
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_a_bucket_that_never_refills() -> None:
    bucket = TokenBucket(burst=1, refill=0)
    assert [bucket.take(0.0), bucket.take(1e6)] == [True, False]


def test_the_ecs_preset_is_the_published_table() -> None:
    throttle = Throttle.parse("ecs")
    run_task = throttle.bucket("ecs", "RunTask")
    assert run_task is not None
    assert (run_task.burst, run_task.refill) == (100, 40)
    # One bucket per category, shared by its actions.
    assert throttle.bucket("ecs", "StopTask") is run_task
    describe_tasks = throttle.bucket("ecs", "DescribeTasks")
    assert describe_tasks is throttle.bucket("ecs", "ListTasks")
    assert describe_tasks is not None
    assert (describe_tasks.burst, describe_tasks.refill) == (100, 20)
    register_bucket = throttle.bucket("ecs", "RegisterTaskDefinition")
    assert register_bucket is not None
    assert (register_bucket.burst, register_bucket.refill) == (20, 1)
    assert throttle.bucket("autoscaling", "SetDesiredCapacity") is None
    every_action = [action for _, actions, _, _ in ECS_API_BUCKETS for action in actions]
    assert len(every_action) == len(set(every_action))


def test_a_later_entry_replaces_the_bucket_of_the_scopes_it_names() -> None:
    throttle = Throttle.parse("ecs,ecs:RunTask:10:1")
    run_task, stop_task = throttle.bucket("ecs", "RunTask"), throttle.bucket("ecs", "StopTask")
    assert run_task is not None
    assert stop_task is not None
    assert (run_task.burst, run_task.refill) == (10, 1)
    assert (stop_task.burst, stop_task.refill) == (100, 40)


def test_a_plus_list_shares_one_bucket_and_passes_its_service_on() -> None:
    throttle = Throttle.parse("ecs:RunTask+StopTask:5:1,DescribeTasks:3:0.5")
    assert throttle.bucket("ecs", "StopTask") is throttle.bucket("ecs", "RunTask")
    assert throttle.bucket("ecs", "StartTask") is None
    # A bare operation names that operation of any service.
    describe_tasks = throttle.bucket("ecs", "DescribeTasks")
    assert describe_tasks is not None
    assert (describe_tasks.burst, describe_tasks.refill) == (3, 0.5)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("RunTask:100", "is not SCOPE"),
        ("fargate", "is not SCOPE"),
        ("ecs:RunTask:0:1", "BURST must be a whole number >= 1"),
        ("ecs:RunTask:2.5:1", "BURST must be a whole number >= 1"),
        ("ecs:RunTask:100:-1", "REFILL must be tokens per second >= 0"),
        ("ecs:RunTask:100:fast", "REFILL must be tokens per second >= 0"),
        ("ecs:RunTsk:100:20", "no operation 'RunTsk'"),
        ("ecs:RunTask+Nope:100:20", "no operation 'Nope'"),
    ],
)
def test_a_bad_throttle_is_refused_at_once(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Throttle.parse(spec)


def test_the_constructor_reads_the_environment_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_THROTTLE", "ecs:RunTask:100:20")
    assert str(Sandbox(FakeClock()).throttle) == "ecs:RunTask:100:20"
    assert not Sandbox(FakeClock(), throttle="").throttle


def test_past_its_burst_a_call_gets_ecs_throttling_exception(
    sandbox: Sandbox, cluster: str
) -> None:
    sandbox.set_throttle("ecs:RunTask:3:1")
    ecs = no_retries(sandbox, "ecs")
    for _ in range(3):
        assert len(ecs.run_task(cluster=cluster, taskDefinition="job")["tasks"]) == 1
    with pytest.raises(ClientError) as raised:
        ecs.run_task(cluster=cluster, taskDefinition="job")
    error = raised.value.response
    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(ecs.list_tasks(cluster=cluster)["taskArns"]) == 3  # the 4th started nothing
    assert sandbox.calls[("ecs", "RunTask")] == 4
    assert sandbox.throttled == {("ecs", "RunTask"): 1}


def test_the_bucket_refills_as_the_fake_clock_advances(sandbox: Sandbox, clock: FakeClock) -> None:
    sandbox.set_throttle("ecs:ListClusters:2:4")
    ecs = no_retries(sandbox, "ecs")

    def answers(attempts: int) -> list[str]:
        codes: list[str] = []
        for _ in range(attempts):
            try:
                ecs.list_clusters()
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        return codes

    throttled = "ThrottlingException"
    assert answers(3) == ["ok", "ok", throttled]
    assert answers(1) == [throttled]  # no time has passed: no token came back
    clock.advance(0.25)  # 4 per second: one token
    assert answers(2) == ["ok", throttled]
    clock.advance(3600)  # refilled up to the burst, not beyond
    assert answers(3) == ["ok", "ok", throttled]
    assert sandbox.throttled[("ecs", "ListClusters")] == 4


def test_one_bucket_is_shared_by_its_operations_and_by_every_client(sandbox: Sandbox) -> None:
    sandbox.set_throttle("ecs:ListClusters+DescribeClusters:2:0")
    first, second = no_retries(sandbox, "ecs"), no_retries(sandbox, "ecs")
    first.list_clusters()
    second.describe_clusters(clusters=["none"])
    with pytest.raises(ClientError, match="ThrottlingException"):
        first.describe_clusters(clusters=["none"])
    with pytest.raises(ClientError, match="ThrottlingException"):
        second.list_clusters()
    # Another operation, no bucket: never throttled.
    assert no_retries(sandbox, "ecs").list_task_definitions()["taskDefinitionArns"] == []


def test_the_ecs_preset_lets_50_cluster_reads_through_then_throttles(sandbox: Sandbox) -> None:
    sandbox.set_throttle("ecs")
    ecs = no_retries(sandbox, "ecs")
    for _ in range(50):
        ecs.list_clusters()
    with pytest.raises(ClientError, match="ThrottlingException"):
        ecs.describe_clusters(clusters=["none"])


@pytest.mark.parametrize(
    ("service", "spec", "code", "status"),
    [
        ("autoscaling", "autoscaling:DescribeAutoScalingGroups:1:0", "Throttling", 400),
        ("s3", "s3:ListBuckets:1:0", "SlowDown", 503),
    ],
)
def test_other_services_answer_with_their_own_throttling_error(
    sandbox: Sandbox, service: str, spec: str, code: str, status: int
) -> None:
    sandbox.set_throttle(spec)
    client = no_retries(sandbox, service)
    call = client.describe_auto_scaling_groups if service == "autoscaling" else client.list_buckets
    call()
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_throttled_call_leaves_an_injected_fault_pending(sandbox: Sandbox) -> None:
    sandbox.set_throttle("ecs:ListClusters:1:0")
    ecs = no_retries(sandbox, "ecs")
    ecs.list_clusters()
    sandbox.inject_fault("ecs", "ListClusters", "ServerException", status=500)
    with pytest.raises(ClientError, match="ThrottlingException"):
        ecs.list_clusters()
    sandbox.set_throttle("")
    with pytest.raises(ClientError, match="ServerException"):
        ecs.list_clusters()


def test_reset_refills_and_restores_the_constructors_throttle(sandbox: Sandbox) -> None:
    sandbox.set_throttle("ecs:ListClusters:1:0")
    ecs = no_retries(sandbox, "ecs")
    ecs.list_clusters()
    with pytest.raises(ClientError):
        ecs.list_clusters()
    sandbox.reset()
    assert not sandbox.throttle
    assert sandbox.throttled == {}
    for _ in range(3):
        ecs.list_clusters()
