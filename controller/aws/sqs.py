"""The SQS gateway: the events queue that EventBridge fills with ECS task state changes.

`controller run --events-queue URL` long-polls the queue and deletes what
it has acted on. Three calls, typed, with AWS errors turned into ours.
The read timeout of the session's clients (60 s) is longer than the longest
wait SQS allows (20 s), so a long poll never looks like a dead connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.aws.errors import call
from controller.aws.session import AwsSession

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS's limits: at most 10 messages per receive or delete, at most 20 s of waiting.
BATCH = 10
MAX_WAIT_SECONDS = 20


@dataclass(frozen=True)
class QueueMessage:
    """One received message: its body, and the handle that deletes it."""

    message_id: str
    body: str
    receipt_handle: str


class SqsGateway:
    """ReceiveMessage (long poll), DeleteMessageBatch and GetQueueAttributes."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session

    @property
    def _sqs(self) -> SQSClient:
        return self._session.sqs()

    def check(self, queue_url: str) -> None:
        """Fail (TerminalError for a queue that does not exist) unless the queue is readable."""
        call(
            "GetQueueAttributes",
            lambda: self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"]),
        )

    def receive(self, queue_url: str, wait_seconds: int) -> list[QueueMessage]:
        """Up to 10 messages, waiting up to `wait_seconds` (0..20) for the first one."""
        answer = call(
            "ReceiveMessage",
            lambda: self._sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=BATCH,
                WaitTimeSeconds=max(0, min(MAX_WAIT_SECONDS, wait_seconds)),
            ),
        )
        return [
            QueueMessage(m["MessageId"], m.get("Body", ""), m["ReceiptHandle"])
            for m in answer.get("Messages") or []
            if "MessageId" in m and "ReceiptHandle" in m
        ]

    def delete(self, queue_url: str, messages: Sequence[QueueMessage]) -> None:
        """Delete messages in batches of 10 (a handle that expired is simply received again)."""
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            call(
                "DeleteMessageBatch",
                lambda b=batch: self._sqs.delete_message_batch(  # type: ignore[misc]
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(b)
                    ],
                ),
            )
