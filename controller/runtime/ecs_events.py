"""`--events-queue`: ECS state-change events from EventBridge, through SQS, wake the loop.

Polling finds a stopped task within `--active-poll-seconds`; an event finds it
within a second. ECS emits an event to EventBridge whenever a task or a
container instance changes state; a rule with the pattern below forwards
those of our clusters to an SQS queue, which `EventInbox` long-polls on a
thread of its own (20 s waits: three ReceiveMessage calls a minute when
nothing happens).

Events carry no meaning of their own here (level-triggered, DESIGN.md §7):
a relevant one only says "look now", and the loop's cheap look
(`controller.observe.activity`) decides whether a pass is needed; the pass
reads ECS for itself. So a lost, duplicated, reordered or stale event costs
at most one look, and polling remains the safety net (every
`EVENTS_SAFETY_POLL_SECONDS` while the queue answers, every
`--active-poll-seconds` while it does not).

Relevant: an `ECS Task State Change` whose `startedBy` is this owner's, and
any `ECS Container Instance State Change` (new room for waiting runs).
Everything else is deleted at once. A relevant message is deleted only after
the look it triggered found nothing to do, or after the pass that look (or
any other trigger) ran has finished; a pass that fails hands its messages
back for the next one. One queue serves one owner: messages of another
owner's tasks are deleted unread.

The rule, with the clusters in use (`event_pattern` builds it):

    {"source": ["aws.ecs"],
     "detail-type": ["ECS Task State Change", "ECS Container Instance State Change"],
     "detail": {"clusterArn": ["arn:aws:ecs:REGION:ACCOUNT:cluster/NAME", ...]}}

and the queue's policy lets `events.amazonaws.com` call `sqs:SendMessage`
with `aws:SourceArn` equal to the rule's ARN (README, "Events").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from controller.aws.sqs import MAX_WAIT_SECONDS, QueueMessage, SqsGateway
from controller.errors import ControllerError
from controller.model.identity import started_by

log = logging.getLogger("controller.events")

TASK_STATE_CHANGE = "ECS Task State Change"
INSTANCE_STATE_CHANGE = "ECS Container Instance State Change"

#: How often the loop still looks at runs in flight while events arrive:
#: the safety net for an event that never comes (a rule deleted, a queue
#: purged), rare enough that it costs next to nothing.
EVENTS_SAFETY_POLL_SECONDS = 60.0
#: After a failed ReceiveMessage: wait this long before the next try.
RECEIVE_RETRY_SECONDS = 5.0


def event_pattern(cluster_arns: Sequence[str]) -> dict[str, Any]:
    """The EventBridge rule pattern that forwards our clusters' ECS state changes."""
    pattern: dict[str, Any] = {
        "source": ["aws.ecs"],
        "detail-type": [TASK_STATE_CHANGE, INSTANCE_STATE_CHANGE],
    }
    if cluster_arns:
        pattern["detail"] = {"clusterArn": sorted(cluster_arns)}
    return pattern


def relevance(body: str, owner: str) -> str | None:
    """Why a message is worth a look ("task abc STOPPED"), or None for one to drop."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("source") != "aws.ecs":
        return None
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return None
    kind = event.get("detail-type")
    if kind == TASK_STATE_CHANGE:
        if detail.get("startedBy") != started_by(owner):
            return None
        task = str(detail.get("taskArn", "")).rsplit("/", 1)[-1]
        return f"event: task {task} {detail.get('lastStatus', '?')}"
    if kind == INSTANCE_STATE_CHANGE:
        instance = str(detail.get("containerInstanceArn", "")).rsplit("/", 1)[-1]
        return f"event: container instance {instance} {detail.get('status', '?')}"
    return None


class EventInbox:
    """Long-polls the events queue on a thread; holds relevant messages until acted on."""

    def __init__(
        self,
        sqs: SqsGateway,
        queue_url: str,
        owner: str,
        on_event: Callable[[str], None],
        *,
        wait_seconds: int = MAX_WAIT_SECONDS,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._owner = owner
        self._on_event = on_event
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._pending: list[QueueMessage] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = False
        self.received = 0

    @property
    def healthy(self) -> bool:
        """True while the last ReceiveMessage succeeded."""
        return self._healthy

    def start(self) -> EventInbox:
        """Check the queue (a setup error if it cannot be read), then start receiving."""
        self._sqs.check(self.queue_url)
        self._healthy = True
        self._thread = threading.Thread(target=self._receive_forever, name="events", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop receiving; a long poll in flight is abandoned (its messages come back later)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def take(self) -> list[QueueMessage]:
        """Every relevant message received so far, now the caller's to acknowledge."""
        with self._lock:
            taken, self._pending = self._pending, []
        return taken

    def give_back(self, messages: Sequence[QueueMessage]) -> None:
        """Messages whose pass failed: the next pass acknowledges them."""
        if messages:
            with self._lock:
                self._pending[:0] = messages

    def acknowledge(self, messages: Sequence[QueueMessage]) -> None:
        """Delete messages that were acted on (a failure only means they come again)."""
        if not messages:
            return
        try:
            self._sqs.delete(self.queue_url, messages)
        except ControllerError as exc:
            log.warning("deleting %d event(s) from the queue failed: %s", len(messages), exc)

    def _receive_forever(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive(self.queue_url, self._wait_seconds)
            except ControllerError as exc:
                if self._healthy:
                    log.warning("events queue unreadable (polling instead): %s", exc)
                self._healthy = False
                self._stop.wait(RECEIVE_RETRY_SECONDS)
                continue
            except Exception:
                log.exception("receiving from the events queue failed unexpectedly")
                self._healthy = False
                self._stop.wait(RECEIVE_RETRY_SECONDS)
                continue
            if not self._healthy:
                log.info("events queue readable again")
            self._healthy = True
            self._sort(messages)

    def _sort(self, messages: Sequence[QueueMessage]) -> None:
        relevant: list[tuple[QueueMessage, str]] = []
        dropped: list[QueueMessage] = []
        for message in messages:
            why = relevance(message.body, self._owner)
            if why is None:
                dropped.append(message)
            else:
                relevant.append((message, why))
        self.acknowledge(dropped)
        if not relevant:
            return
        with self._lock:
            self._pending.extend(m for m, _ in relevant)
            self.received += len(relevant)
        self._on_event(relevant[0][1])
