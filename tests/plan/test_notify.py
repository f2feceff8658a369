"""The notification planner and body: pure, on ledger records built by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.model.manifest import Kind, RunKey
from controller.model.notify import (
    NotificationRecord,
    NotifyOn,
    category_of,
    message_body,
    notification_id,
    rule_of_spec,
    subject,
)
from controller.model.run import (
    AttemptRecord,
    Phase,
    Reason,
    RunRecord,
    TaskRecord,
)
from controller.plan.notify import configured_rules, new_watermarks, plan_notifications

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
OPS = "arn:aws:sns:eu-west-1:123456789012:ops"
TEAM = "arn:aws:sns:eu-west-1:123456789012:team"
TASK = "arn:aws:ecs:eu-west-1:123456789012:task/batch/0123abcd"
TASKDEF: dict[str, Any] = {
    "family": "etl",
    "containerDefinitions": [
        {
            "name": "app",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecs/etl", "awslogs-stream-prefix": "jobs"},
            },
        },
        {"name": "sidecar"},
    ],
}


def ended(
    name: str,
    phase: Phase = Phase.FAILED,
    reason: Reason = Reason.BACKOFF_LIMIT_EXCEEDED,
    *,
    at: datetime = T0,
    notify: dict[str, Any] | None = None,
    started: bool = True,
) -> RunRecord:
    spec: dict[str, Any] = {"cluster": "batch", "taskDefinition": TASKDEF}
    if notify is not None:
        spec["notify"] = notify
    task = TaskRecord(
        TASK, "STOPPED", {"app": 3, "sidecar": 0}, "EssentialContainerExited", "exit 3"
    )
    attempt = AttemptRecord(1, "tok", "arn:td/etl:1", {}, at, (task,), True)
    return RunRecord(
        key=RunKey(name, "1"),
        kind=Kind.JOB_RUN,
        phase=phase,
        reason=reason,
        message="attempt 1 failed: exit code 3",
        created_at=at - timedelta(minutes=5),
        updated_at=at,
        spec_digest="d",
        frozen_spec=spec if started else None,
        attempts=(attempt,) if started else (),
        finished_at=at,
    )


def plan(
    runs: list[RunRecord],
    topic: str | None = OPS,
    watermarks: dict[tuple[str, str], datetime] | None = None,
    records: dict[str, NotificationRecord] | None = None,
) -> list[tuple[str, str]]:
    marks = watermarks if watermarks is not None else {("*", OPS): T0, ("etl", TEAM): T0}
    planned = plan_notifications(runs, topic, {}, marks, records or {}, "prod")
    return [(p.run.key.name, p.topic_arn) for p in planned]


def test_categories_are_disjoint_and_adopted_runs_are_never_announced() -> None:
    assert category_of(ended("a")) is NotifyOn.FAILED
    assert category_of(ended("a", reason=Reason.MISSED)) is NotifyOn.MISSED
    assert category_of(ended("a", Phase.SUCCEEDED, Reason.COMPLETED)) is NotifyOn.SUCCEEDED
    assert category_of(ended("a", Phase.SUCCEEDED, Reason.ADOPTED)) is None
    assert category_of(ended("a", Phase.RUNNING, Reason.RUNNING)) is None


def test_the_controller_wide_topic_takes_failed_runs_but_not_missed_nor_succeeded() -> None:
    runs = [
        ended("failed"),
        ended("missed", reason=Reason.MISSED, started=False),
        ended("ok", Phase.SUCCEEDED, Reason.COMPLETED),
    ]
    assert plan(runs) == [("failed", OPS)]


def test_a_manifest_rule_chooses_its_outcomes_and_its_topic() -> None:
    notify = {"snsTopicArn": TEAM, "on": ["Succeeded", "Missed"]}
    runs = [
        ended("etl", Phase.SUCCEEDED, Reason.COMPLETED, notify=notify),
    ]
    assert plan(runs) == [("etl", TEAM)]
    # Failed is not in its `on`: only the controller-wide topic hears of it.
    assert plan([ended("etl", notify=notify)]) == [("etl", OPS)]


def test_one_message_per_topic_when_both_rules_name_the_same_topic() -> None:
    run = ended("etl", notify={"snsTopicArn": OPS})
    assert plan([run], watermarks={("*", OPS): T0, ("etl", OPS): T0}) == [("etl", OPS)]


def test_runs_that_ended_before_the_watermark_are_never_announced() -> None:
    runs = [ended("old", at=T0 - timedelta(seconds=1)), ended("new", at=T0)]
    assert plan(runs) == [("new", OPS)]
    # No watermark at all (never configured by a pass): nothing.
    assert plan(runs, watermarks={}) == []


def test_a_published_notification_is_not_planned_again_an_intent_is() -> None:
    run = ended("etl")
    nid = notification_id("prod", run.key, run.phase, OPS)
    pending = NotificationRecord(nid, run.key, OPS, run.phase, T0)
    [again] = plan_notifications([run], OPS, {}, {("*", OPS): T0}, {nid: pending}, "prod")
    assert again.has_intent
    assert again.notification_id == nid
    published = replace(pending, message_id="m-1", published_at=T0)
    assert plan([run], records={nid: published}) == []


def test_a_run_that_never_started_takes_its_manifests_rule() -> None:
    run = ended("nightly", reason=Reason.MISSED, started=False)
    specs = {"nightly": {"cluster": "batch", "notify": {"snsTopicArn": TEAM, "on": ["Missed"]}}}
    marks = {("nightly", TEAM): T0}
    [planned] = plan_notifications([run], None, specs, marks, {}, "prod")
    assert planned.topic_arn == TEAM


def test_watermarks_are_new_once_per_scope_and_topic() -> None:
    specs = {"etl": {"notify": {"snsTopicArn": TEAM}}, "plain": {"cluster": "batch"}}
    rules = configured_rules(OPS, specs)
    assert [(r.scope, r.topic_arn, sorted(r.on)) for r in rules] == [
        ("*", OPS, ["Failed"]),
        ("etl", TEAM, ["Failed"]),
    ]
    assert new_watermarks([*rules, *rules], {("*", OPS): T0}) == [("etl", TEAM)]


def test_the_notification_id_is_deterministic_and_tells_topics_and_phases_apart() -> None:
    key = RunKey("etl", "1")
    first = notification_id("prod", key, Phase.FAILED, OPS)
    assert first == notification_id("prod", key, Phase.FAILED, OPS)
    assert len(first) == 64
    assert first != notification_id("prod", key, Phase.FAILED, TEAM)
    assert first != notification_id("prod", key, Phase.SUCCEEDED, OPS)
    assert first != notification_id("test", key, Phase.FAILED, OPS)


def test_the_body_is_the_documented_json() -> None:
    run = ended("etl")
    body = message_body(run, "prod", "batch", "n" * 64)
    stream = {"container": "app", "group": "/ecs/etl", "stream": "jobs/app/0123abcd"}
    assert body == {
        "kind": "JobRun",
        "name": "etl",
        "runId": "1",
        "phase": "Failed",
        "reason": "BackoffLimitExceeded",
        "message": "attempt 1 failed: exit code 3",
        "attempts": [
            {
                "number": 1,
                "exitCodes": {"app": 3, "sidecar": 0},
                "stopCode": "EssentialContainerExited",
                "stoppedReason": "exit 3",
                "taskArns": [TASK],
                "logStreams": [stream],
            }
        ],
        "taskArns": [TASK],
        "logStreams": [stream],
        "owner": "prod",
        "cluster": "batch",
        "notificationId": "n" * 64,
        "finishedAt": "2026-05-01T12:00:00+00:00",
    }
    json.dumps(body)  # JSON-ready as it is


def test_the_subject_is_short_and_ascii() -> None:
    assert subject(ended("etl")) == "etl/1 Failed (BackoffLimitExceeded)"
    long = subject(ended("x" * 120))
    assert len(long) == 100
    assert long.endswith("...")
    assert long.isascii()


def test_a_spec_without_on_defaults_to_failed() -> None:
    rule = rule_of_spec("etl", {"notify": {"snsTopicArn": TEAM}})
    assert rule is not None
    assert rule.on == frozenset({NotifyOn.FAILED})
    assert rule_of_spec("etl", {"cluster": "batch"}) is None
    assert rule_of_spec("etl", None) is None


def test_an_indexed_run_is_announced_once_as_a_whole_never_per_index() -> None:
    run = replace(ended("shards"), attempts=(), reason=Reason.FAILED_INDEXES)
    index = replace(ended("shards"), key=RunKey("shards", "1", 3))
    assert plan([run, index]) == [("shards", OPS)]
