"""The RunTask request of an attempt, built from a frozen spec (DESIGN.md §4).

Pure and deterministic: the same (spec, revision, owner, run, attempt) always
gives the same request, which is what lets a repeated RunTask after a crash
carry the same clientToken without ECS answering ConflictException.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.model.identity import (
    COMPLETION_INDEX_VARIABLE,
    TAG_ATTEMPT,
    TAG_INDEX,
    TAG_KIND,
    TAG_OWNER,
    TAG_RUN,
    TAG_RUN_ID,
    client_token,
    started_by,
)
from controller.model.manifest import JobSpec, Kind, RunKey
from controller.model.taskdef import strip_nulls

#: ECS allows 50 tags per resource; ours take five (six on an index's tasks).
MAX_TAGS = 50


def run_task_request(
    spec: JobSpec,
    task_definition_arn: str,
    owner: str,
    key: RunKey,
    kind: Kind,
    attempt: int,
    containers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The RunTask parameters for one attempt (of one index, when `key` has one).

    An index's tasks carry the index tag and JOB_COMPLETION_INDEX on every
    container in `containers` (the revision's containers), as an override:
    the revision stays the one every index shares.
    """
    passthrough = strip_nulls(dict(spec.run_task))
    ours = {
        TAG_OWNER: owner,
        TAG_KIND: kind.value,
        TAG_RUN: key.name,
        TAG_RUN_ID: key.run_id,
        TAG_ATTEMPT: str(attempt),
    }
    if key.index is not None:
        ours[TAG_INDEX] = str(key.index)
        passthrough["overrides"] = with_completion_index(
            passthrough.get("overrides") or {}, containers, key.index
        )
    user_tags = [t for t in passthrough.pop("tags", None) or [] if t.get("key") not in ours][
        : MAX_TAGS - len(ours)
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


def with_completion_index(
    overrides: Mapping[str, Any], containers: tuple[str, ...], index: int
) -> dict[str, Any]:
    """`overrides` with JOB_COMPLETION_INDEX=index in the environment of every container.

    A container the manifest already overrides keeps its own override, with
    the variable added; every other container gets an override of its own.
    """
    variable = {"name": COMPLETION_INDEX_VARIABLE, "value": str(index)}
    merged: list[dict[str, Any]] = []
    seen: set[str] = set()
    for override in overrides.get("containerOverrides") or []:
        environment = [
            e for e in override.get("environment") or [] if e.get("name") != variable["name"]
        ]
        merged.append({**override, "environment": [*environment, variable]})
        seen.add(str(override.get("name")))
    merged.extend(
        {"name": name, "environment": [variable]} for name in containers if name not in seen
    )
    return {**overrides, "containerOverrides": merged}
