"""The Notifier on moto in-process and a real SQLite ledger: the protocol's three steps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.apply.executor import ApplyResult, Outcome
from controller.apply.notify import FAILED, PUBLISHED, Notifier
from controller.aws.session import AwsSession
from controller.aws.sns import SnsGateway
from controller.clock import FakeClock
from controller.model.manifest import Kind, RunKey
from controller.model.run import Phase, Reason, RunRecord
from controller.state.sqlite import SqliteLedger
from tests.moto_aws import in_process_aws

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOPIC = "arn:aws:sns:us-east-1:123456789012:ops"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_process_aws(monkeypatch):
        yield


def failed_run(name: str, at: datetime) -> RunRecord:
    return RunRecord(
        key=RunKey(name, "1"),
        kind=Kind.JOB_RUN,
        phase=Phase.FAILED,
        reason=Reason.DEADLINE_EXCEEDED,
        message="past its deadline",
        created_at=at - timedelta(minutes=1),
        updated_at=at,
        spec_digest="d",
        frozen_spec={"cluster": "batch"},
        finished_at=at,
    )


def queue_on_topic() -> str:
    sns: Any = boto3.client("sns")
    sqs: Any = boto3.client("sqs")
    sns.create_topic(Name="ops")
    url = sqs.create_queue(QueueName="ops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    return str(url)


def test_a_failed_publish_keeps_its_intent_and_the_next_sweep_publishes_once(
    aws: None, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    ledger = SqliteLedger(tmp_path / "state.db")
    notifier = Notifier(SnsGateway(AwsSession()), ledger, "prod", clock, controller_topic=TOPIC)
    notifier.prepare({}, T0)
    ledger.save(failed_run("before", T0 - timedelta(seconds=1)))  # ended before: never
    ledger.save(failed_run("etl", T0))

    first = ApplyResult()
    notifier.sweep({}, first)  # the topic does not exist yet
    [outcome] = first.outcomes
    assert outcome.outcome is Outcome.TERMINAL
    assert outcome.subject == f"notify etl/1 on {TOPIC}"
    assert first.counts[FAILED] == 1
    [intent] = ledger.notifications().values()
    assert (intent.run, intent.published) == (RunKey("etl", "1"), False)

    url = queue_on_topic()
    second = ApplyResult()
    notifier.sweep({}, second)
    assert second.counts[PUBLISHED] == 1
    assert second.ok
    [record] = ledger.notifications().values()
    assert record.published
    assert record.notification_id == intent.notification_id

    third = ApplyResult()
    notifier.sweep({}, third)
    assert third.outcomes == []
    sqs: Any = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(json.loads(m["Body"])["Message"])["name"] for m in messages] == ["etl"]
    assert [e.reason for e in ledger.events(RunKey("etl", "1"))] == ["Notified"]
    ledger.close()


def test_without_any_configuration_a_sweep_reads_no_run(aws: None, tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "state.db")
    ledger.save(failed_run("etl", T0))
    notifier = Notifier(SnsGateway(AwsSession()), ledger, "prod", FakeClock(T0))
    notifier.prepare({}, T0)
    result = ApplyResult()
    notifier.sweep({}, result)
    assert result.outcomes == []
    assert ledger.notify_watermarks() == {}
    ledger.close()
