"""`--adopt-history`: a new ledger takes the current manifests' runs as already done (pure).

Used only when the lost-ledger guard (`controller.runtime.history`) found
this owner's past in AWS beside an empty ledger and the operator chose to
adopt it rather than restore the ledger. Every current JobRun's run —
suspended or not, since it may have run before it was suspended — is recorded
`Succeeded/Adopted` without starting anything; every CronJob's last
scheduled time becomes now, so no past occurrence runs. Later passes plan
normally: a new runId, a new manifest or the next occurrence runs as usual.
Manifests invalid at this moment are not adopted (their runs are unknown).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from controller.model.manifest import DesiredSet
from controller.model.run import Phase, Reason
from controller.plan.actions import Action, Plan, RecordRun, RecordSchedule
from controller.plan.planner import desired_runs
from controller.plan.records import new_record

ADOPTED_MESSAGE = (
    "adopted as already done (--adopt-history): the ledger was empty while AWS held"
    " this owner's history; not started"
)


def adopt_history(desired: DesiredSet, now: datetime) -> Plan:
    """Record every desired run as Succeeded/Adopted and every CronJob as scheduled up to now."""
    actions: list[Action] = []
    for key, run in sorted(desired_runs(desired).items(), key=lambda item: str(item[0])):
        record = replace(
            new_record(run, now),
            phase=Phase.SUCCEEDED,
            reason=Reason.ADOPTED,
            message=ADOPTED_MESSAGE,
            finished_at=now,
        )
        actions.append(RecordRun(key, record, "adopted from AWS history (--adopt-history)"))
    for name in sorted(desired.cron_jobs):
        actions.append(
            RecordSchedule(
                cron_job=name,
                last_scheduled=now,
                missed=0,
                summary=None,
                reason="adopted from AWS history (--adopt-history): no past occurrence runs",
            )
        )
    return Plan(actions=tuple(actions))
