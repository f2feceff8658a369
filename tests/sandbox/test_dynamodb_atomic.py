"""The sandbox's DynamoDB patch: a conditional write is checked and applied as one step."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from controller.sandbox.patches import PatchStack, patch_atomic_dynamodb_writes


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("dynamodb", region_name="eu-west-1").create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "t"


def race(table: str, key: str, threads: int = 8) -> int:
    """How many of `threads` simultaneous create-if-absent writes of `key` succeed."""
    client = boto3.client("dynamodb", region_name="eu-west-1")
    barrier = threading.Barrier(threads)
    won: list[int] = []
    refused: list[str] = []

    def claim(i: int) -> None:
        barrier.wait()
        try:
            client.put_item(
                TableName=table,
                Item={"pk": {"S": key}, "by": {"N": str(i)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            won.append(i)
        except ClientError as exc:
            refused.append(exc.response["Error"]["Code"])

    workers = [threading.Thread(target=claim, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert set(refused) <= {"ConditionalCheckFailedException"}
    return len(won)


def test_exactly_one_of_racing_conditional_creates_wins(table: str) -> None:
    stack = PatchStack()
    patch_atomic_dynamodb_writes(stack, DynamoDBBackend)
    try:
        assert [race(table, f"k{n}") for n in range(30)] == [1] * 30
    finally:
        stack.uninstall_all()
    assert len(stack) == 0
    assert (
        "put_item" not in vars(DynamoDBBackend) or DynamoDBBackend.put_item.__name__ == "put_item"
    )
