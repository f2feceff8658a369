"""CloudWatch Logs reads for `controller logs` (the awslogs driver's streams).

Narrow on purpose: one stream at a time, forward from a token, with the
token to resume from, so `--follow` can poll without re-reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.aws.errors import AwsTerminalError, call
from controller.aws.session import AwsSession


@dataclass(frozen=True)
class LogLine:
    """One log event."""

    at: datetime
    message: str


class LogsGateway:
    """GetLogEvents, paginated forward."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session

    def read(
        self, group: str, stream: str, token: str | None = None
    ) -> tuple[list[LogLine], str | None]:
        """Events of a stream after `token` (from the start when None), and the next token.

        A stream that does not exist yet (the task has not logged anything)
        reads as empty.
        """
        client = self._session.logs()
        lines: list[LogLine] = []
        while True:
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream}
            kwargs.update({"nextToken": token} if token else {"startFromHead": True})
            try:
                page = call("GetLogEvents", lambda kw=kwargs: client.get_log_events(**kw))  # type: ignore[misc]
            except AwsTerminalError as exc:
                if exc.code == "ResourceNotFoundException":
                    return lines, token
                raise
            for event in page.get("events", []):
                at = datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC)
                lines.append(LogLine(at, str(event.get("message", ""))))
            following = page.get("nextForwardToken")
            # The API signals the end by returning the token it was given.
            if not following or following == token:
                return lines, token
            token = following
