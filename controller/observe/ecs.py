"""Read ECS for one pass -> ObservedState (read-only; DESIGN.md §7 "observe").

The cost of a pass must not grow with the number of finished runs: per
cluster in play we list only the RUNNING tasks this owner started (one
ListTasks page per 100), and describe only tasks whose outcome the ledger
does not know yet — running ones, and ledger attempts that left the RUNNING
list since the last pass. Stopped tasks are listed only while an intent
without a task ARN (a crash) needs resolving.

Task definitions are read only for runs about to start. Described revisions
are immutable, so they go into the pass's revision cache (the ledger in a
real pass, so a later process does not describe them again; memory in a dry
run): observing writes nothing else, and nothing at all in a dry run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.aws.ecs import DESCRIBE_BATCH, DescribedRevision, EcsGateway, revision_record
from controller.errors import ControllerError, TerminalError, TransientError
from controller.model.identity import started_by
from controller.model.observed import Needs, ObservedState, ObservedTask, ResolvedRef
from controller.model.run import LedgerView, RevisionRecord, RunRecord, TaskRecord
from controller.model.taskdef import container_names, essential_containers
from controller.state.ledger import RevisionCache
from controller.workers import Workers


@dataclass
class ObserveReport:
    """Problems met while observing (each one a transient error of the pass)."""

    errors: list[str] = field(default_factory=list)


def open_tasks(runs: Iterable[RunRecord]) -> dict[str, dict[str, TaskRecord]]:
    """Cluster -> task ARN -> the ledger's record of each task whose end it has not recorded."""
    by_cluster: dict[str, dict[str, TaskRecord]] = {}
    for record in runs:
        if record.phase.terminal and all(t.stopped for a in record.attempts for t in a.tasks):
            continue
        for attempt in record.attempts:
            cluster = str(attempt.request.get("cluster", ""))
            for task in attempt.tasks:
                if not task.stopped:
                    by_cluster.setdefault(cluster, {})[task.arn] = task
    return by_cluster


def clusters_with_open_intents(runs: Iterable[RunRecord]) -> set[str]:
    """Clusters where an attempt's RunTask has no recorded answer (a crash, a lost reply)."""
    return {
        str(a.request.get("cluster", ""))
        for r in runs
        if not r.phase.terminal
        for a in r.attempts
        if not a.submitted and not a.finished
    }


def observe(
    ecs: EcsGateway,
    needs: Needs,
    view: LedgerView,
    cache: RevisionCache,
    owner: str,
    report: ObserveReport,
    *,
    workers: Workers | None = None,
    list_running: bool = True,
) -> ObservedState:
    """Read what the plan needs from ECS (independent reads overlap on `workers`).

    `list_running` False (a scoped pass, over the runs of `view` only)
    describes just those runs' open tasks, listing a cluster's tasks only
    where one of them has an unanswered intent: the owner's other running
    tasks are no concern of that pass.
    """
    workers = workers or Workers(1)
    tasks: dict[str, ObservedTask] = {}
    missing: set[str] = set()
    unreadable: set[str] = set()
    open_arns = {c: set(t) for c, t in open_tasks(view.runs.values()).items()}
    intent_clusters = clusters_with_open_intents(view.runs.values())
    clusters = sorted(needs.clusters | set(open_arns))

    def listed(cluster: str) -> list[str] | ControllerError:
        """What to describe in `cluster` (or why it cannot be read).

        Running tasks, plus ledger tasks that left the RUNNING list, plus
        (only after a crash) recently stopped ones to find tagged tasks.
        """
        try:
            running: list[str] = []
            if list_running or cluster in intent_clusters:
                running = ecs.list_tasks(cluster, started_by(owner), "RUNNING")
            stopped: list[str] = []
            if cluster in intent_clusters:
                stopped = ecs.list_tasks(cluster, started_by(owner), "STOPPED")
        except (TransientError, TerminalError) as exc:
            return exc
        return sorted(set(running) | open_arns.get(cluster, set()) | set(stopped))

    # Listing, then describing: two rounds of independent calls on the pool
    # (DescribeTasks takes 100 ARNs, so one round of every cluster's batches).
    wanted_by_cluster: dict[str, list[str]] = {}
    for cluster, listing in zip(clusters, workers.map(listed, clusters), strict=True):
        if isinstance(listing, ControllerError):
            unreadable.add(cluster)
            report.errors.append(f"cluster {cluster}: {listing}")
        else:
            wanted_by_cluster[cluster] = listing
    batches = [
        (cluster, arns[start : start + DESCRIBE_BATCH])
        for cluster, arns in wanted_by_cluster.items()
        for start in range(0, len(arns), DESCRIBE_BATCH)
    ]

    def describe_batch(
        batch: tuple[str, list[str]],
    ) -> tuple[list[ObservedTask], list[str]] | ControllerError:
        try:
            return ecs.describe_tasks(*batch)
        except (TransientError, TerminalError) as exc:
            return exc

    for (cluster, _), batch in zip(batches, workers.map(describe_batch, batches), strict=True):
        if isinstance(batch, ControllerError):
            if cluster not in unreadable:
                unreadable.add(cluster)
                report.errors.append(f"cluster {cluster}: {batch}")
            continue
        found, gone = batch
        tasks.update((t.arn, t) for t in found)
        missing.update(gone)
    for cluster in wanted_by_cluster:
        if cluster in unreadable:
            continue
        # A ledger task that is neither described nor reported missing is
        # unknown to ECS as well (ECS drops failures for foreign ARNs at times).
        missing.update(a for a in open_arns.get(cluster, set()) if a not in tasks)

    families: dict[str, tuple[RevisionRecord, ...]] = {}
    bodies: dict[str, dict[str, object]] = {}

    def revisions_of(
        family: str,
    ) -> tuple[tuple[RevisionRecord, ...], DescribedRevision | None] | ControllerError:
        try:
            wanted = needs.family_hashes.get(family, frozenset())
            return _family_revisions(ecs, family, view, cache, wanted)
        except ControllerError as exc:
            return exc

    names = sorted(needs.families)
    for family, revisions in zip(names, workers.map(revisions_of, names), strict=True):
        if isinstance(revisions, ControllerError):
            report.errors.append(f"task-definition family {family}: {revisions}")
            continue
        families[family], newest = revisions
        if newest is not None:
            bodies[newest.arn] = dict(newest.task_definition)

    refs: dict[str, ResolvedRef] = {}
    for ref in sorted(needs.refs):
        try:
            described = ecs.describe_revision(ref)
        except TerminalError as exc:
            refs[ref] = ResolvedRef(ref=ref, arn=None, error=f"taskDefinitionRef {ref}: {exc}")
            continue
        except TransientError as exc:
            report.errors.append(f"taskDefinitionRef {ref}: {exc}")
            continue
        if described.status != "ACTIVE":
            refs[ref] = ResolvedRef(
                ref=ref, arn=None, error=f"{described.arn} is {described.status}"
            )
            continue
        refs[ref] = ResolvedRef(
            ref=ref,
            arn=described.arn,
            essential_containers=essential_containers(described.task_definition),
            containers=container_names(described.task_definition),
        )
    return ObservedState(
        tasks=tasks,
        missing_tasks=frozenset(missing - set(tasks)),
        families=families,
        refs=refs,
        unreadable_clusters=frozenset(unreadable),
        revision_bodies=bodies,
    )


def _family_revisions(
    ecs: EcsGateway, family: str, view: LedgerView, cache: RevisionCache, wanted: frozenset[str]
) -> tuple[tuple[RevisionRecord, ...], DescribedRevision | None]:
    """The family's ACTIVE revisions (described once per revision, ever) and the newest one.

    The newest is described only when some wanted hash has no revision yet:
    its body explains the change `diff` reports for the registration.
    """
    records: list[RevisionRecord] = []
    for arn in ecs.list_active_revisions(family):
        cached = view.revisions.get(arn)
        if cached is None:
            record = revision_record(ecs.describe_revision(arn))
            cache.put_revision(record)
            records.append(record)
        else:
            records.append(cached)
    newest: DescribedRevision | None = None
    matched = {h for r in records for h in (r.spec_hash, r.tagged_hash) if h is not None}
    if records and not wanted <= matched:
        newest_record = max(records, key=lambda r: r.revision)
        try:
            newest = ecs.describe_revision(newest_record.arn)
        except ControllerError:
            newest = None  # only used to explain a change; not worth failing for
    return tuple(records), newest
