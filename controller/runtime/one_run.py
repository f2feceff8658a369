"""A scoped pass: the pass's own pipeline for one run, now (`oneshot`, `trigger`, `stop`).

    view     = ledger.view() restricted to the one run key
    observed = observe(...)             that run's tasks only (and its family, to start)
    plan     = make_plan(...)           that run only: the same `plan_run` as every pass
    result   = executor.apply(plan)     the same start protocol, the same StopTask

Why not a full pass: a full pass does work that must be exclusive — CronJob
scheduling, orphaning, pruning, the lost-ledger guard, the pass summary —
and so holds the ledger lock or the leader lease (DESIGN.md §9). A scoped
pass does none of it, and takes **no lock and no lease**: a `oneshot` in CI
runs beside a live `controller run`. What keeps them apart:

* per-run optimistic versions: every save of the run is conditional on the
  version read (`LedgerConflict` otherwise), so two writers of one run can
  never both record the same attempt's intent; the loser re-reads and plans
  again (`RunPassResult.conflicted`), finding the winner's work;
* the start protocol: the intent is recorded before RunTask and RunTask
  carries the deterministic client token, so a repeat from either side
  finds (or is answered with) the task already started, never a second one;
* registration is idempotent: the executor re-reads the family right
  after RegisterTaskDefinition and keeps the oldest revision with the spec
  hash, so two registrars racing for one content converge on one revision;
* capacity: a scoped pass may plan a scale-out for its own run's waiting
  tasks. SetDesiredCapacity only ever raises the desired count (never
  below the current one), so two deciders at once can only over-provision
  for a while (the group scales in by its own policy), never lose a run.

The loop also follows these runs: a manual run (`trigger`) is an unfinished
occurrence of its CronJob, and a oneshot run is carried on under its frozen
spec (`controller.plan.planner.held_run`), so a `controller run` beside a
crashed oneshot still finishes it, retries included.

Cancelling (`controller stop`, oneshot's --timeout and SIGINT) is a request
recorded on the run first (`request_cancel`, with the optimistic version);
every pass that plans the run then honours it (`controller.plan.lifecycle`):
StopTask its live tasks, then Failed/Cancelled. A `stop` that crashes after
recording is finished by the next pass of anyone, or by running it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from controller.apply.executor import ApplyResult
from controller.errors import ControllerError, NotFoundError, TransientError
from controller.model.manifest import RunKey
from controller.model.run import CancelRequest, Event, Reason, RunRecord
from controller.observe.ecs import ObserveReport
from controller.plan.actions import Plan
from controller.plan.planner import DesiredInput
from controller.plan.records import DesiredRun
from controller.runtime.reconcile_pass import PassContext, observe_and_plan
from controller.state.ledger import Ledger, LedgerConflict

#: How often `request_cancel` re-reads a run that someone else saved meanwhile.
CANCEL_TRIES = 10


class NothingToStop(NotFoundError):
    """`controller stop` found no unfinished run to cancel (exit status 1)."""


@dataclass
class RunPassResult:
    """What one scoped pass planned and did, and the run as the ledger holds it after."""

    key: RunKey
    #: the run after the pass (None: not recorded, e.g. nothing could be planned)
    record: RunRecord | None
    plan: Plan
    applied: ApplyResult
    observe_errors: list[str] = field(default_factory=list)
    #: an indexed run's indexes after the pass, by index (empty for any other run)
    indexes: Mapping[int, RunRecord] = field(default_factory=dict)

    @property
    def conflicted(self) -> bool:
        """True when someone else saved the run meanwhile: plan again at once."""
        return bool(self.applied.conflicts)

    @property
    def problems(self) -> list[str]:
        """Why the pass could not do all it planned, one line each (empty when it did)."""
        return [
            *self.observe_errors,
            *self.plan.errors,
            *self.applied.failed,
        ]


def reconcile_run(
    ctx: PassContext, key: RunKey, desired: DesiredRun | None = None
) -> RunPassResult:
    """One scoped pass over the run `key` (see the module docstring).

    `desired` is the run as a manifest asks for it (oneshot, trigger); None
    carries on the run the ledger holds (stop), under its frozen spec.
    Nothing else in the ledger is planned, read from ECS or written.
    """
    view = ctx.ledger.view().restricted_to(frozenset({key}))
    now = ctx.clock.now()
    # Incomplete: the run's absence from `runs` must never read as "removed".
    inputs = DesiredInput(runs={key: desired} if desired is not None else {}, complete=False)
    report = ObserveReport()
    plan, _ = observe_and_plan(ctx, inputs, view, now, report, scoped=True)
    # The run's manifest spec (oneshot, trigger) says where it is announced;
    # a run carried on (stop) is announced under its frozen spec.
    specs = {key.name: desired.spec.raw} if desired is not None else {}
    if ctx.notifier is not None:
        try:
            ctx.notifier.prepare(specs, now)
        except ControllerError as exc:
            report.errors.append(f"notifications: {exc}")
    applied = ctx.executor.apply(plan)
    if ctx.notifier is not None:
        ctx.notifier.sweep(specs, applied, only=key)
    after = ctx.ledger.view()
    return RunPassResult(
        key, after.runs.get(key), plan, applied, report.errors, after.indexes_of(key)
    )


def newest_unfinished(records: list[RunRecord]) -> RunRecord | None:
    """The newest run that has not ended, of runs listed oldest first."""
    unfinished = [r for r in records if not r.phase.terminal]
    return unfinished[-1] if unfinished else None


def request_cancel(ledger: Ledger, key: RunKey, request: CancelRequest) -> RunRecord:
    """Record the cancel request on the run (optimistic version), before anything is stopped.

    Raises NothingToStop when the run is not in the ledger or has ended. A
    run that already carries a request (a `stop` that crashed, or a second
    one) keeps the first: the passes finish what it asked.
    """
    for _ in range(CANCEL_TRIES):
        record = ledger.get(key)
        if record is None:
            raise NothingToStop(f"nothing to stop: no run {key} in the ledger")
        if record.phase.terminal:
            raise NothingToStop(
                f"nothing to stop: {key} has already ended"
                f" ({record.phase.value}/{record.reason.value}: {record.message})"
            )
        if record.cancel is not None:
            return record
        try:
            saved = ledger.save(replace(record, cancel=request, updated_at=request.at))
        except LedgerConflict:
            continue  # a pass saved it meanwhile: read it again
        ledger.append_event(Event(request.at, key, Reason.CANCELLED.value, request.message))
        return saved
    raise TransientError(f"{key} kept changing while the cancel request was recorded; try again")
