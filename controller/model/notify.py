"""Run notifications: which terminal runs are announced on which SNS topic, and with what body.

Issue 17 asks to be told when a run ends. Two sources of configuration:

* **Controller-wide**, `--notify-sns TOPIC_ARN` (CONTROLLER_NOTIFY_SNS) on
  `controller run` and `controller reconcile --once`: every run that ends
  Failed for a reason other than Missed is published there (`on: [Failed]`).
  Missed CronJob occurrences are left out on purpose: after a controller
  outage they come in bulk and are already summed up by the MissedSchedules
  event; a CronJob opts in with its own `notify.on: [Missed]`.
* **Per manifest**, `spec.notify: {snsTopicArn, on}` of a JobRun, or
  `spec.jobTemplate.notify` of a CronJob (it is part of the job spec, so it
  is frozen with each run like the rest of the spec, and `controller
  oneshot` of a manifest uses it too). `on` defaults to `[Failed]`.

The three categories of `on` are disjoint: `Succeeded` is phase Succeeded,
`Missed` is phase Failed with reason Missed, `Failed` is every other Failed
reason. Runs recorded as done by `--adopt-history` (Succeeded/Adopted) never
ran here and are never announced.

A run gets at most one message per topic: when the controller-wide topic is
also a manifest's, the run is published there once. The notification id is
sha256 over owner, name, runId, phase and topic: the same for every retry,
so it serves as the FIFO MessageDeduplicationId and lets consumers dedupe.

This module is pure: the body is built from the run's ledger record alone
(log stream names come from the frozen inline task definition's awslogs
options, without AWS calls).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from controller.model.manifest import RunKey
from controller.model.run import Phase, Reason, RunRecord

#: An SNS topic ARN (the schema's `snsTopicArn` pattern, and --notify-sns's check).
TOPIC_ARN_PATTERN = r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
#: The scope of the controller-wide topic's watermark (manifest scopes are names).
CONTROLLER_SCOPE = "*"
#: SNS limits a Subject to 100 characters.
MAX_SUBJECT = 100


class NotifyOn(StrEnum):
    """The terminal outcomes a notification can be asked for (disjoint)."""

    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    MISSED = "Missed"


#: What `on` is when a manifest does not say, and what the controller-wide topic uses.
DEFAULT_ON: frozenset[NotifyOn] = frozenset({NotifyOn.FAILED})


@dataclass(frozen=True)
class NotifyRule:
    """One topic and the outcomes published to it, for one scope (a manifest name or `*`)."""

    scope: str
    topic_arn: str
    on: frozenset[NotifyOn] = DEFAULT_ON


@dataclass(frozen=True)
class NotificationRecord:
    """The ledger's memory of one notification: the intent, then the publish."""

    notification_id: str
    run: RunKey
    topic_arn: str
    phase: Phase
    intent_at: datetime
    #: None until SNS accepted it
    message_id: str | None = None
    published_at: datetime | None = None

    @property
    def published(self) -> bool:
        """True once SNS answered with a MessageId."""
        return self.message_id is not None


def rule_of_spec(scope: str, spec: Mapping[str, Any] | None) -> NotifyRule | None:
    """The `notify` rule of a (schema-valid) job spec mapping, or None without one."""
    notify = (spec or {}).get("notify")
    if not isinstance(notify, Mapping) or not notify.get("snsTopicArn"):
        return None
    on = notify.get("on")
    chosen = frozenset(NotifyOn(v) for v in on) if on else DEFAULT_ON
    return NotifyRule(scope, str(notify["snsTopicArn"]), chosen)


def category_of(run: RunRecord) -> NotifyOn | None:
    """Which `on` category a run's outcome is in; None while it runs (or when adopted)."""
    if run.phase is Phase.SUCCEEDED:
        return None if run.reason is Reason.ADOPTED else NotifyOn.SUCCEEDED
    if run.phase is Phase.FAILED:
        return NotifyOn.MISSED if run.reason is Reason.MISSED else NotifyOn.FAILED
    return None


def notification_id(owner: str, key: RunKey, phase: Phase, topic_arn: str) -> str:
    """sha256 of owner/name/runId/phase/topic: the same for every try of one notification."""
    text = "/".join((owner, key.name, key.run_id, phase.value, topic_arn))
    return hashlib.sha256(text.encode()).hexdigest()


def is_fifo(topic_arn: str) -> bool:
    """True for a FIFO topic (its name ends .fifo): it needs a group and a dedup id."""
    return topic_arn.endswith(".fifo")


def log_streams(run: RunRecord, task_arns: tuple[str, ...]) -> list[dict[str, str]]:
    """The awslogs streams of tasks, named as the awslogs driver names them.

    Only an inline taskDefinition's containers say their log options
    without a DescribeTaskDefinition; a taskDefinitionRef run lists none.
    """
    taskdef = (run.frozen_spec or {}).get("taskDefinition")
    if not isinstance(taskdef, Mapping):
        return []
    streams: list[dict[str, str]] = []
    for container in taskdef.get("containerDefinitions") or []:
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if config.get("logDriver") != "awslogs" or not group or not prefix:
            continue
        name = str(container.get("name"))
        for arn in task_arns:
            task_id = arn.rsplit("/", 1)[-1]
            streams.append(
                {"container": name, "group": str(group), "stream": f"{prefix}/{name}/{task_id}"}
            )
    return streams


def message_body(run: RunRecord, owner: str, cluster: str, notification: str) -> dict[str, Any]:
    """The documented JSON body of a run's notification (README "Notifications")."""
    attempts = []
    for attempt in run.attempts:
        attempts.append(
            {
                "number": attempt.number,
                "exitCodes": attempt.exit_codes,
                "stopCode": attempt.stop_code,
                "stoppedReason": next(
                    (t.stopped_reason for t in attempt.tasks if t.stopped_reason), None
                ),
                "taskArns": list(attempt.task_arns),
                "logStreams": log_streams(run, attempt.task_arns),
            }
        )
    every_task = tuple(arn for attempt in run.attempts for arn in attempt.task_arns)
    return {
        "kind": run.kind.value,
        "name": run.key.name,
        "runId": run.key.run_id,
        "phase": run.phase.value,
        "reason": run.reason.value,
        "message": run.message,
        "attempts": attempts,
        "taskArns": list(every_task),
        "logStreams": log_streams(run, every_task),
        "owner": owner,
        "cluster": cluster,
        "notificationId": notification,
        "finishedAt": None if run.finished_at is None else run.finished_at.isoformat(),
    }


def subject(run: RunRecord) -> str:
    """A short Subject: `NAME/RUN_ID Failed (Reason)`, within SNS's 100 characters."""
    text = f"{run.key} {run.phase.value} ({run.reason.value})"
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 3] + "..."
