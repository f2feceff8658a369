"""`Sandbox(enforce_iam=True)`: moto's IAM access control, with AWS's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.server import IamKeys

ONLY_LIST_CLUSTERS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ecs:ListClusters"], "Resource": "*"}],
}


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(clock, latency="", throttle="", enforce_iam=True) as sandbox:
        yield sandbox


def client(sandbox: Sandbox, service: str, keys: IamKeys) -> Any:
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
    )


def refusal(call: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_a_user_may_call_what_its_policy_allows_and_nothing_else(sandbox: Sandbox) -> None:
    sandbox.create_cluster("batch")  # the sandbox's own administrator
    keys = sandbox.create_iam_user("reader", ONLY_LIST_CLUSTERS)
    ecs = client(sandbox, "ecs", keys)

    assert len(ecs.list_clusters()["clusterArns"]) == 1
    code, message, status = refusal(lambda: ecs.describe_clusters(clusters=["batch"]))
    # AWS's shape for a JSON service (moto's own is XML with status 403).
    assert (code, status) == ("AccessDeniedException", 400)
    assert message.endswith("user/reader is not authorized to perform: ecs:DescribeClusters")


def test_a_changed_policy_applies_from_the_next_call(sandbox: Sandbox) -> None:
    keys = sandbox.create_iam_user("changing", ONLY_LIST_CLUSTERS)
    dynamodb = client(sandbox, "dynamodb", keys)
    assert refusal(dynamodb.list_tables)[0] == "AccessDeniedException"
    allowed = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["dynamodb:ListTables"], "Resource": "*"}],
    }
    sandbox.set_user_policy("changing", allowed)
    assert dynamodb.list_tables()["TableNames"] == []


def test_an_unknown_key_is_refused_and_a_reset_keeps_enforcing(sandbox: Sandbox) -> None:
    stranger = IamKeys("nobody", "AKIAEXAMPLEEXAMPLE00", "secret")
    assert refusal(lambda: client(sandbox, "sqs", stranger).list_queues())[2] in (400, 403)
    sandbox.reset()
    keys = sandbox.create_iam_user("after-reset", ONLY_LIST_CLUSTERS)
    autoscaling = client(sandbox, "autoscaling", keys)
    code, _, _ = refusal(autoscaling.describe_auto_scaling_groups)
    assert code == "AccessDenied"  # a query service: moto's XML is AWS's shape already
    assert sandbox.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
