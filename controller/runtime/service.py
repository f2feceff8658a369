"""`controller run`: the loop with everything around it, started and stopped in order.

    lease ──► pass wiring ──► metrics server ──► source watcher / poller ──► loop
                                                                              │
    SIGTERM / SIGINT ──► loop.request_stop() ──► pass in flight finishes ─────┘
                         then: watcher, metrics server, ledger, lease closed; exit 0

The loop (`controller.runtime.loop`) decides when passes run; this module
supplies the pass (`reconcile_once` over one PassContext, so the manifest
loader's last-known-good memory lives as long as the process), the triggers
(the directory watcher, or the S3 poll), and what happens after each pass:
metrics, one log line per event, and the sync record `status` shows.

The lease depends on the ledger. With SQLite it is a file lock taken before
anything else (the same lock `reconcile --once` takes for its pass); `run`
waits up to `--lock-timeout` for it, then exits 2 naming the holder. With DynamoDB it is the table's
lease item (`controller.state.leader_lease`), kept by a thread that tries every
2 s: every replica starts, but only the holder runs passes; the others stand
by (no passes, no AWS calls but the lease's) and take over when the holder
releases the lease on shutdown or lets it expire. A holder whose renewals
fail stops running passes at its renew deadline, until it holds the lease again.

The loop runs on a worker thread while the main thread waits for it: Python
runs signal handlers on the main thread only, and a handler that merely sets
a flag and wakes the loop can never deadlock against a lock the interrupted
code holds. The kernel, though, may hand a process's SIGTERM to any of its
threads (on a busy machine, one that forks `git` or starts a pool thread can
take it before the sleeping main thread runs); the main thread then sees no
EINTR, and blocked in `Thread.join()` it never ran the handler: the loop
never stopped.
So the main thread waits on a socket instead (`MainThreadWakeup`): the
signal's C-level handler writes to it from whichever thread took the signal
(`signal.set_wakeup_fd`), as the worker does when the loop ends.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from controller.apply.executor import Outcome
from controller.aws.session import AwsSession
from controller.aws.sqs import SqsGateway
from controller.clock import SystemClock
from controller.errors import ControllerError, TerminalError, TransientError, UsageError
from controller.model.problems import ManifestError
from controller.plan.actions import Action, describe
from controller.runtime.activity import DEFAULT_ACTIVE_POLL_SECONDS, ActivityWatcher
from controller.runtime.ecs_events import EventInbox
from controller.runtime.history import LostLedger
from controller.runtime.log_format import configure_logging
from controller.runtime.loop import EventWaiter, Loop, LoopSettings, PassReport
from controller.runtime.metrics import (
    KNOWN_OPERATIONS,
    S3_OPERATIONS,
    SNS_OPERATIONS,
    SQS_OPERATIONS,
    Metrics,
    MetricsServer,
    parse_address,
)
from controller.runtime.reconcile_pass import PassResult, reconcile_once, refuse_lost_ledger
from controller.runtime.wiring import PassOptions, PassWiring, Settings, build_pass
from controller.sources.directory import DirectorySource
from controller.sources.s3 import S3Source
from controller.sources.snapshot import LastGoodSource
from controller.sources.watch import DirectoryWatcher
from controller.state import DynamoDbLedger, ledger_file
from controller.state.file_lock import FileLease, lease_path
from controller.state.leader_lease import (
    LeaderElector,
    LeaseKeeper,
    LeaseSettings,
    replica_identity,
)
from controller.state.sync import (
    SyncRecord,
    short_revision,
    sync_record_path,
    write_sync_record,
)

log = logging.getLogger("controller.run")


@dataclass(frozen=True)
class RunOptions:
    """The options of `controller run` beyond the global ones."""

    pass_options: PassOptions = field(default_factory=PassOptions)
    metrics_addr: str = "127.0.0.1:9464"
    resync_seconds: float = 60.0
    s3_poll_seconds: float = 30.0
    log_format: str = "text"
    debounce_seconds: float = 0.5
    #: how often runs in flight are looked at between passes
    active_poll_seconds: float = DEFAULT_ACTIVE_POLL_SECONDS
    #: an SQS queue fed with ECS state-change events, or None
    events_queue: str | None = None


def _run_of(action: Action) -> str | None:
    """The run key an action is about (registrations and prunes are about none)."""
    run = getattr(action, "run", None)
    return None if run is None else str(run)


class MainThreadWakeup:
    """Wakes the main thread for a signal, whichever thread the kernel delivered it to.

    Python runs a signal's handler on the main thread, at its next bytecode;
    a main thread blocked in a lock (`Thread.join()`) only gets there if the
    signal interrupts *its* system call. `signal.set_wakeup_fd` makes the
    C-level handler, on any thread, write the signal's number to a socket the
    main thread waits on. Entered on the main thread only.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous = -1

    def __enter__(self) -> MainThreadWakeup:
        # A full buffer only means a wake-up is already pending: no warning.
        self._previous = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        signal.set_wakeup_fd(self._previous)
        self._reader.close()
        self._writer.close()

    def wake(self) -> None:
        """End the main thread's current (or next) `wait`; from any thread."""
        # A full buffer holds wake-ups the main thread has not read yet: enough.
        with contextlib.suppress(BlockingIOError):
            self._writer.send(b"\0")

    def wait(self) -> None:
        """Block until a signal arrives (its handler runs as this returns) or `wake` is called."""
        # select() retries after EINTR itself, once the handlers have run; a
        # signal taken by another thread arrives as a byte, and its handler
        # runs at the main thread's next bytecode, before this returns.
        select.select([self._reader], [], [])
        with contextlib.suppress(BlockingIOError):  # raised once drained
            while self._reader.recv(4096):
                pass


class SyncService:
    """One `controller run` process: lease, pass, metrics, watcher and loop."""

    def __init__(self, settings: Settings, options: RunOptions) -> None:
        """Set everything up (setup problems raise UsageError/TerminalError/OSError)."""
        configure_logging(options.log_format)
        try:
            host, port = parse_address(options.metrics_addr)
        except ValueError as exc:
            raise UsageError(f"--metrics-addr: {exc}") from None
        ledger_path = ledger_file(settings.state)
        self.settings = settings
        self.options = options
        # The sync record is a file next to the SQLite ledger; DynamoDB has none.
        self.sync_path = None if ledger_path is None else sync_record_path(ledger_path)
        self._closers: list[Callable[[], None]] = []
        #: the DynamoDB lease's keeper; None with SQLite (the file lock is held throughout)
        self._keeper: LeaseKeeper | None = None
        self._waiter = EventWaiter()
        if ledger_path is not None:
            lease = FileLease(lease_path(ledger_path), "controller run")
            self._closers.append(lease.acquire(options.pass_options.lock_timeout).release)
        self._watcher: DirectoryWatcher | None = None
        self._broken = False
        try:
            self._start(options, host, port, ledger_path)
        except BaseException:
            self.close()
            raise

    def _start(self, options: RunOptions, host: str, port: int, ledger_path: Path | None) -> None:
        self.wiring: PassWiring = build_pass(
            self.settings,
            dry_run=False,
            options=options.pass_options,
            keep_last_good=True,
            warn=lambda message: log.warning("%s", message),
        )
        self._closers.append(self.wiring.ledger.close)
        # A lost ledger is a setup error at start, not a pass failure to retry.
        refuse_lost_ledger(self.wiring.context)
        source = self.wiring.context.source
        # A source unreadable at start is a setup error (exit 2); once one
        # snapshot was read, the loop falls back on the last good one instead.
        source.snapshot()
        inner = source.inner if isinstance(source, LastGoodSource) else source
        clock = SystemClock()
        polled = isinstance(inner, S3Source)
        operations = (
            KNOWN_OPERATIONS
            + (S3_OPERATIONS if polled else ())
            + (SQS_OPERATIONS if options.events_queue else ())
            + (SNS_OPERATIONS if options.pass_options.notify_sns else ())
        )
        self.metrics = Metrics(clock, options.resync_seconds, operations)
        server = MetricsServer(self.metrics, host, port).start()
        self._closers.append(server.stop)
        self.metrics_address = server.address
        bound_host, bound_port = server.address
        log.info(
            "serving metrics on http://%s:%d/metrics (and /healthz, /readyz)",
            bound_host,
            bound_port,
            extra={"metrics_port": bound_port},
        )
        context = self.wiring.context
        self._events_session: AwsSession | None = None
        inbox: EventInbox | None = None
        if options.events_queue:
            # Its own session: the receiver thread makes calls while a pass does.
            self._events_session = AwsSession(self.settings.region)
            inbox = EventInbox(
                SqsGateway(self._events_session),
                options.events_queue,
                self.settings.owner,
                lambda _why: self.loop.look_now(),
            )
        self.activity = ActivityWatcher(
            context.ecs,
            context.ecs_instances,
            self.settings.owner,
            poll_seconds=options.active_poll_seconds,
            inbox=inbox,
        )
        self.loop = Loop(
            self._pass,
            clock=clock,
            settings=LoopSettings(
                resync_seconds=options.resync_seconds,
                debounce_seconds=options.debounce_seconds,
                poll_seconds=options.s3_poll_seconds if polled else None,
            ),
            waiter=self._waiter,
            pass_clock=self.wiring.context.clock,
            poll=inner.poll if isinstance(inner, S3Source) else None,
            on_pass=self._record,
            activity=self.activity,
        )
        if inbox is not None:
            inbox.start()  # after the loop exists: an event wakes it
            self._closers.append(inbox.stop)
            log.info("receiving ECS events from %s", options.events_queue)
        if isinstance(inner, DirectorySource):
            # The ledger's files (-wal, -shm, .lock, .sync.json) share its name
            # as a prefix; a ledger inside the checkout must not wake the loop.
            ignore = [] if ledger_path is None else [ledger_path]
            watcher = DirectoryWatcher(inner.root, self.loop.notify, ignore=ignore)
            watcher.start()
            self._closers.append(watcher.stop)
            self._watcher = watcher
        self._errors_seen: frozenset[ManifestError] = frozenset()
        if ledger_path is None:
            self._keeper = self._keep_lease(clock)
        #: logged once the signal handlers are installed: "watching" means ready
        self._ready_line = (
            f"watching {source.describe()}"
            f" ({f'polled every {options.s3_poll_seconds:g}s' if polled else 'inotify'}),"
            f" resync every {options.resync_seconds:g}s,"
            f" runs in flight looked at every {options.active_poll_seconds:g}s"
            + (f", ECS events from {options.events_queue}" if options.events_queue else "")
        )

    def _keep_lease(self, clock: SystemClock) -> LeaseKeeper:
        """Start contending for the DynamoDB ledger's lease (released by close)."""
        ledger = self.wiring.ledger
        if not isinstance(ledger, DynamoDbLedger):
            raise UsageError(f"controller run: no lease for the ledger {self.settings.state}")
        identity = replica_identity()
        elector = LeaderElector(ledger.lease_store(), identity, clock, LeaseSettings())
        keeper = LeaseKeeper(elector, self._on_leadership)
        self._closers.append(keeper.stop)  # before the ledger closes: release needs it
        log.info("contending for the lease of %s as %s", self.settings.state, identity)
        return keeper.start()

    def _on_leadership(self, leading: bool) -> None:
        """Wake the loop: to run a pass now that we lead, or to stand by now that we do not."""
        if leading:
            log.info("leading: passes run")
            self.loop.notify("became the leader")
        else:
            holder = self._keeper.elector.holder if self._keeper is not None else None
            log.warning("not leading (lease held by %s): standing by", holder or "nobody")
            self._waiter.wake()

    def _pass(self, pass_id: str) -> PassResult:
        del pass_id  # carried into log lines by the loop's context variable
        if self._keeper is not None and not self._keeper.leading:
            # Lost between the loop's check and now: the next try decides.
            raise TransientError("the lease was lost just before the pass")
        messages = self.activity.messages_for_pass()
        inbox = self.activity.inbox
        try:
            result = reconcile_once(self.wiring.context)
        except LostLedger as exc:
            # Emptied under a running loop: nothing starts until someone acts.
            if inbox is not None:
                inbox.give_back(messages)
            raise TerminalError(str(exc)) from None
        except BaseException:
            if inbox is not None:
                inbox.give_back(messages)  # the next pass acts on them
            raise
        if inbox is not None:
            inbox.acknowledge(messages)  # only now: the pass they triggered has finished
        return result

    # -- after each pass --------------------------------------------------------------

    def _record(self, report: PassReport) -> None:
        """Metrics, log lines and the sync record for one finished pass."""
        result = report.result
        counts: Counter[str] = result.applied.counts if result is not None else Counter()
        self.metrics.pass_finished(
            ok=report.ok,
            seconds=report.duration_seconds,
            action_counts=counts,
            scale_ins=result.applied.scale_ins if result is not None else None,
            scale_in_groups=[g.name for g in result.plan.capacity_groups] if result else (),
        )
        calls = self.wiring.session.call_counts()
        if self._events_session is not None:
            calls += self._events_session.call_counts()
        self.metrics.aws_calls_total(calls)
        try:
            view = self.wiring.ledger.view()
        except ControllerError as exc:  # a ledger gone bad: the pass reports it, in one line
            log.warning("runs by phase not updated: %s", exc)
        else:
            self.metrics.runs_by_phase(
                Counter(r.phase.value for k, r in view.runs.items() if k.index is None)
            )
            capacity = result.capacity if result is not None else None
            self.activity.update(view, capacity.instance_counts if capacity else None)
        if result is not None:
            self._log_result(result)
        if result is not None and self.sync_path is not None:
            write_sync_record(
                self.sync_path,
                SyncRecord(
                    revision=result.snapshot.revision,
                    at=self.wiring.context.clock.now(),
                    source=self.wiring.context.source.describe(),
                    pass_id=report.pass_id,
                    ok=report.ok,
                ),
            )
        for problem in report.problems:
            log.error("%s", problem)
        if self._watcher is not None and self._watcher.refresh():
            log.info("watching %s again (it was recreated or moved)", self._watcher.target)
            self.loop.notify("source directory watched again")
        summary = {
            "trigger": report.trigger,
            "seconds": round(report.duration_seconds, 3),
            "actions": len(result.plan.actions) if result is not None else 0,
        }
        if result is not None:
            summary["revision"] = short_revision(result.snapshot.revision)
        if report.ok:
            log.info("pass done", extra=summary)
        elif report.retry_in is not None:
            log.warning("pass failed; retrying in %.1fs", report.retry_in, extra=summary)
        else:
            log.error("pass failed; not retried (retrying cannot help)", extra=summary)

    def _log_result(self, result: PassResult) -> None:
        for action in result.plan.actions:
            extra = {"run": run} if (run := _run_of(action)) is not None else {}
            outcome = result.applied.outcome_of(action)
            if outcome is None:
                log.error("%s: not applied", describe(action), extra=extra)
            elif outcome.outcome is Outcome.APPLIED:
                log.info("%s", outcome.line, extra=extra)
            elif outcome.outcome is Outcome.DEFERRED:
                log.info("%s", outcome.line, extra=extra)  # the next pass, at once
            else:
                log.error("%s", outcome.line, extra=extra)
        for problem in result.plan.errors:
            log.error("%s", problem)
        for warning in result.plan.warnings:
            log.warning("%s", warning)
        # Invalid manifests are logged when they change, not on every resync.
        errors = frozenset(result.loaded.errors)
        for error in sorted(errors - self._errors_seen):
            log.error("invalid manifest: %s", error)
        for error in sorted(self._errors_seen - errors):
            log.info("fixed: %s", error)
        self._errors_seen = errors

    # -- running and stopping --------------------------------------------------------

    def run_until_signalled(self) -> int:
        """Run the loop until SIGTERM/SIGINT; finish the pass in flight; 0 (1 if the loop broke)."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            with MainThreadWakeup() as wakeup:
                # Only now may anyone rely on SIGTERM finishing the pass in flight.
                log.info("%s", self._ready_line)
                ended = threading.Event()
                worker = threading.Thread(target=self._run_loop, args=(ended, wakeup), name="loop")
                worker.start()
                # Not `worker.is_alive()`: the thread is still alive just after
                # its wake-up, which this wait may already have read.
                while not ended.is_set():
                    wakeup.wait()  # a signal (its handler runs) or the loop's end
                worker.join()
        finally:
            self.close()  # still under our handlers: a second signal cannot abort the close
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("stopped after %d pass(es)", self.loop.passes)
        return 1 if self._broken else 0

    def _run_loop(self, ended: threading.Event, wakeup: MainThreadWakeup) -> None:
        try:
            if self._keeper is None:
                self.loop.run()
            else:
                self._run_loop_while_leading(self._keeper)
        except BaseException:
            # Passes cannot raise into the loop; this is a bug in the loop itself.
            self._broken = True
            log.exception("the loop stopped unexpectedly")
        finally:
            ended.set()  # before the wake-up: the main thread reads it after waking
            wakeup.wake()

    def _run_loop_while_leading(self, keeper: LeaseKeeper) -> None:
        """Run passes only while we hold the lease; stand by otherwise, until stopped."""
        retry = keeper.elector.settings.retry_period_seconds
        while not self.loop.stopping:
            if keeper.leading:
                self.loop.run_once_or_wait()  # losing the lease wakes its wait
            else:
                self._waiter.wait(retry)  # gaining it (or a stop) wakes this one

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        name = signal.Signals(signum).name
        if self.loop.stopping:
            log.info("%s again: still finishing the pass in flight", name)
            return
        log.info("%s: finishing the pass in flight, then stopping", name)
        self.loop.request_stop()

    def close(self) -> None:
        """Release everything, newest first (idempotent)."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:
                log.exception("closing %s failed", closer)
