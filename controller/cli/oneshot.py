"""`controller oneshot FILE|NAME`: one run now, followed to its end, for CI (hako oneshot parity).

What it is: the run `NAME/<run id>` (default `oneshot-<UTC time to the
second>`, origin `oneshot`) of one manifest — a JobRun, or a CronJob's
jobTemplate — taken from FILE (a path to one manifest file) or by NAME from
--source, driven by scoped passes (`controller.runtime.one_run`): the same
ledger, the same start protocol (intent before RunTask, deterministic
client token), the same task-definition reuse (a revision with the spec
hash is never registered again), the same retries (`backoffLimit`, the
infrastructure budget, waiting while capacity scales out) as the loop. No
ledger lock: it runs beside `controller run`, which never orphans nor
supersedes a oneshot run and carries it on should this process die. A
second `oneshot --run-id SAME` after a crash adopts the task the intent
started (found by its tags) instead of starting another.

How it waits: between passes it sleeps `--poll-seconds` (default 5, like
`controller run --active-poll-seconds`) of real time and takes the loop's
cheap look at the run's tasks (`controller.observe.activity`: one
DescribeTasks); a pass follows when the look saw a change, when nothing is
in flight (a backoff or a capacity wait: the pass decides whether it is
over), when a deadline is due, or at least every minute. It waits on what
ECS shows, never on the controller's clock advancing, so it also ends
under CONTROLLER_TEST_NOW, where the clock stands still.

What it prints: phase changes with the elapsed time on stderr (`[  3.2s]
NAME/ID Running (Running): ...`); unless --no-logs, the awslogs lines of
the success containers, interleaved by time and prefixed `[CONTAINER] `, on
stdout (on stderr under `-o json|yaml`, so stdout stays one document: the
run as `status -o json` shows it plus "exitCode").

Exit status: 0 success; the success container's exit code when it ran and
failed (the first non-zero one across containers and tasks of the last
attempt); 1 when the task failed to start, was stopped by the platform or
the controller (deadline, `controller stop`), or RunTask or the manifest
was refused — with the reason on stderr, e.g. `TaskFailedToStart:
CannotPullContainerError ...`; 124 when --timeout expired (after StopTask);
130 on SIGINT (after StopTask, unless --no-stop-on-interrupt: then the run
goes on and the loop follows it). A second SIGINT while stopping exits 130
at once; the recorded cancel request is still finished by the next pass.
--no-wait prints the run key and task ARN after RunTask and exits 0. The
`--run-id` of a run that has ended reports its outcome and starts nothing.
SIGTERM is left to its default: the process ends, the run goes on.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from controller.aws.cloudwatch_logs import LogsGateway
from controller.cli.hands_on import drive, load_source, manifest_problem, timestamped_run_id
from controller.cli.report import render_document, run_json
from controller.cli.run_logs import LogTail
from controller.clock import SystemClock, Timer
from controller.errors import ControllerError, NotFoundError
from controller.model.loader import LoadResult, ManifestLoader
from controller.model.manifest import CronJob, JobRun, Kind, RunKey
from controller.model.run import (
    AttemptOutcome,
    CancelRequest,
    LedgerView,
    Phase,
    RunOrigin,
    RunRecord,
)
from controller.observe.activity import Watch, look, watch_of
from controller.plan.outcome import success_containers
from controller.plan.records import DesiredRun
from controller.runtime.activity import DEFAULT_ACTIVE_POLL_SECONDS
from controller.runtime.one_run import RunPassResult, request_cancel
from controller.runtime.reconcile_pass import PassContext
from controller.schemas import validators
from controller.sources.directory import read_paths
from controller.state.ledger import Ledger

EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130
#: A pass at least this often even when the look saw nothing (a resync).
RESYNC_SECONDS = 60.0
#: How often a pass looks while a stop we asked for is under way.
STOPPING_POLL_SECONDS = 1.0
#: Reads of the log streams after the run ended, while they still yield lines.
LOG_DRAIN_READS = 3


class RejectedManifest(NotFoundError):
    """FILE holds no single valid manifest to run (exit status 1)."""


def oneshot_target(
    target: str, run_id: str | None, ctx: PassContext
) -> tuple[DesiredRun, LoadResult]:
    """The run `oneshot FILE|NAME` means: a manifest file's one manifest, or NAME in --source.

    An existing path is a FILE; anything else a manifest name.
    """
    if Path(target).is_file():
        files, errors, warnings = read_paths([target])
        loaded = ManifestLoader(validators()).load(files, errors, warnings)
        if loaded.errors:
            raise RejectedManifest("; ".join(str(e) for e in loaded.errors))
        manifests = loaded.desired.manifests()
        if len(manifests) != 1:
            raise RejectedManifest(
                f"{target} holds {len(manifests)} manifests; oneshot runs one"
                " (name it instead: `controller --source FILE oneshot NAME`)"
            )
        manifest = manifests[0]
    else:
        loaded = load_source(ctx)
        job = loaded.desired.job_runs.get(target)
        cron = loaded.desired.cron_jobs.get(target)
        found: JobRun | CronJob | None = job or cron
        if found is None:
            where = ctx.source.describe()
            for kind in (Kind.JOB_RUN, Kind.CRON_JOB):
                if (kind.value, target) in loaded.invalid_names:
                    raise manifest_problem(loaded, kind, target, where)
            raise NotFoundError(f"no JobRun or CronJob {target} in {where}")
        manifest = found
    key = RunKey(manifest.name, run_id or timestamped_run_id("oneshot", ctx.clock.now()))
    if isinstance(manifest, JobRun):
        kind, spec = Kind.JOB_RUN, manifest.spec
    else:
        kind, spec = Kind.CRON_JOB, manifest.job_template
    desired = DesiredRun(
        key=key,
        kind=kind,
        spec=spec,
        suspend=False,  # asked for now: a manifest's suspend is the loop's business
        digest=spec.digest,
        origin=RunOrigin.ONESHOT,
    )
    return desired, loaded


def exit_status(
    record: RunRecord, indexes: Mapping[int, RunRecord] | None = None
) -> tuple[int, str]:
    """The exit status a finished run means, and why (see the module docstring).

    An indexed run that failed exits as its lowest failed index does (1 when
    no index failed: a deadline, a cancel request), with the run's reason.
    """
    if record.phase is Phase.SUCCEEDED:
        return 0, record.message
    failed = [r for _, r in sorted((indexes or {}).items()) if r.phase is Phase.FAILED]
    if failed and not record.attempts:
        status, _ = exit_status(failed[0])
        return status, record.message
    attempt = record.current_attempt
    if attempt is None:
        return 1, record.message
    if attempt.outcome is AttemptOutcome.APPLICATION_FAILURE:
        for task in attempt.tasks:
            for name in success_containers(record) or tuple(sorted(task.exit_codes)):
                code = task.exit_codes.get(name)
                if code is not None and code != 0:
                    return code, attempt.message
        return 1, attempt.message  # no exit code at all (stopped by a user, ...)
    if attempt.outcome is AttemptOutcome.STOPPED:
        return 1, record.message  # the controller stopped it: deadline, cancel
    return 1, attempt.message or record.message


@dataclass(frozen=True)
class OneshotOptions:
    """How `oneshot` waits and what it prints."""

    wait: bool = True
    timeout: float | None = None
    logs: bool = True
    stop_on_interrupt: bool = True
    poll_seconds: float = DEFAULT_ACTIVE_POLL_SECONDS
    #: text, json or yaml
    output: str = "text"


class _Interrupts:
    """SIGINT counted, not raised: the wait wakes and the loop decides what to do."""

    def __init__(self, wake: threading.Event) -> None:
        self.count = 0
        self._wake = wake

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        self._wake.set()


class Oneshot:
    """One oneshot run, from its first scoped pass to its exit status."""

    def __init__(
        self,
        ctx: PassContext,
        ledger: Ledger,
        desired: DesiredRun,
        options: OneshotOptions,
        *,
        logs: LogsGateway | None,
        out: Callable[[str], None],
        err: Callable[[str], None],
        by: str,
        timer: Timer | None = None,
    ) -> None:
        self._ctx = ctx
        self._ledger = ledger
        self._desired = desired
        self._key = desired.key
        self._options = options
        self._out = out
        self._err = err
        self._by = by
        self._timer = timer or SystemClock()
        self._wake = threading.Event()
        self._interrupts = _Interrupts(self._wake)
        self._started = self._timer.monotonic()
        self._shown: tuple[str, str] | None = None
        self._warned: set[str] = set()
        self._requeue_at: datetime | None = None
        #: an indexed run's indexes as the last pass left them
        self._indexes: Mapping[int, RunRecord] = {}
        self._logs = logs if options.logs else None
        self._tail: LogTail | None = None
        # Under -o json|yaml stdout is the one document: log lines go to stderr.
        self._log_line = out if options.output == "text" else err

    # -- the session --------------------------------------------------------

    def run(self) -> int:
        """Start (or adopt) the run, follow it to its end and return the exit status."""
        with self._sigint_counted():
            return self._follow()

    @contextmanager
    def _sigint_counted(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGINT, self._interrupts)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _follow(self) -> int:
        record = self._pass(first=True)
        if not self._options.wait:
            return self._no_wait(record)
        stopping: int | None = None  # the exit status a stop we asked for ends with
        deadline = None if self._options.timeout is None else self._started + self._options.timeout
        last_pass = self._timer.monotonic()
        while record is None or not record.phase.terminal:
            if self._interrupts.count and not self._options.stop_on_interrupt:
                self._err(
                    f"interrupted: {self._key} goes on (--no-stop-on-interrupt);"
                    " `controller run` follows it, `controller status` shows it"
                )
                return EXIT_INTERRUPTED
            if stopping is not None and self._interrupts.count > 1:
                self._err(f"interrupted again: not waiting for {self._key}'s tasks to stop")
                return stopping
            if stopping is None and (self._interrupts.count or self._expired(deadline)):
                stopping = EXIT_INTERRUPTED if self._interrupts.count else EXIT_TIMEOUT
                why = (
                    "interrupted (SIGINT)"
                    if stopping == EXIT_INTERRUPTED
                    else f"--timeout {self._options.timeout:g}s expired"
                )
                self._cancel(why)
                record = self._pass(record)  # StopTask now, not a poll later
                last_pass = self._timer.monotonic()
                continue
            # While our stop is under way, look again soon: ECS stops within seconds.
            wait = (
                self._options.poll_seconds
                if stopping is None
                else min(self._options.poll_seconds, STOPPING_POLL_SECONDS)
            )
            self._wake.wait(wait)
            self._wake.clear()
            self._pump_logs(record)
            if stopping is not None or self._due(record, last_pass):
                record = self._pass(record)
                last_pass = self._timer.monotonic()
        self._drain_logs(record)
        return self._finish(record, stopping)

    def _expired(self, deadline: float | None) -> bool:
        return deadline is not None and self._timer.monotonic() >= deadline

    def _due(self, record: RunRecord | None, last_pass: float) -> bool:
        """Whether a pass is needed now: something changed, nothing is in flight, or it is time."""
        if record is None or self._interrupts.count:
            return True
        if self._timer.monotonic() - last_pass >= RESYNC_SECONDS:
            return True
        requeue = self._requeue_at
        if requeue is not None and self._ctx.clock.now() >= requeue:
            return True
        runs = {record.key: record, **{r.key: r for r in self._indexes.values()}}
        watch: Watch = watch_of(LedgerView(runs=runs))
        if watch.empty:
            return True  # a backoff or a capacity wait: the pass decides if it is over
        try:
            return look(self._ctx.ecs, None, watch, self._ctx.owner) is not None
        except ControllerError as exc:
            self._warn(f"looking at {self._key}'s tasks failed (trying again): {exc}")
            return False

    def _pass(self, previous: RunRecord | None = None, *, first: bool = False) -> RunRecord | None:
        """A scoped pass; after the first, a failed one is a warning and the wait goes on."""
        try:
            result: RunPassResult = drive(self._ctx, self._key, self._desired)
        except ControllerError as exc:
            if first:
                raise
            self._warn(f"a pass over {self._key} failed (trying again): {exc}")
            return previous
        for problem in result.problems:
            self._warn(problem)
        self._requeue_at = result.plan.requeue_at
        self._indexes = result.indexes
        if result.record is not None:
            self._show(result.record)
        return result.record

    def _cancel(self, why: str) -> None:
        # NothingToStop: it ended meanwhile, and the pass that follows reads how.
        with suppress(NotFoundError):
            request_cancel(
                self._ledger, self._key, CancelRequest(self._by, why, self._ctx.clock.now())
            )
        self._err(f"{why}: stopping {self._key}")

    # -- output ---------------------------------------------------------------

    def _elapsed(self) -> str:
        return f"[{self._timer.monotonic() - self._started:6.1f}s]"

    def _show(self, record: RunRecord) -> None:
        shown = (record.phase.value, record.reason.value)
        if shown != self._shown:
            self._shown = shown
            self._err(f"{self._elapsed()} {record.key} {shown[0]} ({shown[1]}): {record.message}")

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._err(f"warning: {message}")

    def _pump_logs(self, record: RunRecord | None) -> int:
        """Print the success containers' new log lines; how many there were."""
        if self._logs is None or record is None or record.current_attempt is None:
            return 0
        if self._tail is None:
            if record.frozen_spec is None:
                return 0
            names = success_containers(record)
            self._tail = LogTail(self._ctx.ecs, self._logs, frozenset(names) if names else None)
        try:
            lines = self._tail.read(record.current_attempt)
        except ControllerError as exc:
            self._warn(f"reading the logs failed (trying again): {exc}")
            return 0
        for note in self._tail.notes:
            self._warn(note)
        self._tail.notes.clear()
        for ref, line in lines:
            self._log_line(f"[{ref.container}] {line.message}")
        return len(lines)

    def _drain_logs(self, record: RunRecord | None) -> None:
        for _ in range(LOG_DRAIN_READS):
            if not self._pump_logs(record):
                return

    def _no_wait(self, record: RunRecord | None) -> int:
        if record is None:
            self._err(f"error: {self._key} was not recorded")
            return 1
        attempt = record.current_attempt
        if record.phase is Phase.FAILED:
            return self._finish(record, None)
        arns = attempt.task_arns if attempt is not None else ()
        if self._options.output != "text":
            self._out(render_document(run_json(record), self._options.output))
        else:
            self._out(f"{record.key} {' '.join(arns) or '-'}")
        if not arns:
            self._err(
                f"{record.key} has no task yet: {record.message} (`controller run` follows it)"
            )
        return 0

    def _finish(self, record: RunRecord | None, stopping: int | None) -> int:
        if record is None:
            self._err(f"error: {self._key} was not recorded")
            return 1
        status, why = exit_status(record, self._indexes)
        if stopping is not None and record.phase is Phase.FAILED:
            status = stopping
        if status != 0:
            self._err(f"{record.key} {record.phase.value} ({record.reason.value}): {why}")
        if self._options.output != "text":
            document = {**run_json(record, self._indexes), "exitCode": status}
            self._out(render_document(document, self._options.output))
        return status
