"""`--adopt-history` as a pure plan: the current runs recorded as done, nothing started."""

from __future__ import annotations

from controller.model.loader import ManifestLoader
from controller.model.manifest import RunKey
from controller.model.run import Phase, Reason
from controller.plan.actions import RecordRun, RecordSchedule
from controller.plan.adopt import adopt_history
from controller.schemas import validators
from tests.plan.builders import NOW


def job_run(name: str, run_id: str, *, suspend: bool = False) -> str:
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"  runId: '{run_id}'\n"
        f"  suspend: {str(suspend).lower()}\n"
        "  taskDefinition:\n"
        f"    family: {name}\n"
        "    containerDefinitions: [{name: app, image: busybox, memory: 128}]\n"
    )


CRON = (
    "apiVersion: ecs-job-controller/v1\n"
    "kind: CronJob\n"
    "metadata: {name: nightly}\n"
    "spec:\n"
    "  schedule: '30 3 * * *'\n"
    "  jobTemplate:\n"
    "    cluster: batch\n"
    "    taskDefinition:\n"
    "      family: nightly\n"
    "      containerDefinitions: [{name: app, image: busybox, memory: 128}]\n"
)


def test_every_current_run_is_recorded_as_done_and_every_cron_job_as_scheduled() -> None:
    files = {
        "a.yaml": job_run("a", "7").encode(),
        "held.yaml": job_run("held", "1", suspend=True).encode(),
        "nightly.yaml": CRON.encode(),
    }
    loaded = ManifestLoader(validators()).load(files)
    assert not loaded.errors

    plan = adopt_history(loaded.desired, NOW)

    records = [a for a in plan.actions if isinstance(a, RecordRun)]
    # Suspended too: it may have run before it was suspended.
    assert [a.run for a in records] == [RunKey("a", "7"), RunKey("held", "1")]
    for action in records:
        record = action.record
        assert (record.phase, record.reason) == (Phase.SUCCEEDED, Reason.ADOPTED)
        assert record.attempts == ()
        assert record.finished_at == NOW
        assert record.version == 0  # a new record: the ledger held none
    schedules = [a for a in plan.actions if isinstance(a, RecordSchedule)]
    assert [(s.cron_job, s.last_scheduled, s.missed) for s in schedules] == [("nightly", NOW, 0)]
    assert len(plan.actions) == 3  # nothing registered, nothing started
    assert plan.warnings == ()
