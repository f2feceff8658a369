"""`controller trigger` and `controller stop`: one run by hand, through a scoped pass.

Both act on one named run and take no ledger lock (DESIGN.md §9): they run
beside a live `controller run`, kept safe by the per-run optimistic versions
and the start protocol (`controller.runtime.one_run`).

**trigger CRONJOB** starts one occurrence now, outside the schedule, like
`kubectl create job --from=cronjob/NAME`: the run `NAME/manual-<UTC time to
the second>` (the controller's clock, so CONTROLLER_TEST_NOW applies) or
`NAME/<--run-id>`, built from the jobTemplate, origin `manual`, kind CronJob.
It is recorded and started at once (intent, RunTask) and subject to nothing
but its own spec: not the CronJob's `suspend`, not its concurrencyPolicy.
It does not count as a scheduled occurrence: the schedule's watermark and
`lastScheduleTime` do not move. It is an unfinished run of the CronJob,
though, so the loop follows it like any occurrence, and a scheduled
occurrence due while it runs sees it running: under Forbid that occurrence
is not started (it is Missed once its starting deadline passes), under
Replace the manual run is stopped (Failed/Cancelled) for it, under Allow
both run. A run already recorded under that key is shown and nothing new is
started (trigger is idempotent).

**stop NAME** cancels a run (default: the newest unfinished run of NAME):
the cancel request (who: `$USER@host`, why: `--reason`) is recorded on the
run first, then scoped passes StopTask its live tasks (only tasks carrying
this owner's tag) and, once none runs, record Failed/Cancelled; it is never
retried, and a cancelled JobRun is not started again until its runId
changes. Every pass honours a recorded request the same way, so a `stop`
that dies after recording is finished by the loop or by running it again.
`stop` waits up to `--wait` seconds for the tasks to stop (ECS gives a
container its stopTimeout, 30 s by default); after that the request stays
recorded and the next pass that sees the tasks stopped ends the run.
"""

from __future__ import annotations

import getpass
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from controller.clock import SystemClock, Timer
from controller.errors import NotFoundError, TransientError
from controller.model.loader import LoadResult
from controller.model.manifest import Kind, RunKey
from controller.model.run import CancelRequest, LedgerView, Phase, RunOrigin, RunRecord
from controller.plan.records import DesiredRun
from controller.runtime.one_run import (
    NothingToStop,
    RunPassResult,
    newest_unfinished,
    reconcile_run,
    request_cancel,
)
from controller.runtime.reconcile_pass import PassContext
from controller.state.ledger import Ledger

#: Scoped passes in a row that may meet a ledger conflict before giving up.
CONFLICT_TRIES = 10
#: How often `stop` looks whether the stopped tasks have stopped.
STOP_POLL_SECONDS = 1.0
#: `stop --wait`'s default.
DEFAULT_STOP_WAIT_SECONDS = 60.0


def timestamped_run_id(prefix: str, now: datetime) -> str:
    """`PREFIX-<UTC time to the second>`, e.g. manual-20261202T141500Z."""
    return f"{prefix}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def requester() -> str:
    """Who asks, for the cancel request: `$USER@hostname` (or `cli` when unknown)."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "cli"


def drive(ctx: PassContext, key: RunKey, desired: DesiredRun | None = None) -> RunPassResult:
    """A scoped pass, repeated while someone else saves the run meanwhile (ledger conflict)."""
    for _ in range(CONFLICT_TRIES):
        result = reconcile_run(ctx, key, desired)
        if not result.conflicted:
            return result
    raise TransientError(f"{key} kept changing under this command (ledger conflicts); try again")


def load_source(ctx: PassContext) -> LoadResult:
    """The manifests of --source, loaded (unreadable files are reported by the caller)."""
    snapshot = ctx.source.snapshot()
    return ctx.loader.load(snapshot.files, snapshot.errors, snapshot.warnings)


def manifest_problem(loaded: LoadResult, kind: Kind, name: str, where: str) -> NotFoundError:
    """Why `name` is not a valid manifest of `kind` in the source (exit 1)."""
    if (kind.value, name) in loaded.invalid_names:
        errors = "; ".join(str(e) for e in loaded.errors)
        return NotFoundError(f"{kind.value} {name} in {where} is invalid: {errors}")
    return NotFoundError(f"no {kind.value} {name} in {where}")


@dataclass(frozen=True)
class Triggered:
    """What `trigger` did: the run, and whether it was recorded before (nothing started)."""

    record: RunRecord
    existed: bool
    problems: tuple[str, ...] = ()


def trigger(ctx: PassContext, loaded: LoadResult, name: str, run_id: str | None) -> Triggered:
    """Record and start one manual occurrence of the CronJob `name` (see the module docstring)."""
    cron = loaded.desired.cron_jobs.get(name)
    if cron is None:
        raise manifest_problem(loaded, Kind.CRON_JOB, name, ctx.source.describe())
    key = RunKey(name, run_id or timestamped_run_id("manual", ctx.clock.now()))
    existing = ctx.ledger.view().runs.get(key)
    if existing is not None:
        return Triggered(existing, existed=True)
    template = cron.job_template
    desired = DesiredRun(
        key=key,
        kind=Kind.CRON_JOB,
        spec=template,
        suspend=False,  # a manual run is asked for now, whatever the CronJob's suspend says
        digest=template.digest,
        origin=RunOrigin.MANUAL,
    )
    result = drive(ctx, key, desired)
    if result.record is None:
        why = "; ".join(result.problems) or "nothing could be planned"
        raise TransientError(f"{key} was not recorded: {why}")
    return Triggered(result.record, existed=False, problems=tuple(result.problems))


def run_to_stop(view: LedgerView, name: str, run_id: str | None) -> RunKey:
    """The run `stop NAME [--run-id]` means: that one, or NAME's newest unfinished run."""
    runs = view.runs_of(name)
    if run_id is not None:
        key = RunKey(name, run_id)
        if key not in view.runs:
            raise NothingToStop(f"nothing to stop: no run {key} in the ledger")
        return key
    if not runs:
        raise NothingToStop(f"nothing to stop: no run {name} in the ledger")
    unfinished = newest_unfinished(runs)
    if unfinished is None:
        newest = runs[-1]
        raise NothingToStop(
            f"nothing to stop: every run of {name} has ended (newest: {newest.key}"
            f" {newest.phase.value}/{newest.reason.value})"
        )
    return unfinished.key


@dataclass(frozen=True)
class Stopped:
    """What `stop` did: the run as it is now, and whether its end is recorded yet."""

    record: RunRecord
    #: True when the run ended Failed/Cancelled; False when its tasks were
    #: still stopping at the end of --wait (the request stays recorded)
    finished: bool
    problems: tuple[str, ...] = ()


def stop(
    ctx: PassContext,
    ledger: Ledger,
    key: RunKey,
    reason: str,
    *,
    by: str,
    wait_seconds: float,
    timer: Timer | None = None,
    poll_seconds: float = STOP_POLL_SECONDS,
) -> Stopped:
    """Record the cancel request, then scoped passes until the run has ended (or `wait_seconds`).

    Raises NothingToStop when the run has ended already, or ends
    Succeeded before the stop took effect (its tasks had all exited 0).
    """
    timer = timer or SystemClock()
    request_cancel(ledger, key, CancelRequest(by=by, reason=reason, at=ctx.clock.now()))
    deadline = timer.monotonic() + wait_seconds
    idle = threading.Event()  # never set: a bounded, real-time wait between looks
    problems: list[str] = []
    while True:
        result = drive(ctx, key)
        problems.extend(p for p in result.problems if p not in problems)
        record = result.record
        if record is None:
            raise NothingToStop(f"nothing to stop: no run {key} in the ledger")
        if record.phase is Phase.SUCCEEDED:
            raise NothingToStop(
                f"nothing to stop: {key} succeeded before the stop took effect ({record.message})"
            )
        if record.phase.terminal:
            return Stopped(record, finished=True, problems=tuple(problems))
        if timer.monotonic() >= deadline:
            return Stopped(record, finished=False, problems=tuple(problems))
        idle.wait(poll_seconds)
