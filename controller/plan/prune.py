"""Revision pruning: keep families bounded, and never touch what is not ours (DESIGN.md §5).

Pure. Per family this owner registered into, keep the newest
`keep_revisions` ACTIVE revisions it owns plus every revision in use (by a
desired manifest's spec, by a run that has not finished, or named by a
`taskDefinitionRef`); deregister its other ACTIVE revisions; with
`delete_inactive`, delete its INACTIVE ones (DeleteTaskDefinitions takes at
most 10 ARNs a call).

What the planner knows of revisions comes from the ledger, which records
every revision this controller registered or described (they are
immutable), so a steady-state pass prunes without a single listing call.
Revisions without this owner's tag are never candidates: registered by
hand, by Terraform, by another tool or another owner, they are not ours.
The executor checks the owner tag again on the live revision before it
deregisters anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.model.run import RevisionRecord
from controller.plan.actions import DeleteTaskDefinitions, DeregisterTaskDefinition

#: DeleteTaskDefinitions accepts at most 10 revisions per call.
DELETE_BATCH = 10


@dataclass(frozen=True)
class PruneSettings:
    """The pruning knobs of a pass (`--keep-revisions`, `--delete-inactive`)."""

    keep_revisions: int = 5
    delete_inactive: bool = False


@dataclass(frozen=True)
class PruneInput:
    """What pruning needs to know besides the revisions themselves."""

    owner: str
    keep_revisions: int
    delete_inactive: bool
    #: ARNs a desired manifest or an unfinished run uses
    in_use: frozenset[str]
    #: spec hashes of desired inline task definitions (their revision is in use)
    desired_hashes: frozenset[str]
    #: families that must not be pruned (annotation, or a bare-family ref)
    protected_families: frozenset[str]
    #: "family:revision" strings named by taskDefinitionRef
    referenced: frozenset[str] = frozenset()


def prune_revisions(
    revisions: Mapping[str, RevisionRecord], given: PruneInput
) -> list[DeregisterTaskDefinition | DeleteTaskDefinitions]:
    """The deregistrations and deletions that bring each owned family within bounds."""
    ours = [r for r in revisions.values() if r.owner == given.owner]
    by_family: dict[str, list[RevisionRecord]] = {}
    for record in ours:
        by_family.setdefault(record.family, []).append(record)
    actions: list[DeregisterTaskDefinition | DeleteTaskDefinitions] = []
    for family in sorted(by_family):
        if family in given.protected_families:
            continue
        records = by_family[family]
        active = sorted(
            (r for r in records if r.status == "ACTIVE"), key=lambda r: r.revision, reverse=True
        )
        kept = {r.arn for r in active[: given.keep_revisions]}
        for record in active:
            if record.arn in kept or _in_use(record, given):
                continue
            reason = (
                f"beyond the newest {given.keep_revisions} owned ACTIVE revisions of {family} "
                "and not used by any manifest or unfinished run"
            )
            actions.append(
                DeregisterTaskDefinition(
                    arn=record.arn, family=family, revision=record.revision, reason=reason
                )
            )
        if given.delete_inactive:
            inactive = sorted(
                (r for r in records if r.status == "INACTIVE" and not _in_use(r, given)),
                key=lambda r: r.revision,
            )
            actions.extend(_delete_batches(family, inactive))
    return actions


def _in_use(record: RevisionRecord, given: PruneInput) -> bool:
    return (
        record.arn in given.in_use
        or f"{record.family}:{record.revision}" in given.referenced
        or record.spec_hash in given.desired_hashes
        or (record.tagged_hash is not None and record.tagged_hash in given.desired_hashes)
    )


def _delete_batches(family: str, inactive: Iterable[RevisionRecord]) -> list[DeleteTaskDefinitions]:
    records = list(inactive)
    batches = []
    for start in range(0, len(records), DELETE_BATCH):
        chunk = records[start : start + DELETE_BATCH]
        batches.append(
            DeleteTaskDefinitions(
                arns=tuple(r.arn for r in chunk),
                family=family,
                reason=f"INACTIVE revisions of {family} owned here (--delete-inactive)",
            )
        )
    return batches
