"""Which notifications a pass publishes: the pure half of the notification protocol.

The protocol mirrors the start protocol (DESIGN.md §4): (1) the intent, a
`NotificationRecord` without a MessageId, is saved; (2) SNS Publish; (3)
the MessageId is saved. Every pass sweeps the terminal runs whose
notification is not recorded as published and publishes them, so a crash
after the run's terminal record, or after the intent, loses nothing. A crash
after Publish but before step 3 publishes again on the next pass: the same
notification id then reaches the consumer twice (see README).

No bulk notifications on upgrade: the ledger keeps, per rule (scope and
topic), the instant a pass first saw it configured (its watermark), and a
run is announced on a topic only when it finished at or after that instant.
Runs that ended before the feature existed, or before the topic was
configured, are thus never announced; the watermark is recorded before the
pass applies anything, so a run ending in that very pass is announced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.model.manifest import DesiredSet
from controller.model.notify import (
    CONTROLLER_SCOPE,
    DEFAULT_ON,
    NotificationRecord,
    NotifyRule,
    category_of,
    notification_id,
    rule_of_spec,
)
from controller.model.run import RunRecord

#: A rule's watermark key: (scope, topic ARN).
WatermarkKey = tuple[str, str]


@dataclass(frozen=True)
class PlannedNotification:
    """One message to publish: a terminal run on one topic, with its id."""

    notification_id: str
    run: RunRecord
    topic_arn: str
    #: True when the intent is already in the ledger (a sweep after a crash)
    has_intent: bool


#: Manifest name -> its job spec as written (a JobRun's spec, a CronJob's jobTemplate).
Specs = Mapping[str, Mapping[str, Any]]


def manifest_specs(desired: DesiredSet) -> dict[str, Mapping[str, Any]]:
    """Every manifest's job spec as written, by name (where its `notify` is)."""
    specs: dict[str, Mapping[str, Any]] = {n: j.spec.raw for n, j in desired.job_runs.items()}
    specs.update((n, c.job_template.raw) for n, c in desired.cron_jobs.items())
    return specs


def configured_rules(controller_topic: str | None, specs: Specs) -> list[NotifyRule]:
    """Every rule the configuration names: the controller-wide one, then each manifest's."""
    rules: list[NotifyRule] = []
    if controller_topic:
        rules.append(NotifyRule(CONTROLLER_SCOPE, controller_topic, DEFAULT_ON))
    for name, spec in sorted(specs.items()):
        rule = rule_of_spec(name, spec)
        if rule is not None:
            rules.append(rule)
    return rules


def new_watermarks(
    rules: Iterable[NotifyRule], known: Mapping[WatermarkKey, datetime]
) -> list[WatermarkKey]:
    """The rules' (scope, topic) keys the ledger has no watermark for yet, in order, once each."""
    fresh: list[WatermarkKey] = []
    for rule in rules:
        key = (rule.scope, rule.topic_arn)
        if key not in known and key not in fresh:
            fresh.append(key)
    return fresh


def spec_of_run(run: RunRecord, specs: Specs) -> Mapping[str, Any] | None:
    """The job spec a run is announced under.

    The spec frozen with the run once it started (a run carries on under its
    frozen spec, even if the manifest is gone); a run that never started (a
    Missed occurrence, a refused task definition) takes its manifest's.
    """
    if run.frozen_spec is not None:
        return run.frozen_spec
    return specs.get(run.key.name)


def rules_of_run(run: RunRecord, controller_topic: str | None, specs: Specs) -> list[NotifyRule]:
    """The rules that apply to one run: the controller-wide one, and its spec's."""
    rules: list[NotifyRule] = []
    if controller_topic:
        rules.append(NotifyRule(CONTROLLER_SCOPE, controller_topic, DEFAULT_ON))
    rule = rule_of_spec(run.key.name, spec_of_run(run, specs))
    if rule is not None:
        rules.append(rule)
    return rules


def plan_notifications(
    runs: Iterable[RunRecord],
    controller_topic: str | None,
    specs: Specs,
    watermarks: Mapping[WatermarkKey, datetime],
    records: Mapping[str, NotificationRecord],
    owner: str,
) -> list[PlannedNotification]:
    """The notifications still to publish: one per (terminal run, topic) not yet published."""
    planned: list[PlannedNotification] = []
    for run in sorted(runs, key=lambda r: (r.finished_at or r.updated_at, r.key)):
        category = category_of(run)
        if category is None or run.finished_at is None or run.key.index is not None:
            continue  # an index is announced through its run, once the run ends
        topics: list[str] = []
        for rule in rules_of_run(run, controller_topic, specs):
            since = watermarks.get((rule.scope, rule.topic_arn))
            if category not in rule.on or since is None or run.finished_at < since:
                continue
            if rule.topic_arn not in topics:
                topics.append(rule.topic_arn)
        for topic in topics:
            nid = notification_id(owner, run.key, run.phase, topic)
            record = records.get(nid)
            if record is not None and record.published:
                continue
            planned.append(PlannedNotification(nid, run, topic, has_intent=record is not None))
    return planned


def intent(planned: PlannedNotification, now: datetime) -> NotificationRecord:
    """Step 1's record: the notification about to be published."""
    return NotificationRecord(
        notification_id=planned.notification_id,
        run=planned.run.key,
        topic_arn=planned.topic_arn,
        phase=planned.run.phase,
        intent_at=now,
    )
