"""Builds a pass's collaborators from the global options (used by the CLI and the loop).

Also home of the two test hooks the end-to-end tests drive through the real
CLI, documented here because they are part of how the product is proven:

* `CONTROLLER_TEST_NOW` (ISO 8601): the controller's clock reads this fixed
  time instead of the wall clock, so a test that advances the sandbox's fake
  clock can move the controller's with it. Never set it in production.
* `CONTROLLER_TEST_CRASH_AT` (`after-intent`, `after-run-task`,
  `after-record`, `after-register`): the process SIGKILLs itself at that
  step boundary of the start protocol, to prove a crash never yields a second
  task for one attempt.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from controller.apply import Checkpoint, DryRunExecutor, Executor, no_checkpoint
from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.s3 import S3Gateway
from controller.aws.session import AwsSession
from controller.clock import Clock, SystemClock
from controller.errors import ControllerError
from controller.model.loader import ManifestLoader
from controller.model.manifest import CronJob
from controller.plan.prune import PruneSettings
from controller.runtime.reconcile import PassContext, PassResult, reconcile_once
from controller.schemas import validators
from controller.sources.directory import DirectorySource
from controller.sources.s3 import S3Source
from controller.sources.snapshot import LastGoodSource, Source
from controller.state import DynamoDbLedger, ledger_file, open_ledger
from controller.state.leader import LeaderElector, LeaseKeeper, replica_identity
from controller.state.lease import FileLease, LeaseHeld, lease_path
from controller.state.ledger import Ledger

#: Seconds a pass waits for the ledger lock (or the DynamoDB lease) by default.
DEFAULT_LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class Settings:
    """The global options, after environment variables and defaults."""

    source: str
    state: str
    owner: str
    region: str | None


class FixedClock:
    """A clock stuck at one instant (the CONTROLLER_TEST_NOW hook)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        """The fixed instant."""
        return self._at

    def sleep(self, seconds: float) -> None:
        """Sleeping does not move a fixed clock."""
        del seconds


def test_now() -> datetime | None:
    """The instant CONTROLLER_TEST_NOW sets, if any."""
    text = os.environ.get("CONTROLLER_TEST_NOW")
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_clock() -> Clock:
    """The system clock, unless a test pinned the time."""
    pinned = test_now()
    return FixedClock(pinned) if pinned is not None else SystemClock()


def make_checkpoint() -> Checkpoint:
    """The crash hook of CONTROLLER_TEST_CRASH_AT, or a no-op."""
    target = os.environ.get("CONTROLLER_TEST_CRASH_AT")
    if not target:
        return no_checkpoint

    def crash(step: str) -> None:
        if step == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def make_source(spec: str, session: AwsSession | None = None) -> Source:
    """The source a --source value names: `s3://bucket/prefix/` or a directory."""
    if spec.startswith("s3://"):
        return S3Source(spec, S3Gateway(session or AwsSession()))
    return DirectorySource(spec)


class ReadOnlyLedger:
    """A ledger view for dry runs: reads pass through, writes are dropped."""

    def __init__(self, inner: Ledger) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("save", "append_event", "set_cron_last_scheduled", "forget_revision"):
            raise AttributeError(f"dry run: {name} is not allowed")
        return getattr(self._inner, name)

    def put_revision(self, revision: Any) -> None:
        """Dry runs do not even fill the revision cache."""
        del revision


def load_cron_jobs(spec: str) -> dict[str, CronJob]:
    """The CronJobs of a directory source, for `status` (empty when it cannot be read)."""
    if spec.startswith("s3://"):
        return {}  # status makes no AWS calls
    try:
        snapshot = DirectorySource(spec).snapshot()
    except ControllerError:
        return {}
    return dict(ManifestLoader(validators()).load(snapshot.files).desired.cron_jobs)


@dataclass
class PassWiring:
    """A ready-to-run pass and the resources to release afterwards."""

    context: PassContext
    ledger: Ledger
    session: AwsSession
    #: what to release after the pass, oldest first (the ledger, its lock)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def reconcile(self) -> PassResult:
        """Run one pass."""
        return reconcile_once(self.context)

    def __enter__(self) -> PassWiring:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _close_all(self.closers)


def _close_all(closers: list[Callable[[], None]]) -> None:
    """Call every closer, newest first."""
    while closers:
        closers.pop()()


def lock_timeout(knobs: dict[str, Any]) -> float:
    """The --lock-timeout a command was given (seconds)."""
    return float(knobs.get("lock_timeout", DEFAULT_LOCK_TIMEOUT))


def lead_for_one_pass(ledger: DynamoDbLedger, state: str, timeout: float) -> LeaseKeeper:
    """The DynamoDB ledger's leader lease, held (and renewed) until the keeper stops.

    Waits up to `timeout` seconds, as a pass on SQLite waits for the file
    lock; a holder that shut down released the lease, one that crashed lets
    it expire (15 s after we first saw it), so both are waited out.
    """
    elector = LeaderElector(ledger.lease_store(), replica_identity(), SystemClock())
    keeper = LeaseKeeper(elector, lambda _leading: None).start()
    if keeper.wait_leading(timeout):
        return keeper
    keeper.stop()
    raise LeaseHeld(
        f"another controller ({elector.holder or 'unknown'}) holds the lease of {state},"
        f" still after waiting {timeout:g}s (--lock-timeout); one pass writes at a time"
    )


def build_pass(
    settings: Settings,
    *,
    dry_run: bool,
    knobs: dict[str, Any],
    echo: Any = None,
    keep_last_good: bool = False,
    lock: str | None = None,
) -> PassWiring:
    """Wire source, loader, gateways, ledger and executor for `settings`.

    `keep_last_good` (the long-running loop) wraps the source so a failed
    read falls back on the last snapshot that could be read. `lock` names the
    command (`controller reconcile --once`) that takes the ledger lock — the
    SQLite file lock, or the DynamoDB leader lease — for the pass, waiting up
    to `--lock-timeout`; None takes none (dry runs write nothing, and
    `controller run` holds its own for its whole life).
    """
    closers: list[Callable[[], None]] = []
    try:
        return _build_pass(settings, dry_run, knobs, echo, keep_last_good, lock, closers)
    except BaseException:
        _close_all(closers)
        raise


def _build_pass(
    settings: Settings,
    dry_run: bool,
    knobs: dict[str, Any],
    echo: Any,
    keep_last_good: bool,
    lock: str | None,
    closers: list[Callable[[], None]],
) -> PassWiring:
    session = AwsSession(settings.region)
    source = make_source(settings.source, session)
    if keep_last_good:
        source = LastGoodSource(source)
    path = ledger_file(settings.state)
    if lock is not None and path is not None:
        # Before the ledger is opened: opening may create or migrate it.
        lease = FileLease(lease_path(path), lock).acquire(lock_timeout(knobs))
        closers.append(lease.release)
    ledger = open_ledger(settings.state, session=session)
    closers.append(ledger.close)
    if lock is not None and isinstance(ledger, DynamoDbLedger):
        keeper = lead_for_one_pass(ledger, settings.state, lock_timeout(knobs))
        closers.append(keeper.stop)  # stopped before the ledger closes: releasing needs it
    ecs = EcsGateway(session)
    autoscaling = AutoScalingGateway(session)
    clock = make_clock()
    executor: Executor | DryRunExecutor
    pass_ledger: Any
    if dry_run:
        executor = DryRunExecutor(echo or (lambda _line: None))
        pass_ledger = ReadOnlyLedger(ledger)
    else:
        executor = Executor(
            ecs, ledger, settings.owner, clock, make_checkpoint(), autoscaling=autoscaling
        )
        pass_ledger = ledger
    context = PassContext(
        source=source,
        loader=ManifestLoader(validators()),
        ecs=ecs,
        ledger=pass_ledger,
        executor=executor,
        clock=clock,
        owner=settings.owner,
        max_orphan_fraction=float(knobs.get("max_orphan_fraction", 0.5)),
        prune=None
        if knobs.get("no_prune")
        else PruneSettings(
            keep_revisions=int(knobs.get("keep_revisions", 5)),
            delete_inactive=bool(knobs.get("delete_inactive", False)),
        ),
        stop_orphans=bool(knobs.get("stop_orphans", False)),
        autoscaling=autoscaling,
        ecs_instances=EcsInstanceGateway(session),
    )
    return PassWiring(context=context, ledger=ledger, session=session, closers=closers)
