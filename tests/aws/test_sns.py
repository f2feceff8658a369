"""The SNS gateway on moto in-process: the message, its attributes, FIFO dedup, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from controller.aws.session import AwsSession
from controller.aws.sns import SnsGateway, SnsMessage
from controller.errors import TerminalError
from tests.moto_aws import in_process_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_process_aws(monkeypatch):
        yield


def subscribed(name: str) -> tuple[str, str]:
    """A topic with an SQS queue subscribed: (topic ARN, queue URL)."""
    fifo = name.endswith(".fifo")
    sns: Any = boto3.client("sns")
    sqs: Any = boto3.client("sqs")
    topic = sns.create_topic(Name=name, Attributes={"FifoTopic": "true"} if fifo else {})
    queue = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"} if fifo else {})
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
    )
    return topic["TopicArn"], queue["QueueUrl"]


def received(url: str) -> list[dict[str, Any]]:
    sqs: Any = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def message(topic: str, dedup: str = "d" * 64) -> SnsMessage:
    return SnsMessage(
        topic_arn=topic,
        body={"name": "etl", "notificationId": dedup},
        subject="etl/1 Failed (BackoffLimitExceeded)",
        attributes={"phase": "Failed", "name": "etl", "owner": "prod"},
        deduplication_id=dedup,
        group_id="etl",
    )


def test_publish_sends_the_body_subject_and_string_attributes(aws: None) -> None:
    topic, queue = subscribed("ops")
    session = AwsSession()
    message_id = SnsGateway(session).publish(message(topic))

    [envelope] = received(queue)
    assert envelope["MessageId"] == message_id
    assert json.loads(envelope["Message"]) == {"name": "etl", "notificationId": "d" * 64}
    assert envelope["Subject"] == "etl/1 Failed (BackoffLimitExceeded)"
    assert {k: (v["Type"], v["Value"]) for k, v in envelope["MessageAttributes"].items()} == {
        "phase": ("String", "Failed"),
        "name": ("String", "etl"),
        "owner": ("String", "prod"),
    }
    assert session.call_counts()[("sns", "Publish")] == 1


def test_a_fifo_topic_drops_a_repeat_with_the_same_notification_id(aws: None) -> None:
    topic, queue = subscribed("ops.fifo")
    gateway = SnsGateway(AwsSession())
    gateway.publish(message(topic))
    gateway.publish(message(topic))  # a republish after a crash
    gateway.publish(message(topic, dedup="e" * 64))

    assert [json.loads(e["Message"])["notificationId"] for e in received(queue)] == [
        "d" * 64,
        "e" * 64,
    ]


def test_a_missing_topic_is_a_terminal_error_in_one_line(aws: None) -> None:
    gateway = SnsGateway(AwsSession())
    with pytest.raises(TerminalError) as raised:
        gateway.publish(message("arn:aws:sns:us-east-1:123456789012:nowhere"))
    assert "Publish" in str(raised.value)
    assert "\n" not in str(raised.value)
