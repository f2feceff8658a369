"""The loop's Activity for `controller run`: what a look answers, and what it does with events.

ECS and SQS are small fakes here (the look's ECS side is tested against the
sandbox in tests/aws/test_activity_look.py); what is checked is the
watcher's own part: the trigger it gives the pass, and which messages it
deletes at once and which it leaves for the pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from controller.aws.sqs import QueueMessage
from controller.observe.activity import TaskStage, Watch
from controller.runtime.activity import ActivityWatcher
from controller.runtime.ecs_events import EventInbox

ARN = "arn:aws:ecs:us-east-1:123456789012:task/batch/abc"


class FakeEcs:
    """describe_tasks answers every task with `status`."""

    def __init__(self, status: str) -> None:
        self.status = status

    def describe_tasks(self, cluster: str, arns: Sequence[str]) -> tuple[list[Any], list[str]]:
        del cluster
        found = [
            SimpleNamespace(arn=a, record=SimpleNamespace(last_status=self.status)) for a in arns
        ]
        return found, []


class FakeSqs:
    """Remembers what was deleted."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, queue_url: str, messages: Sequence[QueueMessage]) -> None:
        del queue_url
        self.deleted.extend(m.message_id for m in messages)


def watcher(status: str, sqs: FakeSqs | None = None) -> ActivityWatcher:
    """A watcher of one running task that ECS now reports as `status`."""
    inbox = None
    if sqs is not None:
        inbox = EventInbox(sqs, "https://queue", "o", lambda _why: None)  # type: ignore[arg-type]
    found = ActivityWatcher(FakeEcs(status), None, "o", inbox=inbox)  # type: ignore[arg-type]
    found.watch = Watch(tasks={"batch": {ARN: TaskStage.RUNNING}})
    return found


def message(name: str) -> QueueMessage:
    return QueueMessage(name, "{}", f"handle-{name}")


def test_a_change_the_poll_found_names_the_change() -> None:
    assert watcher("STOPPED").look() == "task abc STOPPED"
    assert watcher("STOPPED", FakeSqs()).look() == "task abc STOPPED"  # a queue, but no event


def test_a_change_found_on_an_event_says_so_and_its_messages_wait_for_the_pass() -> None:
    sqs = FakeSqs()
    found = watcher("STOPPED", sqs)
    assert found.inbox is not None
    found.inbox.give_back([message("m1")])  # as if received
    assert found.look() == "event: task abc STOPPED"
    assert sqs.deleted == []  # the pass that follows acknowledges them
    assert [m.message_id for m in found.messages_for_pass()] == ["m1"]


def test_an_event_whose_look_saw_nothing_is_deleted_at_once() -> None:
    sqs = FakeSqs()
    found = watcher("RUNNING", sqs)
    assert found.inbox is not None
    found.inbox.give_back([message("m1")])
    assert found.look() is None
    assert sqs.deleted == ["m1"]
    assert found.messages_for_pass() == []
