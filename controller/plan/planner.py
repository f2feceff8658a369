"""The whole pass's plan: task definitions first, then every run (pure).

`make_plan(desired, observed, ledger, now, ...)` is the level-triggered
heart: it recomputes everything from its inputs, so running it twice on the
same inputs gives the same plan, and an interrupted pass is repaired by the
next one. `needs(...)` tells the observer what to read for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from controller.model.capacity import GroupState
from controller.model.durations import is_never, plus_seconds
from controller.model.manifest import DesiredSet, JobRun, Kind, RunKey
from controller.model.observed import Needs, ObservedState
from controller.model.run import AttemptOutcome, LedgerView, Phase, Reason, RunOrigin, RunRecord
from controller.plan.actions import (
    Action,
    Plan,
    RecordRun,
    RegisterTaskDefinition,
    ResumeAttempt,
    SetDesiredCapacity,
    StartAttempt,
    StopTasks,
    planning_error,
)
from controller.plan.capacity import WaitingTask, plan_capacity, task_size
from controller.plan.cronjobs import (
    ScheduledCron,
    cron_job_actions,
    next_occurrence_due,
    settle_concurrency,
)
from controller.plan.indexed import plan_any_run
from controller.plan.prune import PruneInput, PruneSettings, prune_revisions
from controller.plan.records import DesiredRun, RunContext, effective_spec
from controller.plan.scale_in import PassContext as ScaleInContext
from controller.plan.scale_in import ScaleInPlan, ScaleInSettings, plan_scale_in
from controller.plan.schedule import ScheduleDecision
from controller.plan.taskdefs import TaskDefinitionChoice, choose_revision

DEFAULT_MAX_ORPHAN_FRACTION = 0.5


@dataclass(frozen=True)
class DesiredInput:
    """The source's wishes for this pass."""

    runs: Mapping[RunKey, DesiredRun] = field(default_factory=dict)
    #: (kind, name) of manifests present but invalid now: their runs go on
    #: under their frozen spec and are never orphaned
    invalid_names: frozenset[tuple[str, str]] = frozenset()
    #: False when the source could not be read completely: nothing may be
    #: concluded from a manifest's absence
    complete: bool = True
    #: families whose manifests say `ecs-job-controller/prune: "false"`
    protected_families: frozenset[str] = frozenset()
    #: names of every valid manifest (any kind): the denominator of the
    #: orphan guard, and what "the source is empty" means
    names: frozenset[str] = frozenset()
    #: the CronJobs' decisions this pass (their runs are in `runs` already)
    cron: ScheduledCron = field(default_factory=ScheduledCron)


def protected_families(desired: DesiredSet) -> frozenset[str]:
    """Families that manifests protect from pruning (annotation prune: "false")."""
    families: set[str] = set()
    for manifest in desired.manifests():
        spec = manifest.spec if isinstance(manifest, JobRun) else manifest.job_template
        if manifest.metadata.prune_protected and spec.family is not None:
            families.add(spec.family)
    return frozenset(families)


def desired_runs(desired: DesiredSet) -> dict[RunKey, DesiredRun]:
    """The runs the manifests ask for (JobRuns; CronJob occurrences are scheduled elsewhere)."""
    runs: dict[RunKey, DesiredRun] = {}
    for job in desired.job_runs.values():
        runs[job.key] = DesiredRun(
            key=job.key,
            kind=Kind.JOB_RUN,
            spec=job.spec,
            suspend=job.spec.suspend,
            digest=job.spec.digest,
        )
    return runs


def _about_to_start(run: DesiredRun, record: RunRecord | None) -> bool:
    """True when the run still needs its revision chosen: not started, or indexed with none yet."""
    if run.suspend:
        return False
    if record is None:
        return True
    if record.phase.terminal:
        return False
    # An indexed run is frozen with its first index, its revision known a
    # RunTask later: until then new indexes still need the family listed.
    return not record.started or (run.spec.indexed and not record.task_definition_arn)


def needs(desired: DesiredInput, ledger: LedgerView) -> Needs:
    """Clusters, families and refs in play: only what runs about to start require."""
    clusters = {r.spec.cluster for r in desired.runs.values()}
    families: set[str] = set()
    refs: set[str] = set()
    hashes: dict[str, set[str]] = {}
    for key, run in desired.runs.items():
        if not _about_to_start(run, ledger.runs.get(key)):
            continue
        if run.spec.family is not None and run.spec.task_definition is not None:
            try:
                digest = run.spec.task_definition_hash
            except Exception:  # noqa: S112 -- make_plan names the run in Plan.errors
                continue
            if digest is None:
                continue
            families.add(run.spec.family)
            hashes.setdefault(run.spec.family, set()).add(digest)
        if run.spec.task_definition_ref is not None:
            refs.add(run.spec.task_definition_ref)
    for record in ledger.runs.values():
        if not record.phase.terminal and record.attempts:
            cluster = record.attempts[-1].request.get("cluster")
            if cluster:
                clusters.add(str(cluster))
    groups: dict[str, set[str]] = {}
    for record in ledger.runs.values():
        waiting = waiting_for_capacity(record)
        if waiting is not None:
            groups.setdefault(waiting[0], set()).add(waiting[1])
    return Needs(
        frozenset(clusters),
        frozenset(families),
        frozenset(refs),
        {family: frozenset(wanted) for family, wanted in hashes.items()},
        {group: frozenset(names) for group, names in groups.items()},
    )


def scale_in_needs(desired: DesiredSet, ledger: LedgerView) -> dict[str, frozenset[str]]:
    """Groups scale-in may look at, with their clusters: what manifests, runs and clocks name.

    Every Auto Scaling group an EC2 run could scale out (a JobRun's or a
    CronJob template's `capacity.autoScalingGroup`, or an unfinished run's
    frozen spec), plus the groups holding an idle clock in the ledger. Its
    clusters are the ones those name: where its container instances are
    looked for. Whether a group opted in is only known once it is described.
    """
    found: dict[str, set[str]] = {}
    for manifest in desired.manifests():
        spec = manifest.spec if isinstance(manifest, JobRun) else manifest.job_template
        group = spec.capacity.auto_scaling_group
        launch_type = spec.run_task.get("launchType")
        if (
            group
            and not spec.run_task.get("capacityProviderStrategy")
            and launch_type
            in (
                None,
                "EC2",
            )
        ):
            found.setdefault(group, set()).add(spec.cluster)
    for record in ledger.runs.values():
        frozen = record.frozen_spec or {}
        group = (frozen.get("capacity") or {}).get("autoScalingGroup")
        if not record.phase.terminal and group and frozen.get("cluster"):
            found.setdefault(str(group), set()).add(str(frozen["cluster"]))
    for idle in ledger.idle_instances.values():
        found.setdefault(idle.group, set()).add(idle.cluster)
    return {group: frozenset(clusters) for group, clusters in found.items()}


def waiting_for_capacity(record: RunRecord) -> tuple[str, str] | None:
    """(Auto Scaling group, cluster) when the run waits for EC2 capacity a group can add.

    Fargate and capacity-provider runs never scale a group themselves: ECS
    (or its managed scaling) does.
    """
    attempt = record.current_attempt
    if (
        record.phase is not Phase.PENDING
        or attempt is None
        or attempt.outcome is not AttemptOutcome.UNPLACEABLE
    ):
        return None
    spec = record.frozen_spec or {}
    group = (spec.get("capacity") or {}).get("autoScalingGroup")
    launch_type = spec.get("launchType")
    if not group or spec.get("capacityProviderStrategy") or launch_type not in (None, "EC2"):
        return None
    return str(group), str(spec.get("cluster", ""))


def make_plan(
    desired: DesiredInput,
    observed: ObservedState,
    ledger: LedgerView,
    now: datetime,
    owner: str,
    max_orphan_fraction: float = DEFAULT_MAX_ORPHAN_FRACTION,
    *,
    prune: PruneSettings | None = None,
    stop_orphans: bool = False,
    capacity: Mapping[str, GroupState] | None = None,
    scale_in: ScaleInSettings | None = None,
) -> Plan:
    """Everything to do this pass: registrations, scale-outs, runs, scale-in, then pruning.

    `scale_in` None plans no scale-in at all (nor undoes any); the settings
    with `enabled` False (`--no-scale-in`) undo what an earlier pass began.

    Total: a run (or CronJob) the planner fails on is left as it is, named in
    `Plan.errors`, and every other run is still planned.
    """
    warnings: list[str] = []
    errors: list[str] = list(desired.cron.errors)
    failed: set[RunKey] = set()
    spec_hashes: dict[RunKey, str] = {}
    choices: dict[str, TaskDefinitionChoice] = {}
    registers: dict[tuple[str, str], RegisterTaskDefinition] = {}
    # Due CronJob occurrences wait for concurrency to be settled (below).
    candidates = desired.cron.candidates
    for key, run in sorted(desired.runs.items()):
        if key in candidates:
            continue
        try:
            found = _revision_for(run, ledger.runs.get(key), observed, owner, choices)
        except Exception as exc:  # one run's spec never stops the others
            errors.append(planning_error(str(key), exc))
            failed.add(key)
            continue
        if found is not None:
            spec_hashes[key] = found[0]
            _keep_choice(found, choices, registers)

    room = frozenset[RunKey]()
    if capacity is not None:
        try:
            room = runs_with_new_room(ledger, capacity, now)
        except Exception as exc:  # they wait out their backoff instead
            errors.append(planning_error("capacity", exc))
    ctx = RunContext(
        owner=owner,
        now=now,
        observed=observed,
        choices=choices,
        spec_hashes=spec_hashes,
        room=room,
    )
    gone = _gone_runs(desired, ledger)
    orphan_guard = _orphan_guard(desired, ledger, gone, max_orphan_fraction)
    if orphan_guard:
        warnings.append(orphan_guard)

    run_actions: list[Action] = []
    # An index is planned with its run, never on its own; a run whose index
    # is unfinished is planned even if it ended (a crash between the writes).
    open_runs = {k.run for k, r in ledger.runs.items() if not r.phase.terminal}
    keys = sorted(set(desired.runs) | open_runs)
    for key in keys:
        if key in candidates or key in failed:
            continue
        try:
            run_actions.extend(
                _plan_known_run(key, desired, ledger, ctx, gone, orphan_guard, stop_orphans)
            )
        except Exception as exc:  # one run's numbers never stop the others
            errors.append(planning_error(str(key), exc))
            failed.add(key)

    # Concurrency is decided on the runs as this pass observed them: one
    # seen finished now neither blocks the next occurrence nor is replaced.
    decisions, settle_errors = settle_concurrency(
        desired.cron, ledger, latest_records(ledger, run_actions), now
    )
    errors.extend(settle_errors)
    # A run a CronJob replaces is planned once more, stopped, by cron_job_actions.
    replaced = {RunKey(n, r) for n, d in decisions.items() for r in d.stop}
    run_actions = [a for a in run_actions if _run_of(a) not in replaced]
    for name, decision in sorted(decisions.items()):
        try:
            run_actions.extend(
                _cron_job_plan(name, decision, desired, ledger, ctx, choices, registers)
            )
        except Exception as exc:  # one CronJob never stops the others
            errors.append(planning_error(f"CronJob {name}", exc))
    scale_actions: list[Action] = []
    scaled_in = ScaleInPlan()
    if capacity is not None and scale_in is not None:
        try:
            scaled_in = plan_scale_in(
                capacity, ledger, now, owner, scale_in, _scale_in_context(ledger, run_actions)
            )
        except Exception as exc:  # runs still start; only scale-in waits
            errors.append(planning_error("scale-in", exc))
        capacity = _with_reactivated(capacity, scaled_in.reactivated)
    if capacity is not None:
        try:
            run_actions, scale_actions = _capacity_actions(ledger, run_actions, capacity, now)
        except Exception as exc:  # runs still start; only the scale-out waits
            errors.append(planning_error("capacity", exc))
    warnings.extend(scaled_in.warnings)
    prune_actions: list[Action] = []
    if prune is not None:
        healthy = _source_guard(desired)
        if healthy is None and errors:
            # What a run the planner failed on needs is unknown: delete nothing.
            healthy = f"{len(errors)} run(s) or CronJob(s) could not be planned"
        if healthy is None:
            try:
                prune_actions.extend(
                    prune_revisions(
                        ledger.revisions,
                        _prune_input(desired, ledger, run_actions, choices, prune, owner),
                    )
                )
            except Exception as exc:
                errors.append(planning_error("pruning", exc))
        elif any(r.owner == owner for r in ledger.revisions.values()):
            warnings.append(f"{healthy}: no revision pruned this pass")
    return Plan(
        actions=(
            *registers.values(),
            *scale_actions,
            *run_actions,
            *scaled_in.actions,
            *prune_actions,
        ),
        warnings=tuple(warnings),
        errors=tuple(errors),
        requeue_at=_earliest(
            next_wakeup(ledger, run_actions, now),
            next_occurrence_due(desired.cron),
            scaled_in.wake_at,
        ),
        capacity_groups=scaled_in.reports,
    )


def _scale_in_context(ledger: LedgerView, run_actions: Sequence[Action]) -> ScaleInContext:
    """What scale-in must respect: groups runs wait on, clusters RunTask goes to this pass."""
    waiting = set()
    # Before and after this pass's run actions: a run retrying its RunTask
    # now still waits for room until ECS says otherwise.
    for records in (ledger.runs, latest_records(ledger, run_actions)):
        for record in records.values():
            where = waiting_for_capacity(record)
            if where is not None:
                waiting.add(where[0])
    starting = set()
    for action in run_actions:
        if isinstance(action, (StartAttempt, ResumeAttempt)):
            attempt = next(a for a in action.record.attempts if a.number == action.attempt)
            cluster = attempt.request.get("cluster")
            if cluster:
                starting.add(str(cluster))
    return ScaleInContext(waiting=frozenset(waiting), starting_in=frozenset(starting))


def _with_reactivated(
    capacity: Mapping[str, GroupState], reactivated: Mapping[str, frozenset[str]]
) -> Mapping[str, GroupState]:
    """The groups with the instances scale-in sets ACTIVE again this pass counted as ACTIVE."""
    if not reactivated:
        return capacity
    updated = dict(capacity)
    for name, ids in reactivated.items():
        state = updated[name]
        instances = tuple(
            replace(i, active=True, draining=False) if i.instance_id in ids else i
            for i in state.instances
        )
        updated[name] = replace(state, instances=instances)
    return updated


def _revision_for(
    run: DesiredRun,
    record: RunRecord | None,
    observed: ObservedState,
    owner: str,
    choices: Mapping[str, TaskDefinitionChoice],
) -> tuple[str, TaskDefinitionChoice] | None:
    """The spec hash and revision of a run about to start with an inline taskDefinition."""
    td = run.spec.task_definition
    if td is None or not _about_to_start(run, record):
        return None
    family = str(td.get("family"))
    if family not in observed.families:
        return None  # not listed this pass (unreadable): wait, do not register blindly
    digest = run.spec.task_definition_hash
    if digest is None:
        return None
    known = choices.get(digest)
    if known is not None:
        return digest, known
    return digest, choose_revision(
        td, digest, observed.families[family], owner, observed.revision_bodies
    )


def _keep_choice(
    found: tuple[str, TaskDefinitionChoice],
    choices: dict[str, TaskDefinitionChoice],
    registers: dict[tuple[str, str], RegisterTaskDefinition],
) -> None:
    digest, choice = found
    if digest not in choices:
        choices[digest] = choice
        if choice.register is not None:
            registers[(choice.register.family, digest)] = choice.register


def _plan_known_run(
    key: RunKey,
    desired: DesiredInput,
    ledger: LedgerView,
    ctx: RunContext,
    gone: Mapping[RunKey, tuple[Reason, str]],
    orphan_guard: str | None,
    stop_orphans: bool,
) -> list[Action]:
    """The actions for one run the source asks for or the ledger holds unfinished."""
    record = ledger.runs.get(key)
    wanted = desired.runs.get(key)
    indexes = ledger.indexes_of(key)
    if wanted is not None:
        return plan_any_run(wanted, record, indexes, ctx)
    if record is None and not indexes:
        return []
    verdict = gone.get(key)
    if record is None or verdict is None or orphan_guard:
        held = _held(key, record, indexes)
        if held is None and record is not None and record.cancel is not None:
            return plan_any_run(None, record, indexes, ctx)  # cancelling needs no spec
        return plan_any_run(held, record, indexes, ctx) if held is not None else []
    reason, message = verdict
    stop = stop_orphans and reason is Reason.ORPHANED
    return plan_any_run(
        None,
        record,
        indexes,
        ctx,
        gone_reason=reason,
        gone_message=message,
        stop_message=f"{message}: stopped (--stop-orphans)" if stop else None,
    )


def _cron_job_plan(
    name: str,
    decision: ScheduleDecision,
    desired: DesiredInput,
    ledger: LedgerView,
    ctx: RunContext,
    choices: dict[str, TaskDefinitionChoice],
    registers: dict[tuple[str, str], RegisterTaskDefinition],
) -> list[Action]:
    """One CronJob's settled decision: its new run's start, then stops, Missed runs, watermark.

    All or nothing: should any part fail, nothing of this CronJob is planned
    (the watermark stays, so the next pass decides the same occurrence again).
    """
    actions: list[Action] = []
    found: tuple[str, TaskDefinitionChoice] | None = None
    key = RunKey(name, decision.start.run_id) if decision.start is not None else None
    if key is not None and key in desired.cron.candidates:
        run = desired.runs[key]
        found = _revision_for(run, None, ctx.observed, ctx.owner, choices)
        start_ctx = ctx
        if found is not None:
            start_ctx = replace(
                ctx,
                choices={**ctx.choices, found[0]: found[1]},
                spec_hashes={**ctx.spec_hashes, key: found[0]},
            )
        actions.extend(plan_any_run(run, None, {}, start_ctx))
    actions.extend(cron_job_actions(name, decision, ledger, ctx))
    if found is not None:
        _keep_choice(found, choices, registers)
    return actions


def _run_of(action: Action) -> RunKey | None:
    run = getattr(action, "run", None)
    return run if isinstance(run, RunKey) else None


def _earliest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _waiting_tasks(key: RunKey, record: RunRecord, group: str) -> list[WaitingTask]:
    """One WaitingTask per task of the run's `count` (none when its size is unknown)."""
    spec = record.frozen_spec or {}
    try:
        cpu, memory = task_size(spec.get("taskDefinition"), spec.get("overrides"))
    except ValueError:
        return []  # a size we cannot compute: the run waits out maxPendingSeconds
    count = int(spec.get("count", 1) or 1)
    return [WaitingTask(key, cpu, memory, group) for _ in range(count)]


def runs_with_new_room(
    ledger: LedgerView, capacity: Mapping[str, GroupState], now: datetime
) -> frozenset[RunKey]:
    """Runs in a capacity backoff that new room now fits: they retry this pass.

    The backoff after a placement failure is for when nothing changed: ECS
    would answer the same. Once an instance of the run's group registered
    after that failure (an instance we asked for, or anyone's), the run is
    retried at once if first-fit-decreasing puts every one of its tasks on
    the free capacity observed now; a run it does not fit keeps its backoff.
    A registration before the failure changes nothing (ECS already saw it),
    so a run whose estimate is wrong cannot retry in a loop.
    """
    candidates: list[WaitingTask] = []
    for key, record in sorted(ledger.runs.items()):
        where = waiting_for_capacity(record)
        attempt = record.current_attempt
        if where is None or attempt is None or record.not_before is None:
            continue
        group = capacity.get(where[0])
        if record.not_before <= now or group is None:
            continue
        failed_at = attempt.finished_at or attempt.intent_at
        if any(
            i.usable and i.registered_at is not None and i.registered_at > failed_at
            for i in group.instances
        ):
            candidates.extend(_waiting_tasks(key, record, where[0]))
    if not candidates:
        return frozenset()
    decisions = plan_capacity(candidates, capacity).values()
    fits = {t.run for d in decisions for t in d.fits_free}
    short = {t.run for d in decisions for t in (*d.fits_launching, *d.needs_new)}
    short |= {n.task.run for d in decisions for n in d.never_fits}
    return frozenset(fits - short)


def _capacity_actions(
    ledger: LedgerView,
    run_actions: list[Action],
    capacity: Mapping[str, GroupState],
    now: datetime,
) -> tuple[list[Action], list[Action]]:
    """One SetDesiredCapacity per group for all its waiting tasks; runs told why they wait."""
    latest = latest_records(ledger, run_actions)
    # A run retrying its RunTask this pass still counts as waiting (the
    # retry will likely fail again: plan the room now, not a pass later);
    # one whose tasks are being stopped or resumed does not.
    busy = {a.run for a in run_actions if isinstance(a, (ResumeAttempt, StopTasks))}
    retrying = {a.run for a in run_actions if isinstance(a, StartAttempt)}
    waiting: list[WaitingTask] = []
    for key, record in sorted(latest.items()):
        if key in busy:
            continue
        where = waiting_for_capacity(
            ledger.runs[key] if key in retrying and key in ledger.runs else record
        )
        if where is None:
            continue
        waiting.extend(_waiting_tasks(key, record, where[0]))
    if not waiting:
        return run_actions, []
    updates: dict[RunKey, RunRecord] = {}
    scale: list[Action] = []
    for decision in plan_capacity(waiting, capacity).values():
        runs = tuple(sorted({t.run for t in decision.needs_new}))
        if decision.scales_out and decision.target is not None:
            scale.append(
                SetDesiredCapacity(
                    group=decision.group,
                    current=decision.desired,
                    target=decision.target,
                    capped=decision.capped,
                    runs=runs,
                    reason=decision.summary,
                )
            )
        # Runs whose room is on its way (asked for now, or launching) say so.
        coming = {t.run for t in decision.fits_launching}
        if decision.scales_out:
            coming.update(runs)
        for key in sorted(coming - retrying):
            updates[key] = replace(latest[key], reason=Reason.SCALING_OUT, message=decision.summary)
        for never in decision.never_fits:
            key = never.task.run
            # A RunTask that can never be placed is not worth retrying.
            base = ledger.runs[key] if key in retrying and key in ledger.runs else latest[key]
            updates[key] = replace(
                base,
                phase=Phase.FAILED,
                reason=Reason.UNSCHEDULABLE,
                message=never.reason,
                finished_at=now,
                not_before=None,
            )
    kept = [
        a
        for a in run_actions
        if not (isinstance(a, (RecordRun, StartAttempt)) and a.run in updates)
    ]
    for key, record in sorted(updates.items()):
        before = ledger.runs.get(key)
        if before is None or replace(before, updated_at=record.updated_at) != record:
            kept.append(RecordRun(key, replace(record, updated_at=now), record.message))
    return kept, scale


def _source_guard(desired: DesiredInput) -> str | None:
    """Why the source is not healthy enough for deletions, or None."""
    if not desired.complete:
        return "the source could not be read completely"
    if not desired.names:
        return "the source is empty"
    return None


def _prune_input(
    desired: DesiredInput,
    ledger: LedgerView,
    run_actions: Sequence[Action],
    choices: Mapping[str, TaskDefinitionChoice],
    settings: PruneSettings,
    owner: str,
) -> PruneInput:
    """What is in use: revisions of unfinished runs, of desired specs and of refs."""
    latest = latest_records(ledger, run_actions)
    in_use = {r.task_definition_arn for r in latest.values() if not r.phase.terminal}
    in_use.update(c.arn for c in choices.values() if c.arn)
    hashes = set()
    referenced = set()
    protected = set(desired.protected_families)
    for run in desired.runs.values():
        if (digest := run.spec.task_definition_hash) is not None:
            hashes.add(digest)
        ref = run.spec.task_definition_ref
        if ref is not None:
            if ref.startswith("arn:"):
                in_use.add(ref)
            elif ":" in ref:
                referenced.add(ref)
            else:
                protected.add(ref)  # "latest of family": keep the family whole
    return PruneInput(
        owner=owner,
        keep_revisions=settings.keep_revisions,
        delete_inactive=settings.delete_inactive,
        in_use=frozenset(a for a in in_use if a),
        desired_hashes=frozenset(hashes),
        protected_families=frozenset(protected),
        referenced=frozenset(referenced),
    )


def latest_records(ledger: LedgerView, actions: Sequence[Action]) -> dict[RunKey, RunRecord]:
    """Every run as it will be once the plan's run actions are applied."""
    latest = dict(ledger.runs)
    for action in actions:
        record = getattr(action, "record", None)
        if isinstance(record, RunRecord):
            latest[record.key] = record
    return latest


def next_wakeup(ledger: LedgerView, actions: Sequence[Action], now: datetime) -> datetime | None:
    """When a run next needs a pass by itself: a backoff or capacity retry, or a deadline."""
    latest = latest_records(ledger, actions)
    times: list[datetime] = []
    # An indexed run's deadline counts from its first index's start, even
    # once that index ended.
    index_starts: dict[RunKey, datetime] = {}
    for key, record in latest.items():
        started = record.first_started_at
        if key.index is not None and started is not None:
            known = index_starts.get(key.run)
            index_starts[key.run] = started if known is None else min(known, started)
    for record in latest.values():
        if record.phase.terminal:
            continue
        if record.not_before is not None:
            times.append(record.not_before)
        deadline = (record.frozen_spec or {}).get("activeDeadlineSeconds")
        first = record.first_started_at or index_starts.get(record.key)
        if isinstance(deadline, int) and first is not None:
            # Any other value: plan_run already names the run in Plan.errors.
            times.append(plus_seconds(first, deadline))
    # A time capped at FAR_FUTURE never comes: nothing to wake up for.
    future = [t for t in times if now < t and not is_never(t)]
    return min(future) if future else None


def _gone_runs(desired: DesiredInput, ledger: LedgerView) -> dict[RunKey, tuple[Reason, str]]:
    """Non-terminal runs the source no longer asks for, with why.

    A oneshot run (`controller oneshot`) was never the source's to ask for:
    it is neither orphaned nor superseded, and the pass carries it on under
    its frozen spec (`held_run`), retries included, should its own process
    be gone.
    """
    current_ids: dict[str, str] = {k.name: k.run_id for k in desired.runs}
    invalid = {name for _, name in desired.invalid_names}
    gone: dict[RunKey, tuple[Reason, str]] = {}
    for key, record in ledger.runs.items():
        if record.phase.terminal or key in desired.runs or key.name in invalid:
            continue
        if key.index is not None:
            continue  # an index goes with its run
        if record.origin is RunOrigin.ONESHOT:
            continue
        if record.kind is Kind.CRON_JOB and key.name in desired.cron.decisions:
            continue  # a present CronJob decides about its own runs (Replace)
        if key.name in current_ids:
            gone[key] = (Reason.CANCELLED, f"superseded by runId {current_ids[key.name]!r}")
        elif desired.complete:
            gone[key] = (Reason.ORPHANED, "manifest removed from the source")
    return gone


def _orphan_guard(
    desired: DesiredInput,
    ledger: LedgerView,
    gone: Mapping[RunKey, tuple[Reason, str]],
    max_fraction: float,
) -> str | None:
    """Why orphan handling is off this pass, or None (DESIGN.md §4 safety guard).

    The fraction counts manifests, not runs: a CronJob with a thousand
    finished runs is one manifest, and old history must not dilute the
    guard. Known manifests are those present now plus those whose runs are
    still active.
    """
    orphaned = {k.name for k, (reason, _) in gone.items() if reason is Reason.ORPHANED}
    if not orphaned:
        return None
    if not desired.names and not desired.runs:
        return f"source is empty: {len(orphaned)} manifest(s) not treated as removed"
    active = {r.key.name for r in ledger.runs.values() if not r.phase.terminal}
    known = set(desired.names) | {k.name for k in desired.runs} | active
    if len(orphaned) / len(known) > max_fraction:
        return (
            f"{len(orphaned)} of {len(known)} known manifests would be orphaned "
            f"(> --max-orphan-fraction {max_fraction}): nothing orphaned this pass"
        )
    return None


def _held(
    key: RunKey, record: RunRecord | None, indexes: Mapping[int, RunRecord]
) -> DesiredRun | None:
    """`held_run` of a run, or of an indexed run through its first started index."""
    if record is not None and record.frozen_spec is not None:
        return held_run(record)
    for index in sorted(indexes):
        held = held_run(indexes[index])
        if held is not None:
            return replace(held, key=key)
    return None


def held_run(record: RunRecord) -> DesiredRun | None:
    """A started run no manifest speaks for now: continue it under its frozen spec.

    Its manifest is invalid or unknowable, or it is a oneshot run (no
    manifest ever asked for it). None before its first attempt froze a spec.
    """
    if record.frozen_spec is None:
        return None
    spec = effective_spec(None, record)
    if spec is None:
        return None
    return DesiredRun(
        key=record.key,
        kind=record.kind,
        spec=spec,
        suspend=False,
        digest=record.spec_digest,
        origin=record.origin,
    )
