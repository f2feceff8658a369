"""Run notifications through the real CLI on the sandbox: SNS topics subscribed by SQS queues.

Each topic is read back the way a consumer would (an SQS subscription):
one message per run and topic, with the documented body and attributes,
published exactly once across passes, and neither lost nor doubled by a
SIGKILL between the run's terminal record and the publish.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.model.manifest import RunKey
from controller.state.sqlite import SqliteLedger
from tests.e2e.conftest import World, cron_job, job

pytestmark = pytest.mark.e2e

AWSLOGS = (
    "        logConfiguration:\n"
    "          logDriver: awslogs\n"
    "          options: {awslogs-group: /ecs/jobs, awslogs-region: eu-west-1, "
    "awslogs-stream-prefix: jobs}\n"
)


def failing(name: str, extra: str = "") -> str:
    return job(name, exit_code="3", duration=5, extra=extra) + AWSLOGS


def finish(world: World, **env: str) -> None:
    """Two passes 6 s apart: the job starts, then its task has exited."""
    first = world.reconcile(**env)
    assert first.returncode == 0, first.stderr
    world.clock.advance(6)


def bodies(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(e["Message"]) for e in envelopes]


def test_a_failed_run_is_published_once_with_its_body_and_attributes(world: World) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-ops")
    world.write("a.yaml", failing("etl"))
    finish(world, CONTROLLER_NOTIFY_SNS=topic)
    done = world.reconcile(CONTROLLER_NOTIFY_SNS=topic)
    assert done.returncode == 0, done.stderr

    [envelope] = world.sandbox.received(queue)
    body = json.loads(envelope["Message"])
    run = world.run("etl")
    [task] = run["attempts"][0]["taskArns"]
    task_id = task.rsplit("/", 1)[-1]
    assert body["kind"] == "JobRun"
    assert (body["name"], body["runId"], body["phase"]) == ("etl", "1", "Failed")
    assert body["reason"] == "BackoffLimitExceeded" == run["reason"]
    assert body["message"] == run["message"]
    assert (body["owner"], body["cluster"]) == ("e2e", "batch")
    assert body["taskArns"] == [task]
    [attempt] = body["attempts"]
    assert attempt["number"] == 1
    assert attempt["exitCodes"] == {"app": 3}
    assert attempt["taskArns"] == [task]
    stream = {"container": "app", "group": "/ecs/jobs", "stream": f"jobs/app/{task_id}"}
    assert attempt["logStreams"] == body["logStreams"] == [stream]
    assert len(body["notificationId"]) == 64
    assert body["finishedAt"]
    assert envelope["Subject"] == "etl/1 Failed (BackoffLimitExceeded)"
    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attributes == {
        "phase": "Failed",
        "name": "etl",
        "owner": "e2e",
        "notificationId": body["notificationId"],
    }
    # The ledger recorded the publish with SNS's MessageId, and the run's event.
    with SqliteLedger(world.root / "state.db", read_only=True) as ledger:
        [record] = ledger.notifications().values()
        events = ledger.events(RunKey("etl", "1"))
    assert record.notification_id == body["notificationId"]
    assert record.message_id == envelope["MessageId"]
    assert [e.reason for e in events].count("Notified") == 1

    # Passes after it publish nothing more.
    for _ in range(2):
        world.clock.advance(5)
        assert world.reconcile(CONTROLLER_NOTIFY_SNS=topic).returncode == 0
    assert world.sandbox.received(queue) == []
    assert world.sandbox.calls.get(("sns", "Publish"), 0) == 1


def test_runs_that_ended_before_the_topic_was_configured_are_not_announced(
    world: World,
) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-ops")
    world.write("old.yaml", failing("old"))
    finish(world)
    assert world.reconcile().returncode == 0
    assert world.run("old")["phase"] == "Failed"

    # The topic is configured a second later: old stays unannounced, new is announced.
    world.clock.advance(1)
    world.write("new.yaml", failing("new"))
    finish(world, CONTROLLER_NOTIFY_SNS=topic)
    assert world.reconcile(CONTROLLER_NOTIFY_SNS=topic).returncode == 0

    assert [b["name"] for b in bodies(world.sandbox.received(queue))] == ["new"]


def test_spec_notify_chooses_its_topic_and_outcomes(world: World) -> None:
    wide, wide_queue = world.sandbox.create_notify_topic("ejc-ops")
    own, own_queue = world.sandbox.create_notify_topic("ejc-team")
    notify = f"  notify: {{snsTopicArn: '{own}', on: [Succeeded, Failed]}}\n"
    world.write("ok.yaml", job("ok", duration=5, extra=notify))
    world.write("bad.yaml", failing("bad", extra=notify))
    finish(world, CONTROLLER_NOTIFY_SNS=wide)
    assert world.reconcile(CONTROLLER_NOTIFY_SNS=wide).returncode == 0

    mine = sorted((b["name"], b["phase"]) for b in bodies(world.sandbox.received(own_queue)))
    assert mine == [("bad", "Failed"), ("ok", "Succeeded")]
    # The controller-wide topic takes Failed runs only.
    assert [b["name"] for b in bodies(world.sandbox.received(wide_queue))] == ["bad"]


def test_the_same_topic_twice_publishes_one_message(world: World) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-ops")
    world.write("bad.yaml", failing("bad", extra=f"  notify: {{snsTopicArn: '{topic}'}}\n"))
    finish(world, CONTROLLER_NOTIFY_SNS=topic)
    assert world.reconcile(CONTROLLER_NOTIFY_SNS=topic).returncode == 0

    assert len(world.sandbox.received(queue)) == 1


@pytest.mark.parametrize("step", ["after-terminal", "after-notify-intent"])
def test_a_crash_before_the_publish_loses_nothing_and_doubles_nothing(
    world: World, step: str
) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-ops")
    world.write("a.yaml", failing("etl"))
    finish(world, CONTROLLER_NOTIFY_SNS=topic)

    crashed = world.reconcile(CONTROLLER_NOTIFY_SNS=topic, CONTROLLER_TEST_CRASH_AT=step)
    assert crashed.returncode == -9, crashed.stderr
    assert world.run("etl")["phase"] == "Failed"  # the terminal record was written
    assert world.sandbox.received(queue) == []  # ...and nothing published yet

    for _ in range(2):
        again = world.reconcile(CONTROLLER_NOTIFY_SNS=topic)
        assert again.returncode == 0, again.stderr
    [body] = bodies(world.sandbox.received(queue))
    assert (body["name"], body["phase"]) == ("etl", "Failed")


def test_a_crash_after_the_publish_repeats_it_with_the_same_notification_id(
    world: World,
) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-ops")
    world.write("a.yaml", failing("etl"))
    finish(world, CONTROLLER_NOTIFY_SNS=topic)

    crashed = world.reconcile(CONTROLLER_NOTIFY_SNS=topic, CONTROLLER_TEST_CRASH_AT="after-publish")
    assert crashed.returncode == -9, crashed.stderr
    assert world.reconcile(CONTROLLER_NOTIFY_SNS=topic).returncode == 0

    # The documented at-least-once edge: consumers dedupe on notificationId.
    first, second = bodies(world.sandbox.received(queue))
    assert first["notificationId"] == second["notificationId"]


def test_a_fifo_topic_dedupes_the_repeat_itself(world: World) -> None:
    topic, queue = world.sandbox.create_notify_topic("ejc-ops.fifo")
    world.write("a.yaml", failing("etl"))
    finish(world, CONTROLLER_NOTIFY_SNS=topic)

    crashed = world.reconcile(CONTROLLER_NOTIFY_SNS=topic, CONTROLLER_TEST_CRASH_AT="after-publish")
    assert crashed.returncode == -9, crashed.stderr
    assert world.reconcile(CONTROLLER_NOTIFY_SNS=topic).returncode == 0

    assert len(world.sandbox.received(queue)) == 1


def at_minute(world: World, seconds_past: int) -> None:
    """Move the clock to `seconds_past` seconds after the next whole minute."""
    now = world.clock.now()
    world.clock.advance(60 - now.second - now.microsecond / 1e6 + seconds_past)


def test_a_missed_occurrence_goes_to_a_cron_job_that_asks_for_missed_only(world: World) -> None:
    wide, wide_queue = world.sandbox.create_notify_topic("ejc-ops")
    own, own_queue = world.sandbox.create_notify_topic("ejc-team")
    text = cron_job("long", duration=3600).replace(
        "  jobTemplate:\n", f"  jobTemplate:\n    notify: {{snsTopicArn: '{own}', on: [Missed]}}\n"
    )
    world.write("c.yaml", text)
    for seconds_past in (30, 2, 2):  # one occurrence runs, the next is Missed (Forbid)
        at_minute(world, seconds_past)
        assert world.reconcile(CONTROLLER_NOTIFY_SNS=wide).returncode == 0

    [body] = bodies(world.sandbox.received(own_queue))
    assert (body["kind"], body["name"], body["phase"]) == ("CronJob", "long", "Failed")
    assert body["reason"] == "Missed"
    assert body["attempts"] == []
    assert body["cluster"] == "batch"
    # The controller-wide topic does not take Missed occurrences.
    assert world.sandbox.received(wide_queue) == []


def test_a_notify_sns_that_is_no_topic_arn_is_a_usage_error(world: World) -> None:
    done = world.reconcile(CONTROLLER_NOTIFY_SNS="ops-topic")
    assert done.returncode == 2
    assert "--notify-sns: 'ops-topic' is not an SNS topic ARN" in done.stderr
    assert "Traceback" not in done.stderr
