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
from dataclasses import dataclass
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
from controller.model.loader import LoadResult, ManifestLoader
from controller.plan.prune import PruneSettings
from controller.runtime.reconcile import PassContext, PassResult, reconcile_once
from controller.schemas import validators
from controller.sources.directory import DirectorySource
from controller.sources.s3 import S3Source
from controller.sources.snapshot import LastGoodSource, Source
from controller.state import open_ledger
from controller.state.ledger import Ledger


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


def load_source_for_status(spec: str) -> LoadResult | None:
    """A directory source loaded for `status`; None when it cannot be read (or is on S3).

    `status` makes no AWS calls, so an `s3://` source counts as unreadable;
    it then shows what the last pass recorded in the ledger.
    """
    if spec.startswith("s3://"):
        return None
    try:
        snapshot = DirectorySource(spec).snapshot()
    except ControllerError:
        return None
    return ManifestLoader(validators()).load(snapshot.files, snapshot.errors)


@dataclass
class PassWiring:
    """A ready-to-run pass and the resources to release afterwards."""

    context: PassContext
    ledger: Ledger
    session: AwsSession

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
        self.ledger.close()


def build_pass(
    settings: Settings,
    *,
    dry_run: bool,
    knobs: dict[str, Any],
    echo: Any = None,
    keep_last_good: bool = False,
) -> PassWiring:
    """Wire source, loader, gateways, ledger and executor for `settings`.

    `keep_last_good` (the long-running loop) wraps the source so a failed
    read falls back on the last snapshot that could be read.
    """
    session = AwsSession(settings.region)
    source = make_source(settings.source, session)
    if keep_last_good:
        source = LastGoodSource(source)
    # A dry run writes nothing anywhere: not even a new ledger file or table.
    ledger = open_ledger(settings.state, session=session, read_only=dry_run)
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
    return PassWiring(context=context, ledger=ledger, session=session)
