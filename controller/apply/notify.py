"""Publishes run notifications: the only place SNS is written (see `controller.plan.notify`).

Each notification follows the start protocol's order: the intent is
committed to the ledger, then SNS Publish, then the MessageId is committed.
`checkpoint` names the boundaries (`after-notify-intent`,
`after-publish`) so end-to-end tests can kill the process there; the
executor's `after-terminal` is the one between a run's terminal record and
its notification.

A failed Publish is reported as a failed outcome of the pass and tried
again by the next pass (its intent stays recorded, unpublished). A Publish
whose answer was lost (a crash, or a timeout after SNS accepted it) is
published again by the next pass: the message carries the same
`notificationId` (body field and message attribute, and the FIFO
MessageDeduplicationId), so consumers can drop the repeat.
"""

from __future__ import annotations

from datetime import datetime

from controller.apply.executor import ApplyResult, Checkpoint, Outcome, no_checkpoint
from controller.aws.sns import SnsGateway, SnsMessage
from controller.clock import Clock
from controller.errors import ControllerError, TerminalError
from controller.model.manifest import RunKey
from controller.model.notify import message_body, subject
from controller.model.run import Event, EventKind, RunRecord
from controller.plan.notify import (
    PlannedNotification,
    Specs,
    configured_rules,
    intent,
    new_watermarks,
    plan_notifications,
    spec_of_run,
)
from controller.state.ledger import Ledger

#: ApplyResult.counts keys (the metrics' controller_notifications_total{result}).
PUBLISHED = "NotificationPublished"
FAILED = "NotificationFailed"


class Notifier:
    """Records watermarks before a pass applies, and publishes what is due after it."""

    def __init__(
        self,
        sns: SnsGateway,
        ledger: Ledger,
        owner: str,
        clock: Clock,
        controller_topic: str | None = None,
        checkpoint: Checkpoint = no_checkpoint,
    ) -> None:
        self._sns = sns
        self._ledger = ledger
        self._owner = owner
        self._clock = clock
        self._topic = controller_topic or None
        self._checkpoint = checkpoint

    def prepare(self, specs: Specs, now: datetime) -> None:
        """Record the watermark of every rule seen configured for the first time (at `now`).

        `specs`: the job specs of the manifests in view (`manifest_specs`).
        """
        rules = configured_rules(self._topic, specs)
        if not rules:
            return
        for scope, topic in new_watermarks(rules, self._ledger.notify_watermarks()):
            self._ledger.set_notify_watermark(scope, topic, now)

    def sweep(self, specs: Specs, result: ApplyResult, only: RunKey | None = None) -> None:
        """Publish every due notification not yet recorded as published; outcomes go to `result`.

        `only`: a scoped pass (oneshot, trigger, stop) sweeps its one run.
        """
        try:
            watermarks = self._ledger.notify_watermarks()
            if not watermarks:
                return  # nothing was ever configured: no need to read the runs
            view = self._ledger.view()
            runs = (
                view.runs.values()
                if only is None
                else view.restricted_to(frozenset({only})).runs.values()
            )
            planned = plan_notifications(
                runs, self._topic, specs, watermarks, self._ledger.notifications(), self._owner
            )
        except ControllerError as exc:
            result.add(None, Outcome.FAILED, str(exc), subject="notifications")
            return
        for notification in planned:
            name = f"notify {notification.run.key} on {notification.topic_arn}"
            try:
                self._publish(notification, specs)
            except TerminalError as exc:
                result.add(None, Outcome.TERMINAL, str(exc), subject=name)
                result.counts[FAILED] += 1
            except ControllerError as exc:
                result.add(None, Outcome.FAILED, str(exc), subject=name)
                result.counts[FAILED] += 1
            else:
                result.add(None, Outcome.APPLIED, subject=name)
                result.counts[PUBLISHED] += 1

    def _publish(self, notification: PlannedNotification, specs: Specs) -> None:
        run = notification.run
        if not notification.has_intent:
            # Step 1: the intent is durable before anything is sent.
            self._ledger.record_notification_intent(intent(notification, self._clock.now()))
        self._checkpoint("after-notify-intent")
        # Step 2: Publish, with the notification id for consumers (and FIFO dedup).
        message = SnsMessage(
            topic_arn=notification.topic_arn,
            body=message_body(run, self._owner, _cluster(run, specs), notification.notification_id),
            subject=subject(run),
            attributes={
                "phase": run.phase.value,
                "name": run.key.name,
                "owner": self._owner,
                "notificationId": notification.notification_id,
            },
            deduplication_id=notification.notification_id,
            group_id=run.key.name,
        )
        message_id = self._sns.publish(message)
        self._checkpoint("after-publish")
        # Step 3: SNS accepted it.
        now = self._clock.now()
        self._ledger.record_notification_published(notification.notification_id, message_id, now)
        self._ledger.append_event(
            Event(
                now,
                run.key,
                EventKind.NOTIFIED,
                f"{run.phase.value} published to {notification.topic_arn} (MessageId {message_id})",
            )
        )


def _cluster(run: RunRecord, specs: Specs) -> str:
    """The run's cluster, from the spec it is announced under."""
    cluster = (spec_of_run(run, specs) or {}).get("cluster")
    return cluster if isinstance(cluster, str) else ""
