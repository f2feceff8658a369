"""`controller run` stops on SIGTERM whichever of its threads the kernel hands the signal to.

A process-directed signal may be taken by any thread that does not block it
(on Linux, a thread that forks `git` or starts a pool thread at that moment
takes it before a sleeping main thread wakes). Python runs the handler on the
main thread only, so a main thread blocked in `Thread.join()` never ran it,
and the loop never stopped (the flaky e2e test_sigterm_during_a_pass_...).
Here the signal is sent to the loop thread itself, during its pass, with
`pthread_kill`: deterministic, where the e2e test needed a loaded machine.

The real `run_until_signalled` runs on pytest's main thread, over a real
Loop whose pass is scripted; only the AWS-facing setup of `__init__` is
skipped. Every wait is bounded: a watchdog sends SIGTERM to the main thread
itself (which always reaches the handler) if the service has not stopped
in time, and the test fails on it.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from controller.apply.executor import ApplyResult
from controller.clock import SystemClock
from controller.model.loader import LoadResult
from controller.model.manifest import DesiredSet
from controller.plan.actions import Plan
from controller.runtime.log_format import configure_logging
from controller.runtime.loop import Loop, LoopSettings, PassFunction
from controller.runtime.reconcile_pass import PassResult
from controller.runtime.service import SyncService
from controller.sources.snapshot import Snapshot

#: How long the service may take to stop once signalled (it needs milliseconds).
BOUND = 20.0
#: The loop's gap before a requeued pass: the main thread is waiting by then.
REQUEUE_SECONDS = 0.5


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The `controller` loggers writing JSON lines into a buffer (restored afterwards)."""
    logger = logging.getLogger("controller")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()
    configure_logging("json", stream)
    yield stream
    logger.handlers[:], logger.level, logger.propagate = saved


def clean_result(requeue_at: datetime | None = None) -> PassResult:
    """A pass that changed nothing (asking for a pass at `requeue_at`, if given)."""
    return PassResult(
        snapshot=Snapshot(revision="r1"),
        loaded=LoadResult(desired=DesiredSet(), errors=()),
        plan=Plan(requeue_at=requeue_at),
        applied=ApplyResult([], counts=Counter()),
        observe_errors=[],
    )


def service_over(loop_pass: PassFunction) -> SyncService:
    """A SyncService whose loop runs `loop_pass`, without the sandbox-facing setup."""
    service = SyncService.__new__(SyncService)
    service._closers = []
    service._keeper = None
    service._broken = False
    service._ready_line = "watching (test)"
    # An hour's resync: only a requeue the pass asks for, or a stop, ends a wait.
    settings = LoopSettings(resync_seconds=3600, min_requeue_seconds=REQUEUE_SECONDS)
    service.loop = Loop(loop_pass, clock=SystemClock(), settings=settings)
    return service


class Watchdog:
    """Sends SIGTERM to the main thread itself if `stopped()` was not called within BOUND."""

    def __init__(self) -> None:
        self._main = threading.main_thread().ident
        self._stopped = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        if not self._stopped.wait(BOUND):
            self.fired = True
            assert self._main is not None
            signal.pthread_kill(self._main, signal.SIGTERM)  # always reaches the handler

    def stopped(self) -> None:
        self._stopped.set()
        self._thread.join(BOUND)


def messages(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


def test_sigterm_taken_by_the_loop_thread_during_a_pass_stops_the_service(
    json_log: io.StringIO,
) -> None:
    def pass_that_takes_the_signal(pass_id: str) -> PassResult:
        if pass_id.endswith("-1"):
            # The start pass asks for another: by then the main thread has long
            # been waiting, as it is when a pass of `controller run` runs.
            return clean_result(requeue_at=datetime.now(UTC))
        # The kernel picked this thread: the C handler runs here, not on main.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        return clean_result()

    service = service_over(pass_that_takes_the_signal)
    watchdog = Watchdog()
    status = service.run_until_signalled()
    watchdog.stopped()

    assert not watchdog.fired, "the SIGTERM the loop thread took never reached the handler"
    assert status == 0
    assert service.loop.passes == 2  # the pass in flight finished; no other started
    assert "SIGTERM: finishing the pass in flight, then stopping" in messages(json_log)
    assert "stopped after 2 pass(es)" in messages(json_log)
    # The handlers and the wake-up fd are the process's again.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1


def test_the_loop_ending_by_itself_wakes_the_main_thread(json_log: io.StringIO) -> None:
    """No signal at all: a loop that stops (here: its pass asks it to) ends the wait."""
    service: SyncService

    def pass_that_stops_the_loop(pass_id: str) -> PassResult:
        del pass_id
        service.loop.request_stop()  # not via a signal: nothing interrupts the main thread
        return clean_result()

    service = service_over(pass_that_stops_the_loop)
    watchdog = Watchdog()
    status = service.run_until_signalled()
    watchdog.stopped()

    assert not watchdog.fired
    assert status == 0
    assert "stopped after 1 pass(es)" in messages(json_log)
