"""An indexed run: indexes 0..completions-1 under one run key (pure; issue 17).

Kubernetes Indexed Jobs and AWS Batch array jobs split one job into shards
(a backfill month by month). Here each index is a run of its own in the
ledger (`RunKey.index`), planned by the ordinary lifecycle (`plan_run`), so
each index has its own attempts, start protocol (its client token and tags
carry the index), retries and backoff: `backoffLimit` and the
infrastructure budget apply per index, as Kubernetes' backoffLimitPerIndex
does. This module decides what only the run as a whole can:

* **parallelism**: at most `parallelism` indexes have an attempt in flight.
  An index with an attempt in flight keeps its slot (a retry it starts at
  once included); an index due to start again waits for a free slot
  (Pending/Waiting), lowest index first; new indexes take the slots still
  free, lowest first. A slot freed this pass is used this pass.
* **one revision**: the first index to start resolves (or registers) the
  revision like any run; once one index has started, the run's spec and
  revision are frozen on the run's record and every later index starts
  from them, pre-frozen. No revision per index, whatever completions is.
* **the end**: Succeeded once every index succeeded; Failed/FailedIndexes
  as soon as more than `maxFailedIndexes` indexes failed (absent: the
  first failed index), stopping the indexes still running; with
  maxFailedIndexes, Failed/FailedIndexes once every index ended and any
  failed.
* **run-wide limits**: activeDeadlineSeconds counts from the first index's
  first attempt and stops every index; a cancel request (`controller
  stop`), a manifest removed or superseded, apply to every index.

The run's own record has no attempts: its phase, reason and message sum
its indexes up. Index records are never orphaned or cancelled on their own;
only their run is, and this module carries that to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from controller.model.durations import plus_seconds
from controller.model.manifest import JobSpec, RunKey
from controller.model.run import Phase, Reason, RunRecord
from controller.plan.actions import Action, RecordRun
from controller.plan.lifecycle import drift_note, plan_run
from controller.plan.records import (
    DesiredRun,
    RunContext,
    changed,
    effective_spec,
    finish,
    new_record,
    with_drift,
    with_status,
)

#: Index reasons that say the run waits for capacity, most telling first.
_CAPACITY_REASONS = (Reason.SCALING_OUT, Reason.UNSCHEDULABLE)


@dataclass(frozen=True)
class IndexCounts:
    """How an indexed run's indexes stand (what `status` shows)."""

    completions: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0

    @property
    def pending(self) -> int:
        """Indexes neither finished nor running: waiting, starting, or not created yet."""
        return self.completions - self.succeeded - self.failed - self.running

    def summary(self) -> str:
        """`S/N completed, F failed, R running, P pending`."""
        return (
            f"{self.succeeded}/{self.completions} completed, {self.failed} failed, "
            f"{self.running} running, {self.pending} pending"
        )


def index_counts(completions: int, indexes: Mapping[int, RunRecord]) -> IndexCounts:
    """Count an indexed run's indexes by phase."""
    phases = [r.phase for i, r in indexes.items() if 0 <= i < completions]
    return IndexCounts(
        completions=completions,
        succeeded=phases.count(Phase.SUCCEEDED),
        failed=phases.count(Phase.FAILED),
        running=phases.count(Phase.RUNNING),
    )


def is_indexed(desired: DesiredRun | None, record: RunRecord | None) -> bool:
    """True when the run is an indexed one (by its frozen spec once started, else its manifest)."""
    if record is not None and record.key.index is not None:
        return False
    if record is not None and record.frozen_spec is not None:
        return record.frozen_spec.get("completions") is not None
    return desired is not None and desired.spec.indexed


def plan_indexed_run(
    desired: DesiredRun | None,
    record: RunRecord | None,
    indexes: Mapping[int, RunRecord],
    ctx: RunContext,
    *,
    gone_reason: Reason | None = None,
    gone_message: str = "",
    stop_message: str | None = None,
) -> list[Action]:
    """The actions for an indexed run and its indexes; `desired` None when nothing asks for it."""
    fresh = record is None
    if record is None:
        if desired is None:
            if not indexes:
                return []
            record = _run_record_from(indexes)
        else:
            record = new_record(desired, ctx.now)
    plan = _IndexPlan(record.key, indexes, ctx)
    if record.phase.terminal:
        # Indexes still live after their run ended (a crash between the two
        # writes): they end as their run did.
        plan.end_all(record.reason, record.message, stop_message=record.message)
        return [*drift_note(desired, record, ctx), *plan.actions()]
    before = record
    spec = _run_spec(desired, record, indexes)
    if spec is None or spec.completions is None:
        reason = gone_reason or Reason.ORPHANED
        message = gone_message or "manifest removed before the run started"
        plan.end_all(reason, message, stop_message=stop_message)
        return _with_run(plan, before, _ended(record, plan, reason, message, ctx), fresh, ctx)
    completions = spec.completions

    cancel = record.cancel
    if cancel is not None:
        # Indexes not created yet never start; the run ends once none runs.
        plan.cancel_all(desired, record)
        done = not plan.open_after()
        if done and plan.counts(completions).succeeded < completions:
            record = finish(record, Phase.FAILED, Reason.CANCELLED, cancel.message, ctx)
        elif done:
            record = _succeeded(record, plan.counts(completions), ctx)
        else:
            stopping = f"{cancel.message}: stopping the indexes still running"
            record = _in_progress(record, plan, spec, ctx, message=stopping)
        return _with_run(plan, before, record, fresh, ctx)

    deadline = _deadline(spec, indexes)
    if (
        deadline is not None
        and ctx.now >= deadline
        and plan.counts(completions).succeeded < completions
    ):
        message = f"activeDeadlineSeconds ({spec.active_deadline_seconds}s) exceeded"
        plan.end_all(Reason.DEADLINE_EXCEEDED, message, stop_message=message)
        record = _ended(record, plan, Reason.DEADLINE_EXCEEDED, message, ctx, completions)
        return _with_run(plan, before, record, fresh, ctx)

    if desired is None:
        reason = gone_reason or Reason.ORPHANED
        plan.end_all(reason, gone_message, stop_message=stop_message)
        if not plan.open_after():  # indexes not created yet never will be
            message = gone_message or "manifest removed before the run finished"
            record = _ended(record, plan, reason, message, ctx, completions)
        else:
            record = _in_progress(record, plan, spec, ctx, reason=reason, message=gone_message)
        return _with_run(plan, before, record, fresh, ctx)

    plan.advance(desired, spec, record)
    failed = plan.failed()
    allowed = spec.max_failed_indexes or 0
    if len(failed) > allowed:
        first = failed[0]
        message = f"index {first} failed: {plan.latest(first).message}"
        if len(failed) > 1:
            message += f" ({len(failed)} indexes failed)"
        plan.end_all(Reason.FAILED_INDEXES, f"stopped: {message}", stop_message=message)
        record = finish(record, Phase.FAILED, Reason.FAILED_INDEXES, message, ctx)
    elif plan.all_ended(completions):
        counts = plan.counts(completions)
        if counts.failed:
            message = (
                f"{counts.failed} of {completions} indexes failed (maxFailedIndexes {allowed})"
            )
            record = finish(record, Phase.FAILED, Reason.FAILED_INDEXES, message, ctx)
        else:
            record = _succeeded(record, counts, ctx)
    else:
        record = _in_progress(record, plan, spec, ctx)
    record = with_drift(desired, record)
    return _with_run(plan, before, record, fresh, ctx)


class _IndexPlan:
    """The indexes' actions as they are planned, and each index as the plan leaves it."""

    def __init__(self, key: RunKey, indexes: Mapping[int, RunRecord], ctx: RunContext) -> None:
        self.key = key
        self.before = dict(indexes)
        self.ctx = ctx
        self._actions: dict[int, list[Action]] = {}
        self._latest: dict[int, RunRecord] = dict(indexes)

    def actions(self) -> list[Action]:
        """Every index's actions, lowest index first."""
        return [a for i in sorted(self._actions) for a in self._actions[i]]

    def latest(self, index: int) -> RunRecord:
        """The index's record as the plan leaves it."""
        return self._latest[index]

    def plan(
        self,
        index: int,
        desired: DesiredRun | None,
        record: RunRecord | None,
        *,
        gone_reason: Reason | None = None,
        gone_message: str = "",
        stop_message: str | None = None,
    ) -> None:
        """Plan one index (replacing what was planned for it before)."""
        actions = plan_run(
            desired,
            record,
            self.ctx,
            gone_reason=gone_reason,
            gone_message=gone_message,
            stop_message=stop_message,
        )
        self._actions[index] = actions
        for action in actions:
            saved = getattr(action, "record", None)
            if isinstance(saved, RunRecord):
                self._latest[index] = saved
        if not actions and record is not None:
            self._latest[index] = record

    def open_indexes(self) -> list[int]:
        """Indexes the ledger holds unfinished, lowest first."""
        return sorted(i for i, r in self.before.items() if not r.phase.terminal)

    def end_all(self, reason: Reason, message: str, *, stop_message: str | None) -> None:
        """End every unfinished index for `reason` (stopping live tasks when given a stop message).

        An index whose attempt this pass finds succeeded is Succeeded all the
        same; one whose attempt runs on without a stop message is left to
        finish, never retried.
        """
        for index in [i for i in self._actions if i not in self.before]:
            # Created this pass: it never starts now.
            del self._actions[index], self._latest[index]
        for index in self.open_indexes():
            if self.latest(index).phase.terminal and index in self._actions:
                continue  # it ended this pass on its own: keep that
            self.plan(
                index,
                None,
                self.before[index],
                gone_reason=reason,
                gone_message=message,
                stop_message=stop_message,
            )

    def cancel_all(self, desired: DesiredRun | None, run: RunRecord) -> None:
        """Carry the run's cancel request to every unfinished index."""
        for index in self.open_indexes():
            record = self.before[index]
            if record.cancel is None:
                record = replace(record, cancel=run.cancel)
            self.plan(index, _index_desired(desired, self.key.of_index(index), None), record)

    def advance(self, desired: DesiredRun, spec: JobSpec, run: RunRecord) -> None:
        """Bring every index forward and start new ones, within parallelism."""
        parallelism = spec.effective_parallelism
        waiting: list[int] = []
        for index in self.open_indexes():
            if _in_flight(self.before[index]):
                self.plan(
                    index,
                    _index_desired(desired, self.key.of_index(index), None),
                    self.before[index],
                )
            else:
                waiting.append(index)
        free = parallelism - sum(1 for i in self._latest if _in_flight(self._latest[i]))
        hold = f"waiting for a slot: {parallelism} index(es) in flight (parallelism {parallelism})"
        for index in waiting:
            record = self.before[index]
            due = _due(record, self.ctx)
            granted = due and free > 0
            child = _index_desired(desired, record.key, None if granted or not due else hold)
            self.plan(index, child, record)
            if _in_flight(self._latest[index]):
                free -= 1
        if free <= 0 or desired.suspend:
            return
        frozen = _frozen_from(run, self._latest)
        assert spec.completions is not None
        for index in range(spec.completions):
            if free <= 0:
                break
            if index in self._latest:
                continue
            key = self.key.of_index(index)
            child = _index_desired(desired, key, None)
            assert child is not None
            fresh_index: RunRecord | None = None
            if frozen is not None:
                fresh_index = replace(
                    new_record(child, self.ctx.now),
                    frozen_spec=frozen.frozen_spec,
                    task_definition_arn=frozen.task_definition_arn,
                )
            self.plan(index, child, fresh_index)
            if _in_flight(self._latest[index]):
                free -= 1

    def open_after(self) -> list[int]:
        """Indexes unfinished as the plan leaves them."""
        return sorted(i for i, r in self._latest.items() if not r.phase.terminal)

    def failed(self) -> list[int]:
        """Indexes Failed as the plan leaves them, lowest first."""
        return sorted(i for i, r in self._latest.items() if r.phase is Phase.FAILED)

    def all_ended(self, completions: int) -> bool:
        """True when every index exists and ended."""
        return all(
            index in self._latest and self._latest[index].phase.terminal
            for index in range(completions)
        )

    def counts(self, completions: int) -> IndexCounts:
        """The indexes counted by phase as the plan leaves them."""
        return index_counts(completions, self._latest)

    def reasons(self) -> set[Reason]:
        """The reasons of the unfinished indexes as the plan leaves them."""
        return {r.reason for r in self._latest.values() if not r.phase.terminal}

    def first_started(self) -> RunRecord | None:
        """The lowest index with an attempt, as the plan leaves it."""
        return next(
            (self._latest[i] for i in sorted(self._latest) if self._latest[i].attempts), None
        )

    def frozen(self, run: RunRecord) -> RunRecord | None:
        """The index whose spec and revision the run shares, once one started."""
        return _frozen_from(run, self._latest)


def _index_desired(desired: DesiredRun | None, key: RunKey, hold: str | None) -> DesiredRun | None:
    if desired is None:
        return None
    return replace(desired, key=key, hold=hold)


def _in_flight(record: RunRecord) -> bool:
    attempt = record.current_attempt
    return not record.phase.terminal and attempt is not None and not attempt.finished


def _due(record: RunRecord, ctx: RunContext) -> bool:
    """True when an index between attempts may start one now (its backoff is over)."""
    return record.not_before is None or ctx.now >= record.not_before or record.key in ctx.room


def _frozen_from(run: RunRecord, indexes: Mapping[int, RunRecord]) -> RunRecord | None:
    """The record whose spec and revision new indexes take: the run's, else the first index's.

    Only a record with a revision ARN counts: until one index's RunTask
    named it (a revision registered this very pass is known the next), new
    indexes resolve the revision as any new run does.
    """
    if run.frozen_spec is not None and run.task_definition_arn:
        return run
    for index in sorted(indexes):
        record = indexes[index]
        if record.frozen_spec is not None and record.task_definition_arn and record.attempts:
            return record
    return None


def _run_spec(
    desired: DesiredRun | None, record: RunRecord, indexes: Mapping[int, RunRecord]
) -> JobSpec | None:
    """The run's spec: frozen on its record, else an index's frozen one, else the manifest's."""
    if record.frozen_spec is not None:
        return effective_spec(None, record)
    frozen = _frozen_from(record, indexes)
    if frozen is not None:
        return effective_spec(None, frozen)
    return desired.spec if desired is not None else None


def _deadline(spec: JobSpec, indexes: Mapping[int, RunRecord]) -> datetime | None:
    starts = [r.first_started_at for r in indexes.values() if r.first_started_at is not None]
    if not starts or spec.active_deadline_seconds is None:
        return None
    return plus_seconds(min(starts), spec.active_deadline_seconds)


def _run_record_from(indexes: Mapping[int, RunRecord]) -> RunRecord:
    """A run's record rebuilt from its indexes (a crash lost the run's own first write)."""
    first = indexes[min(indexes)]
    return RunRecord(
        key=first.key.run,
        kind=first.kind,
        phase=Phase.PENDING,
        reason=Reason.WAITING,
        message="waiting to start",
        created_at=min(r.created_at for r in indexes.values()),
        updated_at=first.updated_at,
        spec_digest=first.spec_digest,
        origin=first.origin,
    )


def _succeeded(record: RunRecord, counts: IndexCounts, ctx: RunContext) -> RunRecord:
    message = f"all {counts.completions} indexes succeeded"
    return finish(record, Phase.SUCCEEDED, Reason.COMPLETED, message, ctx)


def _ended(
    record: RunRecord,
    plan: _IndexPlan,
    reason: Reason,
    message: str,
    ctx: RunContext,
    completions: int | None = None,
) -> RunRecord:
    """The run ended for `reason`, unless every index succeeded after all."""
    if completions is not None and plan.counts(completions).succeeded == completions:
        return _succeeded(record, plan.counts(completions), ctx)
    return finish(record, Phase.FAILED, reason, message or record.message, ctx)


def _in_progress(
    record: RunRecord,
    plan: _IndexPlan,
    spec: JobSpec,
    ctx: RunContext,
    *,
    reason: Reason | None = None,
    message: str = "",
) -> RunRecord:
    """The run's record while indexes are unfinished: the counts, and the run's spec once frozen."""
    assert spec.completions is not None
    counts = plan.counts(spec.completions)
    phase = Phase.RUNNING if counts.running else Phase.PENDING
    reasons = plan.reasons()
    if reason is None:
        if counts.running:
            reason = Reason.RUNNING
        else:
            capacity = [r for r in _CAPACITY_REASONS if r in reasons]
            ordered = [*capacity, Reason.SUSPENDED, Reason.BACKOFF, Reason.STARTING]
            reason = next((r for r in ordered if r in reasons), Reason.WAITING)
    text = f"{counts.summary()} (parallelism {spec.effective_parallelism})"
    updated = with_status(record, phase, reason, f"{message}: {text}" if message else text, ctx)
    if record.frozen_spec is None:
        # The first index started: the run's spec is fixed from now on.
        first = plan.first_started()
        if first is not None:
            updated = replace(updated, frozen_spec=first.frozen_spec)
    if not updated.task_definition_arn:
        # Known once the first index's RunTask named it (a revision this
        # pass registers is known next pass).
        frozen = plan.frozen(record)
        if frozen is not None:
            updated = replace(updated, task_definition_arn=frozen.task_definition_arn)
    return replace(updated, not_before=None, pending_since=None)


def _with_run(
    plan: _IndexPlan, before: RunRecord, record: RunRecord, fresh: bool, ctx: RunContext
) -> list[Action]:
    """The run's own write (when it changed) ahead of its indexes' actions."""
    actions = plan.actions()
    if fresh or changed(before, record):
        record = replace(record, updated_at=ctx.now)
        return [RecordRun(record.key, record, record.message), *actions]
    return actions


def plan_any_run(
    desired: DesiredRun | None,
    record: RunRecord | None,
    indexes: Mapping[int, RunRecord],
    ctx: RunContext,
    *,
    gone_reason: Reason | None = None,
    gone_message: str = "",
    stop_message: str | None = None,
) -> list[Action]:
    """`plan_indexed_run` for an indexed run, else `plan_run`: the planner's call for any run."""
    if indexes or is_indexed(desired, record):
        return plan_indexed_run(
            desired,
            record,
            indexes,
            ctx,
            gone_reason=gone_reason,
            gone_message=gone_message,
            stop_message=stop_message,
        )
    return plan_run(
        desired,
        record,
        ctx,
        gone_reason=gone_reason,
        gone_message=gone_message,
        stop_message=stop_message,
    )
