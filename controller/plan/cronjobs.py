"""CronJobs in the pass: due occurrences become runs, the rest becomes ledger records (pure).

Scheduling has two stages, because concurrency depends on what this pass
observes:

* `schedule_cron_jobs` runs before anything is observed. It finds each
  CronJob's due occurrence and makes it a desired run whatever the
  concurrencyPolicy, so that the observer lists its task-definition family
  like any JobRun's. Every unfinished run of a present CronJob is desired
  too, under its frozen spec: an earlier occurrence still running is not an
  orphan.
* `settle_concurrency` runs inside `make_plan`, once every existing run has
  been planned against this pass's observation. It applies the
  concurrencyPolicy to the runs still active *then*: a run this pass saw
  finish neither holds back the next occurrence (Forbid) nor is stopped for
  it (Replace). Deciding on the ledger as it was before the pass lost every
  other occurrence of a short every-minute job.

`cron_job_actions` then turns each settled `ScheduleDecision` into data:
Missed runs, StopTasks for concurrencyPolicy Replace, and the new
`last_scheduled` watermark — recorded after the run it covers, so a crash in
between makes the next pass decide the same occurrence again (and find its
run already recorded, never starting it twice).

A CronJob whose schedule cannot be computed is reported in
`ScheduledCron.errors` and left alone this pass (its unfinished runs go on);
it never stops the other CronJobs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from controller.model.manifest import ConcurrencyPolicy, CronJob, Kind, RunKey
from controller.model.run import LedgerView, Phase, Reason, RunOrigin, RunRecord
from controller.plan.actions import Action, RecordRun, RecordSchedule, planning_error
from controller.plan.indexed import plan_any_run
from controller.plan.records import DesiredRun, RunContext
from controller.plan.schedule import ScheduleDecision, decide


@dataclass(frozen=True)
class ScheduledCron:
    """The CronJobs' part of a pass: runs to reconcile and the decisions behind them."""

    runs: Mapping[RunKey, DesiredRun] = field(default_factory=dict)
    decisions: Mapping[str, ScheduleDecision] = field(default_factory=dict)
    #: the manifests, for `settle_concurrency`
    cron_jobs: Mapping[str, CronJob] = field(default_factory=dict)
    #: due occurrences not in the ledger yet: started only once concurrency
    #: is settled
    candidates: frozenset[RunKey] = frozenset()
    #: one line per CronJob that could not be scheduled this pass
    errors: tuple[str, ...] = ()


def schedule_cron_jobs(
    cron_jobs: Mapping[str, CronJob], ledger: LedgerView, now: datetime
) -> ScheduledCron:
    """Every CronJob's due occurrence and unfinished runs, as desired runs.

    The decisions are made as if no other run were active; `make_plan`
    settles concurrencyPolicy after observation (`settle_concurrency`).
    """
    runs: dict[RunKey, DesiredRun] = {}
    decisions: dict[str, ScheduleDecision] = {}
    candidates: set[RunKey] = set()
    errors: list[str] = []
    for name, cron in sorted(cron_jobs.items()):
        for record in ledger.runs_of(name):
            if record.kind is Kind.CRON_JOB and not record.phase.terminal:
                runs[record.key] = _desired(record.key, cron)
        try:
            decision = _decide(cron, ledger, now, ())
        except Exception as exc:  # one CronJob's schedule never stops the others
            errors.append(planning_error(f"CronJob {name}", exc))
            continue
        decisions[name] = decision
        if decision.start is not None:
            key = RunKey(name, decision.start.run_id)
            if key not in ledger.runs:
                runs[key] = _desired(key, cron)
                candidates.add(key)
    return ScheduledCron(
        runs=runs,
        decisions=decisions,
        cron_jobs=dict(cron_jobs),
        candidates=frozenset(candidates),
        errors=tuple(errors),
    )


def settle_concurrency(
    scheduled: ScheduledCron,
    ledger: LedgerView,
    latest: Mapping[RunKey, RunRecord],
    now: datetime,
) -> tuple[dict[str, ScheduleDecision], list[str]]:
    """The decisions with concurrencyPolicy applied to the runs active in `latest`.

    `latest` is every run as this pass leaves it (observation folded in), so
    a run that finished since the last pass is not active. Only a CronJob
    whose due occurrence meets another active run is decided again. Returns
    the decisions and one error line per CronJob that could not be decided
    (it is left out: nothing of it is started, stopped or recorded).
    """
    active: dict[str, list[str]] = {}
    for key, record in latest.items():
        if key.index is None and record.kind is Kind.CRON_JOB and not record.phase.terminal:
            active.setdefault(key.name, []).append(key.run_id)
    decisions: dict[str, ScheduleDecision] = {}
    errors: list[str] = []
    for name, decision in sorted(scheduled.decisions.items()):
        cron = scheduled.cron_jobs.get(name)
        start = decision.start
        if cron is None or start is None or cron.concurrency_policy is ConcurrencyPolicy.ALLOW:
            decisions[name] = decision  # nothing starts, or nothing else matters
            continue
        others = sorted(r for r in active.get(name, ()) if r != start.run_id)
        if not others:
            decisions[name] = decision
            continue
        try:
            decisions[name] = _decide(cron, ledger, now, others)
        except Exception as exc:  # one CronJob's schedule never stops the others
            errors.append(planning_error(f"CronJob {name}", exc))
    return decisions, errors


def _decide(
    cron: CronJob, ledger: LedgerView, now: datetime, active_run_ids: Collection[str]
) -> ScheduleDecision:
    last = ledger.cron_last_scheduled.get(cron.name)
    # First sight of a CronJob: nothing before now counts as missed.
    return decide(cron, last, now if last is None else last, now, active_run_ids)


def _desired(key: RunKey, cron: CronJob) -> DesiredRun:
    template = cron.job_template
    return DesiredRun(
        key=key,
        kind=Kind.CRON_JOB,
        spec=template,
        suspend=False,  # a CronJob's suspend stops new occurrences, not running ones
        digest=template.digest,
        # Only a new occurrence's first record takes this; a run already in
        # the ledger (a manual one included) keeps its own origin.
        origin=RunOrigin.SCHEDULE,
    )


def cron_job_actions(
    name: str,
    decision: ScheduleDecision,
    ledger: LedgerView,
    ctx: RunContext,
) -> list[Action]:
    """Replace stops, Missed runs and the watermark of one CronJob's decision."""
    actions: list[Action] = []
    for run_id in decision.stop:
        key = RunKey(name, run_id)
        record = ledger.runs.get(key)
        if record is not None and not record.phase.terminal:
            actions.extend(
                plan_any_run(
                    None,
                    record,
                    ledger.indexes_of(key),
                    ctx,
                    gone_reason=Reason.CANCELLED,
                    gone_message=decision.stop_reason,
                    stop_message=decision.stop_reason,
                )
            )
    for missed in decision.missed:
        key = RunKey(name, missed.run_id)
        if key in ledger.runs:
            continue  # recorded by an earlier pass (or running: never overwrite)
        record = RunRecord(
            key=key,
            kind=Kind.CRON_JOB,
            phase=Phase.FAILED,
            reason=Reason.MISSED,
            message=missed.message,
            created_at=ctx.now,
            updated_at=ctx.now,
            spec_digest="",
            finished_at=ctx.now,
        )
        actions.append(RecordRun(key, record, missed.message))
    previous = ledger.cron_last_scheduled.get(name)
    if previous != decision.last_scheduled or decision.missed_summary is not None:
        summary = decision.missed_summary.message if decision.missed_summary else None
        actions.append(
            RecordSchedule(
                cron_job=name,
                last_scheduled=decision.last_scheduled,
                missed=len([a for a in actions if _is_missed_of(a, name)])
                + (decision.missed_summary.count if decision.missed_summary else 0),
                summary=summary,
                reason=decision.message,
            )
        )
    return actions


def _is_missed_of(action: Action, name: str) -> bool:
    return (
        isinstance(action, RecordRun)
        and action.run.name == name
        and action.record.reason is Reason.MISSED
        and action.record.version == 0
    )


def next_occurrence_due(scheduled: ScheduledCron) -> datetime | None:
    """The earliest next occurrence of any CronJob: the loop wakes up then."""
    times = [d.next_wake for d in scheduled.decisions.values() if d.next_wake is not None]
    return min(times) if times else None
