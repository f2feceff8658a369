"""ECS state-change events in the sandbox: what ECS sends to EventBridge, through moto's rules.

Real ECS emits an `ECS Task State Change` event to the account's default
event bus whenever a task's lastStatus changes (RunTask's PENDING included),
and an `ECS Container Instance State Change` when an instance registers or
changes status. moto emits none. The sandbox's agent and fleet call this
emitter at those moments; it hands the event to moto's EventBridge backend,
which matches it against the rules that exist (with their event patterns)
and delivers it to their targets — an SQS queue for `--events-queue`. So
the end-to-end path is the production one: the rule's pattern decides
whether the controller hears of a change, exactly as in AWS.

The detail carries the fields the controller and the documentation rely on
(taskArn, clusterArn, lastStatus, desiredStatus, startedBy, group,
stopCode, stoppedReason, containers with exit codes, version); see
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from controller.runtime.ecs_events import INSTANCE_STATE_CHANGE, TASK_STATE_CHANGE


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class EcsEventEmitter:
    """Puts ECS state-change events on moto's default event bus."""

    def __init__(self, events_backend: Any) -> None:
        self._events = events_backend
        self._versions: dict[str, int] = {}
        self.emitted = 0

    def _put(self, detail_type: str, resource: str, detail: dict[str, Any]) -> None:
        if not any(bus.rules for bus in self._events.event_buses.values()):
            return  # nobody listens: skip the work (real ECS emits regardless)
        self._events.put_events(
            [
                {
                    "Source": "aws.ecs",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "Resources": [resource],
                }
            ]
        )
        self.emitted += 1

    def task_changed(self, task: Any, now: datetime) -> None:
        """A task's lastStatus changed: one `ECS Task State Change`."""
        arn = str(task.task_arn)
        version = self._versions.get(arn, 0) + 1
        self._versions[arn] = version
        self._put(
            TASK_STATE_CHANGE,
            arn,
            {
                "clusterArn": task.cluster_arn,
                "taskArn": arn,
                "taskDefinitionArn": task.task_definition_arn,
                "containerInstanceArn": task.container_instance_arn,
                "lastStatus": task.status,
                "desiredStatus": task.desired_status,
                "startedBy": task.started_by or None,
                "group": getattr(task, "group", None),
                "launchType": task.launch_type,
                "stopCode": task.stop_code,
                "stoppedReason": task.stopped_reason,
                "createdAt": _time(task.created_at),
                "startedAt": _time(task.started_at),
                "stoppedAt": _time(task.stopped_at),
                "updatedAt": _time(now),
                "version": version,
                "containers": [
                    {
                        "containerArn": c.container_arn,
                        "name": c.name,
                        "lastStatus": c.last_status,
                        "exitCode": c.exitCode,
                    }
                    for c in task.containers
                ],
            },
        )

    def instance_changed(self, instance: Any, cluster_arn: str, now: datetime) -> None:
        """A container instance registered or changed status."""
        arn = str(instance.container_instance_arn)
        self._put(
            INSTANCE_STATE_CHANGE,
            arn,
            {
                "clusterArn": cluster_arn,
                "containerInstanceArn": arn,
                "ec2InstanceId": instance.ec2_instance_id,
                "status": instance.status,
                "agentConnected": instance.agent_connected,
                "registeredAt": _time(getattr(instance, "registered_at", None)),
                "updatedAt": _time(now),
            },
        )
