"""Builds a pass's collaborators from the global options (used by the CLI and the loop).

Also home of the two test hooks the end-to-end tests drive through the real
CLI, documented here because they are part of how the product is proven:

* `CONTROLLER_TEST_NOW` (ISO 8601): the controller's clock reads this fixed
  time instead of the wall clock, so a test that advances the sandbox's fake
  clock can move the controller's with it.
* `CONTROLLER_TEST_CRASH_AT` (`after-intent`, `after-run-task`,
  `after-record`, `after-register`): the process SIGKILLs itself at that
  step boundary of the start protocol, to prove a crash never yields a second
  task for one attempt; and (`after-terminal`, `after-notify-intent`,
  `after-publish`) at the notification protocol's, between a run's terminal
  record and its SNS Publish (`controller.apply.notify`).

A stray hook in production must never freeze the clock or kill the
process, so they are honoured only against a sandbox: when every AWS
endpoint the command uses (as boto3 resolves it for its clients —
`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, a config file's
`endpoint_url`) is a loopback address. No endpoint configured means AWS
itself, so not a sandbox. Set outside one, a hook is a setup error (exit 2);
honoured, it is announced by one warning line on stderr. Every command that
reads the clock goes through `read_hooks`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from controller.apply.dry_run import DryRunExecutor
from controller.apply.executor import Checkpoint, Executor, no_checkpoint
from controller.apply.notify import Notifier
from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.pacing import Pacer, Rate, parse_rate
from controller.aws.s3 import S3Gateway
from controller.aws.session import AwsSession
from controller.aws.sns import SnsGateway
from controller.clock import Clock, SystemClock
from controller.errors import ControllerError, UsageError
from controller.model.loader import LoadResult, ManifestLoader
from controller.model.notify import TOPIC_ARN_PATTERN
from controller.plan.planner import DEFAULT_MAX_ORPHAN_FRACTION
from controller.plan.prune import PruneSettings
from controller.plan.scale_in import DEFAULT_MAX_PER_PASS, ScaleInSettings
from controller.runtime.reconcile_pass import PassContext, PassResult, reconcile_once
from controller.schemas import validators
from controller.sources.directory import DirectorySource
from controller.sources.s3 import S3Source
from controller.sources.snapshot import LastGoodSource, Source
from controller.state import DynamoDbLedger, ledger_file, open_ledger
from controller.state.file_lock import FileLease, LeaseHeld, lease_path
from controller.state.leader_lease import LeaderElector, LeaseKeeper, replica_identity
from controller.state.ledger import Ledger, RevisionCache, RevisionMemory
from controller.workers import DEFAULT_MAX_CONCURRENCY, Workers

#: Seconds a pass waits for the ledger lock (or the DynamoDB lease) by default.
DEFAULT_LOCK_TIMEOUT = 30.0
#: `--pass-budget-seconds`' default: after it a pass starts nothing new.
DEFAULT_PASS_BUDGET_SECONDS = 60.0


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


#: The environment variables of the test hooks.
NOW_HOOK = "CONTROLLER_TEST_NOW"
CRASH_HOOK = "CONTROLLER_TEST_CRASH_AT"
#: The services every pass talks to (ECS, Auto Scaling with EC2 for capacity, SNS to notify).
PASS_SERVICES = ("ecs", "autoscaling", "ec2", "sns")


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Hooks:
    """The test hooks this process honours (none unless it talks to a sandbox only)."""

    now: datetime | None = None
    crash_at: str | None = None


def is_loopback(url: str) -> bool:
    """True when `url`'s host is a loopback address (127.0.0.0/8, ::1, localhost)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it could resolve anywhere


def read_hooks(
    endpoints: Callable[[], Mapping[str, str]],
    warn: Callable[[str], None] = _stderr_warning,
) -> Hooks:
    """The test hooks set in the environment, refused (UsageError) unless every endpoint is local.

    `endpoints` is asked only when a hook is set: service -> endpoint URL of
    every AWS service the command uses.
    """
    now_text = os.environ.get(NOW_HOOK) or None
    crash_at = os.environ.get(CRASH_HOOK) or None
    hooks = [name for name, value in ((NOW_HOOK, now_text), (CRASH_HOOK, crash_at)) if value]
    if not hooks:
        return Hooks()
    remote = sorted((s, url) for s, url in endpoints().items() if not is_loopback(url))
    if remote:
        where = ", ".join(f"{service} at {url}" for service, url in remote)
        raise UsageError(
            f"{' and '.join(hooks)} {'is' if len(hooks) == 1 else 'are'} set outside a sandbox"
            f" ({where}, not a loopback address): test hooks are honoured only when every"
            " AWS endpoint is a local sandbox; unset them"
        )
    now = None
    if now_text is not None:
        try:
            parsed = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"{NOW_HOOK}={now_text!r} is not an ISO 8601 time") from None
        now = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        warn(f"{NOW_HOOK} is set: the clock reads {now.isoformat()}")
    if crash_at is not None:
        warn(f"{CRASH_HOOK} is set: the process kills itself at step {crash_at}")
    return Hooks(now=now, crash_at=crash_at)


def session_hooks(
    session: AwsSession,
    services: Iterable[str],
    warn: Callable[[str], None] = _stderr_warning,
) -> Hooks:
    """`read_hooks` for a command that talks to `services` through `session`."""
    return read_hooks(lambda: session.endpoint_urls(services), warn)


def settings_services(settings: Settings, *services: str) -> list[str]:
    """`services` plus those the source and the ledger of `settings` use."""
    used = list(services)
    if settings.source.startswith("s3://"):
        used.append("s3")
    if settings.state.startswith("dynamodb://"):
        used.append("dynamodb")
    return used


def make_clock(hooks: Hooks) -> Clock:
    """The system clock, unless a test pinned the time (in a sandbox)."""
    return FixedClock(hooks.now) if hooks.now is not None else SystemClock()


def make_checkpoint(hooks: Hooks) -> Checkpoint:
    """The crash hook of CONTROLLER_TEST_CRASH_AT (in a sandbox), or a no-op."""
    target = hooks.crash_at
    if target is None:
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


@dataclass(frozen=True)
class PassOptions:
    """The options of a pass that `reconcile`, `run` and `diff` share (DESIGN.md §8)."""

    stop_orphans: bool = False
    max_orphan_fraction: float = DEFAULT_MAX_ORPHAN_FRACTION
    keep_revisions: int = PruneSettings().keep_revisions
    no_prune: bool = False
    delete_inactive: bool = False
    #: seconds to wait for the ledger lock (or the DynamoDB lease) before exit 2
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    adopt_history: bool = False
    #: AWS calls of one pass in flight at once
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    #: seconds after which a pass starts no new action (None: no budget)
    pass_budget_seconds: float | None = DEFAULT_PASS_BUDGET_SECONDS
    #: `CATEGORY=BURST:PER_SECOND` overrides of the ECS pacing buckets
    aws_rates: tuple[str, ...] = ()
    #: --no-scale-in: no idle instance is released (drains begun are undone)
    no_scale_in: bool = False
    max_scale_in_per_pass: int = DEFAULT_MAX_PER_PASS
    #: --notify-sns: the controller-wide topic every Failed run is published to
    notify_sns: str | None = None

    def rates(self) -> dict[str, Rate]:
        """The pacing overrides, parsed (UsageError names a bad one)."""
        parsed: dict[str, Rate] = {}
        for text in self.aws_rates:
            try:
                name, rate = parse_rate(text)
            except ValueError as exc:
                raise UsageError(f"--aws-rate: {exc}") from None
            parsed[name] = rate
        return parsed


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
    options: PassOptions,
    echo: Any = None,
    keep_last_good: bool = False,
    lock: str | None = None,
    warn: Callable[[str], None] = _stderr_warning,
) -> PassWiring:
    """Wire source, loader, gateways, ledger and executor for `settings`.

    `keep_last_good` (the long-running loop) wraps the source so a failed
    read falls back on the last snapshot that could be read. `lock` names the
    command (`controller reconcile --once`) that takes the ledger lock — the
    SQLite file lock, or the DynamoDB leader lease — for the pass, waiting up
    to `--lock-timeout`; None takes none (dry runs write nothing, and
    `controller run` holds its own for its whole life). `warn` announces a
    test hook that is honoured.
    """
    closers: list[Callable[[], None]] = []
    try:
        return _build_pass(settings, dry_run, options, echo, keep_last_good, lock, warn, closers)
    except BaseException:
        _close_all(closers)
        raise


def _build_pass(
    settings: Settings,
    dry_run: bool,
    options: PassOptions,
    echo: Any,
    keep_last_good: bool,
    lock: str | None,
    warn: Callable[[str], None],
    closers: list[Callable[[], None]],
) -> PassWiring:
    if options.notify_sns is not None and not re.match(TOPIC_ARN_PATTERN, options.notify_sns):
        raise UsageError(f"--notify-sns: {options.notify_sns!r} is not an SNS topic ARN")
    session = AwsSession(settings.region, pacer=Pacer(options.rates()))
    workers = Workers(options.max_concurrency)
    closers.append(workers.close)
    # Before anything reads the clock or writes: a stray hook stops us here.
    hooks = session_hooks(session, settings_services(settings, *PASS_SERVICES), warn)
    source = make_source(settings.source, session)
    if keep_last_good:
        source = LastGoodSource(source)
    path = ledger_file(settings.state)
    if lock is not None and path is not None:
        # Before the ledger is opened: opening may create or migrate it.
        lease = FileLease(lease_path(path), lock).acquire(options.lock_timeout)
        closers.append(lease.release)
    # A dry run writes nothing anywhere: not even a new ledger file or table.
    ledger = open_ledger(settings.state, session=session, read_only=dry_run)
    closers.append(ledger.close)
    if lock is not None and isinstance(ledger, DynamoDbLedger):
        keeper = lead_for_one_pass(ledger, settings.state, options.lock_timeout)
        closers.append(keeper.stop)  # stopped before the ledger closes: releasing needs it
    ecs = EcsGateway(session)
    autoscaling = AutoScalingGateway(session)
    ecs_instances = EcsInstanceGateway(session)
    clock = make_clock(hooks)
    executor: Executor | DryRunExecutor
    cache: RevisionCache
    notifier: Notifier | None = None
    if dry_run:
        # The ledger is only read (opened read-only); the executor prints.
        executor = DryRunExecutor(echo or (lambda _line: None))
        cache = RevisionMemory()
    else:
        checkpoint = make_checkpoint(hooks)
        notifier = Notifier(
            SnsGateway(session),
            ledger,
            settings.owner,
            clock,
            controller_topic=options.notify_sns,
            checkpoint=checkpoint,
        )
        executor = Executor(
            ecs,
            ledger,
            settings.owner,
            clock,
            checkpoint,
            autoscaling=autoscaling,
            ecs_instances=ecs_instances,
            workers=workers,
            budget_seconds=options.pass_budget_seconds,
        )
        cache = ledger
    context = PassContext(
        source=source,
        loader=ManifestLoader(validators()),
        ecs=ecs,
        ledger=ledger,
        revision_cache=cache,
        executor=executor,
        clock=clock,
        owner=settings.owner,
        max_orphan_fraction=options.max_orphan_fraction,
        prune=None
        if options.no_prune
        else PruneSettings(
            keep_revisions=options.keep_revisions,
            delete_inactive=options.delete_inactive,
        ),
        stop_orphans=options.stop_orphans,
        autoscaling=autoscaling,
        ecs_instances=ecs_instances,
        scale_in=ScaleInSettings(
            enabled=not options.no_scale_in, max_per_pass=options.max_scale_in_per_pass
        ),
        adopt_history=options.adopt_history,
        ledger_name=settings.state if path is None else str(path),
        workers=workers,
        notifier=notifier,
    )
    return PassWiring(context=context, ledger=ledger, session=session, closers=closers)
