"""The SNS gateway: publishing run notifications (`--notify-sns`, `spec.notify`).

One call, Publish, typed, with AWS errors turned into ours (throttling and
5xx transient, a missing topic or a refused permission terminal). Calls go
through the shared session, so they are counted in
`controller_aws_calls_total{service="sns"}` like every other, and botocore's
standard retries apply. A retry of a Publish whose answer was lost can
deliver a message twice: that is why every message carries its
notification id (see `controller.model.notify`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from controller.aws.errors import call
from controller.aws.session import AwsSession
from controller.errors import TerminalError
from controller.model.notify import is_fifo


class SNSClient(Protocol):
    """The part of boto3's SNS client used here (no stub package is installed to type it).

    Named as the stub package names it, so the IAM derivation (tests/deploy)
    recognises the calls made through it.
    """

    def publish(self, **kwargs: Any) -> Mapping[str, object]:
        """SNS Publish."""
        ...


@dataclass(frozen=True)
class SnsMessage:
    """One message to publish: JSON body, Subject, String attributes, and its dedup id."""

    topic_arn: str
    body: Mapping[str, object]
    subject: str
    attributes: Mapping[str, str]
    #: the notification id: MessageDeduplicationId on a FIFO topic
    deduplication_id: str
    #: the FIFO message group (one per run name keeps a manifest's messages in order)
    group_id: str


class SnsGateway:
    """Publish, to standard and FIFO topics."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session

    @property
    def _sns(self) -> SNSClient:
        return cast("SNSClient", self._session.client("sns"))

    def publish(self, message: SnsMessage) -> str:
        """Publish one message; returns the MessageId SNS assigned."""
        params: dict[str, Any] = {
            "TopicArn": message.topic_arn,
            "Message": json.dumps(message.body, sort_keys=True, separators=(",", ":")),
            "Subject": message.subject,
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in sorted(message.attributes.items())
            },
        }
        if is_fifo(message.topic_arn):
            params["MessageDeduplicationId"] = message.deduplication_id
            params["MessageGroupId"] = message.group_id
        answer = call("Publish", lambda: self._sns.publish(**params))
        message_id = answer.get("MessageId")
        if not isinstance(message_id, str):
            raise TerminalError(f"Publish to {message.topic_arn} answered no MessageId")
        return message_id
