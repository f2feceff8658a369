"""Pruning tables: what is deregistered or deleted, and what is never touched."""

from __future__ import annotations

from controller.model.run import RevisionRecord
from controller.plan.actions import DeleteTaskDefinitions, DeregisterTaskDefinition
from controller.plan.prune import PruneInput, prune_revisions

OWNER = "team-a"


def rev(
    number: int,
    family: str = "etl",
    owner: str | None = OWNER,
    status: str = "ACTIVE",
    spec: str | None = None,
) -> RevisionRecord:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{number}"
    return RevisionRecord(arn, family, number, spec or f"hash-{family}-{number}", owner, status)


def given(**overrides: object) -> PruneInput:
    values: dict[str, object] = {
        "owner": OWNER,
        "keep_revisions": 2,
        "delete_inactive": False,
        "in_use": frozenset(),
        "desired_hashes": frozenset(),
        "protected_families": frozenset(),
    }
    values.update(overrides)
    return PruneInput(**values)  # type: ignore[arg-type]


def index(*records: RevisionRecord) -> dict[str, RevisionRecord]:
    return {r.arn: r for r in records}


def deregistered(actions: list[DeregisterTaskDefinition | DeleteTaskDefinitions]) -> list[int]:
    return [a.revision for a in actions if isinstance(a, DeregisterTaskDefinition)]


def test_keeps_the_newest_owned_revisions_and_deregisters_the_rest() -> None:
    actions = prune_revisions(index(*(rev(n) for n in range(1, 6))), given())
    assert deregistered(actions) == [3, 2, 1]


def test_revisions_of_others_are_never_candidates_even_in_the_same_family() -> None:
    records = index(
        rev(1, owner=None), rev(2, owner="someone-else"), rev(3), rev(4), rev(5), rev(6, owner=None)
    )
    assert deregistered(prune_revisions(records, given())) == [3]


def test_revisions_in_use_are_kept_beyond_the_limit() -> None:
    records = index(*(rev(n) for n in range(1, 6)))
    in_use = frozenset({records[next(iter(records))].arn})  # revision 1: an unfinished run
    actions = prune_revisions(
        records, given(in_use=in_use, desired_hashes=frozenset({"hash-etl-2"}))
    )
    assert deregistered(actions) == [3]


def test_a_revision_named_by_a_ref_is_kept() -> None:
    records = index(*(rev(n) for n in range(1, 5)))
    actions = prune_revisions(records, given(referenced=frozenset({"etl:1"})))
    assert deregistered(actions) == [2]


def test_protected_families_are_skipped() -> None:
    records = index(*(rev(n) for n in range(1, 6)), *(rev(n, family="web") for n in range(1, 6)))
    actions = prune_revisions(records, given(protected_families=frozenset({"etl"})))
    assert {a.family for a in actions} == {"web"}


def test_inactive_revisions_are_deleted_in_batches_of_ten_only_when_asked() -> None:
    records = index(*(rev(n, status="INACTIVE") for n in range(1, 24)), rev(24), rev(25))
    assert prune_revisions(records, given()) == []
    actions = prune_revisions(records, given(delete_inactive=True))
    batches = [a for a in actions if isinstance(a, DeleteTaskDefinitions)]
    assert [len(b.arns) for b in batches] == [10, 10, 3]
    foreign = index(*(rev(n, owner=None, status="INACTIVE") for n in range(1, 4)))
    assert prune_revisions(foreign, given(delete_inactive=True)) == []


def test_a_hundred_spec_changes_leave_keep_revisions_plus_in_use() -> None:
    records = index(*(rev(n) for n in range(1, 101)))
    actions = prune_revisions(
        records, given(keep_revisions=5, in_use=frozenset({rev(40).arn, rev(41).arn}))
    )
    remaining = 100 - len(deregistered(actions))
    assert remaining == 5 + 2
