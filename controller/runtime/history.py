"""The lost-ledger guard: an empty ledger must not restart this owner's history.

The ledger is the only memory of which runs already ran. ECS forgets a
RunTask client token after 24 hours and a stopped task after about an hour,
so a ledger that was deleted, emptied or pointed at a new file would make
every finished run start again. Before a pass plans on a ledger that holds
no runs and no revisions (a new one, or a lost one — the check costs nothing
in steady state), it asks AWS whether this owner has a past there:

* the ACTIVE revisions of the current manifests' task-definition families
  that carry this owner's tag (ListTaskDefinitions per family, then
  DescribeTaskDefinition with tags; the descriptions are cached, so the
  pass's own observation does not repeat them);
* the tasks started by this owner (`startedBy = ejc/<owner>`, RUNNING and
  STOPPED) on the clusters the manifests name (ListTasks).

The reads of different families and clusters overlap on the pass's pool
(`--max-concurrency`; a cluster's two listings stay in order): at 150 ms per
ECS call the six reads of 4 families on one cluster took 1 s one after
another, the largest serial part of a first pass (bench/latency.py).

Only these places are checked: revisions in families no current manifest
uses, INACTIVE ones, and stopped tasks ECS has already forgotten are not.
If anything is found the pass refuses to start anything (`LostLedger`, a
setup error: exit 2) unless `--adopt-history` was given; then every current
manifest's run is recorded as done instead (`controller.plan.adopt`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from controller.aws.ecs import EcsGateway
from controller.errors import TerminalError, UsageError
from controller.model.identity import TAG_OWNER, started_by
from controller.model.manifest import DesiredSet
from controller.model.run import LedgerView
from controller.workers import Workers


class LostLedger(UsageError):
    """The ledger is empty but AWS holds this owner's history: starting anything could repeat it."""


@dataclass(frozen=True)
class OwnerHistory:
    """What AWS holds that this owner created, where the guard looks."""

    revisions: int = 0
    tasks: int = 0

    def __bool__(self) -> bool:
        return bool(self.revisions or self.tasks)


def ledger_is_new(view: LedgerView) -> bool:
    """True when the ledger remembers no run, no revision and no CronJob schedule (new, or lost).

    A ledger that recorded a CronJob's watermark was written by a pass, so
    it is not lost: without this, a source of CronJobs not yet due re-ran
    the guard's AWS listings on every pass.
    """
    return not view.runs and not view.revisions and not view.cron_last_scheduled


def owner_history(
    ecs: EcsGateway, desired: DesiredSet, owner: str, workers: Workers | None = None
) -> OwnerHistory:
    """Count the owner's revisions in the manifests' families and its tasks on their clusters.

    Each family's revisions and each cluster's listings are read concurrently on `workers`.
    """
    specs = [
        *(job.spec for job in desired.job_runs.values()),
        *(cron.job_template for cron in desired.cron_jobs.values()),
    ]
    families = sorted({s.family for s in specs if s.family is not None})
    clusters = sorted({s.cluster for s in specs})

    def owned_revisions(family: str) -> tuple[int, frozenset[str]]:
        owned = sum(
            1
            for arn in ecs.list_active_revisions(family)
            if ecs.describe_revision(arn).tags.get(TAG_OWNER) == owner
        )
        return owned, frozenset()

    def owned_tasks(cluster: str) -> tuple[int, frozenset[str]]:
        # RUNNING before STOPPED, one after the other: a task that stops
        # meanwhile is then in one listing at least (in both, at worst).
        arns: set[str] = set()
        try:
            for status in ("RUNNING", "STOPPED"):
                arns.update(ecs.list_tasks(cluster, started_by(owner), status))
        except TerminalError:
            pass  # no such cluster (yet): no tasks there
        return 0, frozenset(arns)

    reads: list[Callable[[], tuple[int, frozenset[str]]]] = [
        *(partial(owned_revisions, family) for family in families),
        *(partial(owned_tasks, cluster) for cluster in clusters),
    ]
    found = (workers or Workers(1)).map(lambda read: read(), reads)
    tasks = frozenset[str]().union(*(arns for _, arns in found))
    return OwnerHistory(revisions=sum(n for n, _ in found), tasks=len(tasks))


def lost_ledger_message(ledger: str, owner: str, history: OwnerHistory) -> str:
    """The refusal, with what was found and the two ways out."""
    return (
        f"ledger {ledger} is empty but owner {owner} has {history.revisions}"
        f" task-definition revisions / {history.tasks} tasks in AWS: restore the ledger,"
        " or pass --adopt-history to record every current manifest's run as already done"
    )


def must_adopt(
    ecs: EcsGateway,
    desired: DesiredSet,
    owner: str,
    ledger: str,
    *,
    adopt: bool,
    workers: Workers | None = None,
) -> bool:
    """For a new ledger: True to adopt the history found, False when there is none.

    Raises LostLedger when there is history and adopting was not asked for.
    """
    history = owner_history(ecs, desired, owner, workers)
    if not history:
        return False
    if not adopt:
        raise LostLedger(lost_ledger_message(ledger, owner, history))
    return True
