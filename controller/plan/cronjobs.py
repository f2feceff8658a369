"""CronJobs in the pass: due occurrences become runs, the rest becomes ledger records (pure).

`schedule_cron_jobs` runs before anything is observed, so the occurrence
due now joins the desired runs (and the observer lists its task-definition
family like any JobRun's). Every unfinished run of a present CronJob is
desired too, under its frozen spec: an earlier occurrence still running is
not an orphan. `cron_actions` then turns each `ScheduleDecision` into data:
Missed runs, StopTasks for concurrencyPolicy Replace, and the new
`last_scheduled` watermark — recorded after the run it covers, so a crash in
between makes the next pass decide the same occurrence again (and find its
run already recorded, never starting it twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from controller.model.manifest import CronJob, Kind, RunKey
from controller.model.run import LedgerView, Phase, Reason, RunRecord
from controller.plan.actions import Action, RecordRun, RecordSchedule
from controller.plan.runs import DesiredRun, RunContext, plan_run
from controller.plan.schedule import ScheduleDecision, decide


@dataclass(frozen=True)
class ScheduledCron:
    """The CronJobs' part of a pass: runs to reconcile and the decisions behind them."""

    runs: Mapping[RunKey, DesiredRun] = field(default_factory=dict)
    decisions: Mapping[str, ScheduleDecision] = field(default_factory=dict)


def schedule_cron_jobs(
    cron_jobs: Mapping[str, CronJob], ledger: LedgerView, now: datetime
) -> ScheduledCron:
    """Decide every CronJob: its due occurrence and its unfinished runs become desired runs."""
    runs: dict[RunKey, DesiredRun] = {}
    decisions: dict[str, ScheduleDecision] = {}
    for name, cron in sorted(cron_jobs.items()):
        active = [
            r for r in ledger.runs_of(name) if r.kind is Kind.CRON_JOB and not r.phase.terminal
        ]
        last = ledger.cron_last_scheduled.get(name)
        # First sight of a CronJob: nothing before now counts as missed.
        active_ids = [r.key.run_id for r in active]
        decision = decide(cron, last, now if last is None else last, now, active_ids)
        decisions[name] = decision
        for record in active:
            if record.key.run_id in decision.stop:
                continue  # stopped below (concurrencyPolicy Replace)
            runs[record.key] = _desired(record.key, cron)
        if decision.start is not None:
            key = RunKey(name, decision.start.run_id)
            existing = ledger.runs.get(key)
            if existing is None or not existing.phase.terminal:
                runs[key] = _desired(key, cron)
    return ScheduledCron(runs=runs, decisions=decisions)


def _desired(key: RunKey, cron: CronJob) -> DesiredRun:
    template = cron.job_template
    return DesiredRun(
        key=key,
        kind=Kind.CRON_JOB,
        spec=template,
        suspend=False,  # a CronJob's suspend stops new occurrences, not running ones
        digest=template.digest,
    )


def cron_actions(
    scheduled: ScheduledCron,
    ledger: LedgerView,
    ctx: RunContext,
) -> list[Action]:
    """Missed runs, Replace stops and the watermark of every decision."""
    actions: list[Action] = []
    for name, decision in sorted(scheduled.decisions.items()):
        for run_id in decision.stop:
            record = ledger.runs.get(RunKey(name, run_id))
            if record is not None and not record.phase.terminal:
                actions.extend(
                    plan_run(
                        None,
                        record,
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
