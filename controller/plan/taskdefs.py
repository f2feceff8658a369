"""Reuse before register: which revision each desired spec runs (DESIGN.md §5).

Pure. Given the ACTIVE revisions of a family (with the spec hash we
computed from each described form and the spec-hash tag, if any), a desired
`taskDefinition` reuses, in order: a revision this owner registered with the
same hash; any revision with the same hash (registered by hand, by hako, by
Terraform, by another owner). Only when none matches is a revision
registered — once per (family, hash), however many runs share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.model.run import RevisionRecord
from controller.model.taskdef import to_register_input
from controller.model.taskdef_diff import FieldChange, field_changes, summarise_paths
from controller.plan.actions import RegisterTaskDefinition


@dataclass(frozen=True)
class TaskDefinitionChoice:
    """The revision a spec runs: an existing ARN, or one this pass registers."""

    spec_hash: str
    arn: str | None
    register: RegisterTaskDefinition | None = None


def find_revision(
    desired_hash: str, revisions: Sequence[RevisionRecord], owner: str
) -> RevisionRecord | None:
    """The newest ACTIVE revision matching the hash, ours first."""
    active = [r for r in revisions if r.status == "ACTIVE"]
    newest_first = sorted(active, key=lambda r: r.revision, reverse=True)
    for candidate in newest_first:
        if candidate.owner == owner and desired_hash in (
            candidate.tagged_hash,
            candidate.spec_hash,
        ):
            return candidate
    for candidate in newest_first:
        if desired_hash in (candidate.tagged_hash, candidate.spec_hash):
            return candidate
    return None


def choose_revision(
    task_definition: Mapping[str, Any],
    desired_hash: str,
    revisions: Sequence[RevisionRecord],
    owner: str,
    bodies: Mapping[str, Mapping[str, Any]],
) -> TaskDefinitionChoice:
    """Reuse a matching revision, or plan to register one (with the reason).

    `desired_hash` is `spec_hash(task_definition)`, which the caller holds
    already (`JobSpec.task_definition_hash`, computed once per loaded spec).
    """
    match = find_revision(desired_hash, revisions, owner)
    if match is not None:
        return TaskDefinitionChoice(desired_hash, match.arn)
    family = str(task_definition.get("family"))
    changes: tuple[FieldChange, ...] = ()
    if not revisions:
        reason = "new family"
    else:
        newest = max(revisions, key=lambda r: r.revision)
        body = bodies.get(newest.arn)
        if body is not None:
            changes = field_changes(body, task_definition)
            paths = summarise_paths(changes)
            reason = f"content changed since revision {newest.revision}: " + ", ".join(paths)
        else:
            reason = f"content changed: no ACTIVE revision has spec hash {desired_hash[:12]}"
    action = RegisterTaskDefinition(
        family=family,
        spec_hash=desired_hash,
        task_definition=to_register_input(task_definition),
        reason=reason,
        changes=changes,
    )
    return TaskDefinitionChoice(desired_hash, None, action)
