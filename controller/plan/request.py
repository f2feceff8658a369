"""The RunTask request of an attempt, built from a frozen spec (DESIGN.md §4).

Pure and deterministic: the same (spec, revision, owner, run, attempt) always
gives the same request, which is what lets a repeated RunTask after a crash
carry the same clientToken without ECS answering ConflictException.
"""

from __future__ import annotations

from typing import Any

from controller.model.identity import (
    TAG_ATTEMPT,
    TAG_KIND,
    TAG_OWNER,
    TAG_RUN,
    TAG_RUN_ID,
    client_token,
    started_by,
)
from controller.model.manifest import JobSpec, Kind, RunKey
from controller.model.taskdef import strip_nulls

#: ECS allows 50 tags per resource; ours take five.
MAX_USER_TAGS = 45


def run_task_request(
    spec: JobSpec,
    task_definition_arn: str,
    owner: str,
    key: RunKey,
    kind: Kind,
    attempt: int,
) -> dict[str, Any]:
    """The RunTask parameters for one attempt."""
    passthrough = strip_nulls(dict(spec.run_task))
    ours = {
        TAG_OWNER: owner,
        TAG_KIND: kind.value,
        TAG_RUN: key.name,
        TAG_RUN_ID: key.run_id,
        TAG_ATTEMPT: str(attempt),
    }
    user_tags = [t for t in passthrough.pop("tags", None) or [] if t.get("key") not in ours][
        :MAX_USER_TAGS
    ]
    request: dict[str, Any] = {
        **passthrough,
        "cluster": spec.cluster,
        "taskDefinition": task_definition_arn,
        "count": spec.count,
        "startedBy": started_by(owner),
        "clientToken": client_token(owner, key, attempt),
        "tags": [{"key": k, "value": v} for k, v in ours.items()] + user_tags,
    }
    return request
