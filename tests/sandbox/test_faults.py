"""Patch f: injected AWS errors, as botocore sees real ones."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_autoscaling import AutoScalingClient

from controller.sandbox import Sandbox
from tests.sandbox.helpers import no_retries, register


@pytest.fixture
def cluster(sandbox: Sandbox) -> str:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1)
    register(sandbox.client("ecs"))
    return "batch"


def test_one_injected_throttle_fails_one_call(sandbox: Sandbox, cluster: str) -> None:
    ecs = no_retries(sandbox, "ecs")
    sandbox.inject_fault("ecs", "RunTask", "ThrottlingException")
    with pytest.raises(ClientError) as raised:
        ecs.run_task(cluster=cluster, taskDefinition="job")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []  # nothing was started
    assert len(ecs.run_task(cluster=cluster, taskDefinition="job")["tasks"]) == 1
    assert sandbox.calls[("ecs", "RunTask")] == 2


def test_botocore_retries_a_throttle_by_itself(
    sandbox: Sandbox, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backoffs: list[float] = []
    # botocore backs off with time.sleep; record the delays instead of waiting.
    monkeypatch.setattr("botocore.endpoint.time.sleep", backoffs.append)
    ecs = sandbox.client("ecs")
    sandbox.inject_fault("ecs", "RunTask", "ThrottlingException", times=2)
    response = ecs.run_task(cluster=cluster, taskDefinition="job")
    assert len(response["tasks"]) == 1
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert sandbox.calls[("ecs", "RunTask")] == 3
    assert len(backoffs) == 2


def test_an_executed_fault_does_the_work_and_loses_the_answer(sandbox: Sandbox) -> None:
    ecs = no_retries(sandbox, "ecs")
    sandbox.inject_fault(
        "ecs", "RegisterTaskDefinition", "ServerException", status=500, executed=True
    )
    with pytest.raises(ClientError) as raised:
        register(ecs, family="lost")
    assert raised.value.response["Error"]["Code"] == "ServerException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # ECS registered it all the same: revision 1 exists, the caller never saw it.
    [arn] = ecs.list_task_definitions(familyPrefix="lost")["taskDefinitionArns"]
    assert arn.endswith("task-definition/lost:1")
    assert sandbox.calls[("ecs", "RegisterTaskDefinition")] == 1


def test_botocore_retrying_a_lost_answer_registers_twice(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why the controller registers without botocore's retries (controller.aws.ecs).
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)
    sandbox.inject_fault(
        "ecs", "RegisterTaskDefinition", "ServerException", status=500, executed=True
    )
    ecs = sandbox.client("ecs")
    register(ecs, family="lost")
    assert len(ecs.list_task_definitions(familyPrefix="lost")["taskDefinitionArns"]) == 2


def test_faults_only_hit_their_operation(sandbox: Sandbox, cluster: str) -> None:
    ecs = no_retries(sandbox, "ecs")
    sandbox.inject_fault("ecs", "DescribeTasks", "AccessDeniedException")
    assert len(ecs.run_task(cluster=cluster, taskDefinition="job")["tasks"]) == 1
    with pytest.raises(ClientError, match="AccessDeniedException"):
        ecs.describe_tasks(cluster=cluster, tasks=["x"])


def test_a_fault_for_one_path_hits_only_the_calls_to_that_path(sandbox: Sandbox) -> None:
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket="manifests")
    for key in ("jobs/a.yaml", "jobs/ünï côdé.yaml"):
        s3.put_object(Bucket="manifests", Key=key, Body=b"a: 1\n")
    denied = "/manifests/jobs/ünï côdé.yaml"  # the key as S3 names it, not URL-quoted
    sandbox.inject_fault("s3", "GetObject", "AccessDenied", status=403, path=denied)

    assert s3.get_object(Bucket="manifests", Key="jobs/a.yaml")["Body"].read() == b"a: 1\n"
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket="manifests", Key="jobs/ünï côdé.yaml")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Used up by its own call; the call to the other key left it pending.
    assert s3.get_object(Bucket="manifests", Key="jobs/ünï côdé.yaml")["Body"].read() == b"a: 1\n"


def test_a_fault_for_one_path_lets_a_later_fault_for_every_path_by(sandbox: Sandbox) -> None:
    s3 = no_retries(sandbox, "s3")
    s3.create_bucket(Bucket="manifests")
    s3.put_object(Bucket="manifests", Key="a.yaml", Body=b"a: 1\n")
    sandbox.inject_fault("s3", "GetObject", "AccessDenied", status=403, path="/manifests/b.yaml")
    sandbox.inject_fault("s3", "GetObject", "SlowDown", status=503)
    with pytest.raises(ClientError, match="SlowDown"):
        s3.get_object(Bucket="manifests", Key="a.yaml")
    assert s3.get_object(Bucket="manifests", Key="a.yaml")["Body"].read() == b"a: 1\n"


def test_a_path_without_its_leading_slash_is_refused_at_once(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="/BUCKET/KEY"):
        sandbox.inject_fault("s3", "GetObject", "AccessDenied", path="manifests/b.yaml")


def test_query_protocol_services_get_their_own_error_format(sandbox: Sandbox) -> None:
    sandbox.create_cluster("batch")
    sandbox.create_auto_scaling_group("batch-asg", "batch", 0, 2, 0)
    autoscaling: AutoScalingClient = no_retries(sandbox, "autoscaling")
    sandbox.inject_fault("autoscaling", "SetDesiredCapacity", "ResourceContention", status=500)
    with pytest.raises(ClientError) as raised:
        autoscaling.set_desired_capacity(AutoScalingGroupName="batch-asg", DesiredCapacity=1)
    assert raised.value.response["Error"]["Code"] == "ResourceContention"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    autoscaling.set_desired_capacity(AutoScalingGroupName="batch-asg", DesiredCapacity=1)


def test_the_sandbox_setup_calls_are_never_faulted(sandbox: Sandbox) -> None:
    sandbox.inject_fault("ecs", "CreateCluster", "ThrottlingException")
    sandbox.create_cluster("batch")  # the sandbox's own call goes through
    with pytest.raises(ClientError):
        no_retries(sandbox, "ecs").create_cluster(clusterName="other")


def test_a_misspelt_operation_is_refused_at_once(sandbox: Sandbox) -> None:
    with pytest.raises(Exception, match="RunTasks"):
        sandbox.inject_fault("ecs", "RunTasks", "ThrottlingException")
