"""One level-triggered pass: read everything, decide, then write.

    desired  = load(source.snapshot())          what the user wants
    observed = observe(ecs, needs, ledger)      what exists
    plan     = make_plan(desired, observed, ledger, now)
    result   = executor.apply(plan, summary)    the only writes

`reconcile --once`, `diff` and the `run` loop all call `reconcile_once`;
they differ only in the executor they pass (real or dry-run). The real one
also records the pass's summary (invalid manifests, guards, CronJob
schedules) in the ledger, which is what `status` shows besides the runs,
and publishes the run notifications due (`controller.apply.notify`).

On a ledger with no runs and no revisions the pass first runs the
lost-ledger guard (`controller.runtime.history`): this owner's history in
AWS makes it refuse (LostLedger), or, with `--adopt-history`, record the
desired runs as done instead of planning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from controller.apply.executor import ApplyResult
from controller.apply.notify import Notifier
from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.clock import Clock
from controller.errors import ControllerError, TerminalError, TransientError
from controller.model.loader import LoadResult, ManifestLoader
from controller.model.manifest import DesiredSet
from controller.observe.capacity import ObservedCapacity, ScaleInCandidates, observe_capacity
from controller.observe.ecs import ObserveReport, observe
from controller.plan.actions import Plan
from controller.plan.adopt import adopt_history
from controller.plan.cronjobs import schedule_cron_jobs
from controller.plan.notify import manifest_specs
from controller.plan.planner import (
    DEFAULT_MAX_ORPHAN_FRACTION,
    DesiredInput,
    desired_runs,
    make_plan,
    needs,
    protected_families,
    scale_in_needs,
)
from controller.plan.prune import PruneSettings
from controller.plan.scale_in import ScaleInSettings
from controller.runtime.history import ledger_is_new, must_adopt
from controller.sources.snapshot import Snapshot, Source
from controller.state.ledger import (
    CronSchedule,
    GuardWarning,
    LedgerReader,
    LedgerView,
    PassSummary,
    RevisionCache,
)
from controller.workers import Workers


class PlanExecutor(Protocol):
    """Anything that can carry out a plan (the real executor or a dry run)."""

    def apply(self, plan: Plan, summary: PassSummary | None = None) -> ApplyResult:
        """Carry out the plan, then record `summary` as the last pass's (a dry run does not)."""
        ...


@dataclass
class PassContext:
    """The collaborators of a pass, built once by the CLI or the loop."""

    source: Source
    loader: ManifestLoader
    ecs: EcsGateway
    #: read before anything is written; the pass's only writes go through the executor
    ledger: LedgerReader
    #: where observed revisions are remembered: the ledger, or memory in a dry run
    revision_cache: RevisionCache
    executor: PlanExecutor
    clock: Clock
    owner: str
    max_orphan_fraction: float = DEFAULT_MAX_ORPHAN_FRACTION
    #: None turns pruning off (--no-prune)
    prune: PruneSettings | None = field(default_factory=PruneSettings)
    stop_orphans: bool = False
    #: capacity planning needs both; without them runs just wait for room
    autoscaling: AutoScalingGateway | None = None
    ecs_instances: EcsInstanceGateway | None = None
    #: --no-scale-in, --max-scale-in-per-pass (a group still has to opt in by its tag)
    scale_in: ScaleInSettings = field(default_factory=ScaleInSettings)
    #: --adopt-history: a new ledger beside this owner's AWS history records
    #: the desired runs as done instead of refusing
    adopt_history: bool = False
    #: how the lost-ledger guard names the ledger (its path, or dynamodb://TABLE)
    ledger_name: str = "(unnamed)"
    #: the pass's bounded pool: observe's reads overlap on it (apply has its own reference)
    workers: Workers = field(default_factory=lambda: Workers(1))
    #: publishes run notifications after the actions (None: a dry run, which publishes nothing)
    notifier: Notifier | None = None


@dataclass
class PassResult:
    """Everything a pass learnt and did."""

    snapshot: Snapshot
    loaded: LoadResult
    plan: Plan
    applied: ApplyResult
    observe_errors: list[str] = field(default_factory=list)
    #: what the pass read about Auto Scaling groups (None: no run waited for one)
    capacity: ObservedCapacity | None = None

    @property
    def clean(self) -> bool:
        """True when every manifest was valid, every run planned and every action succeeded."""
        return (
            not self.loaded.errors
            and self.applied.ok
            and not self.observe_errors
            and not self.plan.warnings
            and not self.plan.errors
        )


def reconcile_once(ctx: PassContext) -> PassResult:
    """One level-triggered pass: read everything, decide, then write."""
    snapshot = ctx.source.snapshot()
    loaded = ctx.loader.load(snapshot.files, snapshot.errors, snapshot.warnings)
    view = ctx.ledger.view()
    now = ctx.clock.now()  # one instant for the whole pass
    if ledger_is_new(view):
        try:
            adopting = must_adopt(
                ctx.ecs,
                loaded.desired,
                ctx.owner,
                ctx.ledger_name,
                adopt=ctx.adopt_history,
                workers=ctx.workers,
            )
        except TransientError as exc:
            # Whether history would repeat is unknown: start nothing this pass.
            return PassResult(snapshot, loaded, Plan(), ApplyResult(), [f"ledger check: {exc}"])
        if adopting:
            adopted = adopt_history(loaded.desired, now)
            return PassResult(snapshot, loaded, adopted, ctx.executor.apply(adopted))
    # Due occurrences join the desired runs so that their needs are observed;
    # make_plan settles concurrencyPolicy once observation shows what still runs.
    scheduled = schedule_cron_jobs(loaded.desired.cron_jobs, view, now)
    desired = DesiredInput(
        runs={**desired_runs(loaded.desired), **scheduled.runs},
        invalid_names=loaded.invalid_names,
        complete=not loaded.incomplete,
        protected_families=protected_families(loaded.desired),
        names=frozenset(m.name for m in loaded.desired.manifests()),
        cron=scheduled,
    )
    report = ObserveReport()
    plan, capacity = observe_and_plan(ctx, desired, view, now, report, loaded.desired)
    summary = PassSummary(
        at=now,
        revision=snapshot.revision,
        invalid=loaded.errors,
        warnings=tuple(GuardWarning(warning, now) for warning in plan.warnings),
        cron_jobs=tuple(CronSchedule.of(c) for _, c in sorted(loaded.desired.cron_jobs.items())),
        capacity_groups=plan.capacity_groups,
    )
    specs = manifest_specs(loaded.desired) if ctx.notifier is not None else {}
    if ctx.notifier is not None:
        # Before anything is applied, so a run ending in this pass is announced.
        try:
            ctx.notifier.prepare(specs, now)
        except ControllerError as exc:
            report.errors.append(f"notifications: {exc}")
    applied = ctx.executor.apply(plan, summary)
    if ctx.notifier is not None:
        # After the actions: every run this pass ended, and any a crash left unannounced.
        ctx.notifier.sweep(specs, applied)
    return PassResult(snapshot, loaded, plan, applied, report.errors, capacity)


def observe_and_plan(
    ctx: PassContext,
    desired: DesiredInput,
    view: LedgerView,
    now: datetime,
    report: ObserveReport,
    manifests: DesiredSet | None = None,
    *,
    scoped: bool = False,
) -> tuple[Plan, ObservedCapacity | None]:
    """Observe what `desired` and `view` need, then plan: the middle of every pass.

    `scoped` (a pass over one run, `controller.runtime.one_run`) reads only
    that run's tasks instead of every running task of the owner, and plans
    no pruning, no orphan stops and no scale-in (exclusive work, DESIGN.md
    §9); the full pass plans with its options. `manifests` (the full pass's
    loaded set) tells scale-in which groups the source's runs use.
    """
    wanted = needs(desired, view)
    observed = observe(
        ctx.ecs,
        wanted,
        view,
        ctx.revision_cache,
        ctx.owner,
        report,
        workers=ctx.workers,
        list_running=not scoped,
    )
    capacity = None
    scale_in = None if scoped or manifests is None else ctx.scale_in
    groups = scale_in_needs(manifests, view) if scale_in and manifests is not None else {}
    candidates = ScaleInCandidates(
        clusters=groups if scale_in is not None and scale_in.enabled else {},
        owner=ctx.owner,
        enabled=scale_in is not None and scale_in.enabled,
        marked=frozenset(
            i.group for i in view.idle_instances.values() if i.draining_since is not None
        ),
    )
    if scale_in is not None and not scale_in.enabled:
        # --no-scale-in: only the groups whose drains must be undone.
        candidates = replace(
            candidates, clusters={g: c for g, c in groups.items() if g in candidates.marked}
        )
    if (
        (wanted.capacity_groups or candidates.clusters)
        and ctx.autoscaling is not None
        and ctx.ecs_instances is not None
    ):
        try:
            capacity = observe_capacity(
                ctx.ecs_instances, ctx.autoscaling, wanted.capacity_groups, candidates
            )
        except ControllerError as exc:
            report.errors.append(f"capacity: {exc}")
    plan = make_plan(
        desired,
        observed,
        view,
        now,
        ctx.owner,
        ctx.max_orphan_fraction,
        prune=None if scoped else ctx.prune,
        stop_orphans=not scoped and ctx.stop_orphans,
        capacity=capacity.groups if capacity is not None else None,
        scale_in=scale_in,
    )
    return plan, capacity


def refuse_lost_ledger(ctx: PassContext) -> None:
    """The lost-ledger guard alone, for `controller run` to fail at start (LostLedger).

    What cannot be read now (the source, AWS) is left to the first pass,
    which runs the same guard.
    """
    if not ledger_is_new(ctx.ledger.view()):
        return
    try:
        snapshot = ctx.source.snapshot()
        desired = ctx.loader.load(snapshot.files, snapshot.errors).desired
        must_adopt(
            ctx.ecs,
            desired,
            ctx.owner,
            ctx.ledger_name,
            adopt=ctx.adopt_history,
            workers=ctx.workers,
        )
    except (TransientError, TerminalError):
        return
