"""The `controller` command line (DESIGN.md §8): wiring only, no logic.

Each command builds its collaborators from the global options and hands
over to the module that does the work. Exit statuses follow the contract:
`validate` 0/1, `diff` 0/1/2, `reconcile` 0/1/2, `trigger` 0/1, `stop` 0/1
(`controller.cli.hands_on`), `oneshot` the container's exit code, 0, 1, 124
or 130 (`controller.cli.oneshot`), usage errors 2. `trigger`, `stop` and
`oneshot` act on one run through scoped passes that take no ledger lock
(`controller.runtime.one_run`).

Errors are handled once, for every command, by the command group
(`_one_line_errors`): whatever a command does not handle itself ends as one
line `error: ...` on stderr, never a traceback. An unknown name
(NotFoundError) exits 1; usage errors (click's included), setup errors and
anything else that stopped the command — an unreadable source, a damaged or
locked ledger, no region or credentials — exit 2. An unexpected exception is
a bug, still reported in one line that names it.

`status`, `diff`, `plan`, `logs` and dry runs open the ledger read-only, so
they never create it (`controller.state.open_ledger`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from controller import __version__
from controller.aws.cloudwatch_logs import LogsGateway
from controller.aws.ecs import EcsGateway
from controller.aws.session import MAX_POOL_CONNECTIONS, AwsSession, endpoint_urls
from controller.cli import hands_on
from controller.cli.oneshot import Oneshot, OneshotOptions, oneshot_target
from controller.cli.report import (
    OUTPUT_FORMATS,
    Status,
    gather_status,
    omitted_note,
    render_document,
    report_pass,
    run_json,
    status_json,
    status_lines,
)
from controller.cli.run_logs import LogRequest, show_logs
from controller.errors import ControllerError, NotFoundError, UsageError
from controller.model.loader import ManifestLoader
from controller.model.manifest import API_VERSION, Kind
from controller.model.run import LedgerView
from controller.plan.planner import DEFAULT_MAX_ORPHAN_FRACTION
from controller.plan.scale_in import DEFAULT_MAX_PER_PASS
from controller.runtime.activity import DEFAULT_ACTIVE_POLL_SECONDS
from controller.runtime.one_run import NothingToStop
from controller.runtime.wiring import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_PASS_BUDGET_SECONDS,
    PassOptions,
    PassWiring,
    Settings,
    build_pass,
    load_source_for_status,
    make_clock,
    read_hooks,
    session_hooks,
    settings_services,
)
from controller.schemas import load_schema, validators, write_schemas
from controller.sources.directory import read_paths
from controller.state import ledger_file, open_ledger
from controller.state.sync import SyncRecord, read_sync_record, sync_record_path
from controller.workers import DEFAULT_MAX_CONCURRENCY

_OWNER_RE = re.compile(r"^[a-z0-9-]{1,32}$")


def _check_owner(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _OWNER_RE.match(value):
        raise click.BadParameter(
            "must match [a-z0-9-]{1,32} (it goes into startedBy 'ejc/<owner>')"
        )
    return value


def _fail(message: str, status: int) -> None:
    """End the command: one line on stderr, then the exit status."""
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Every error as one line with the documented exit status (see the module docstring)."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.NoArgsIsHelpError, click.Abort):
        raise  # --help, --version, no arguments: click's own, and no error
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "controller"
        _fail(f"{exc.format_message()} (see `{command} --help`)", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except NotFoundError as exc:
        _fail(str(exc), 1)
    except (ControllerError, OSError) as exc:
        _fail(str(exc) or type(exc).__name__, 2)
    except Exception as exc:
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug; please report it)", 2)


#: The setup phase some commands name; the group applies the same to everything.
_setup_errors = _one_line_errors


class _Commands(click.Group):
    """The `controller` group: parses and runs a command under `_one_line_errors`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the global options (a bad one is one line, exit 2)."""
        with _one_line_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        """Parse and run the command (its errors are one line each)."""
        with _one_line_errors():
            return super().invoke(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="controller")
@click.option(
    "--source",
    envvar="CONTROLLER_SOURCE",
    default="manifests/",
    show_default=True,
    help="Directory (a Git checkout) or s3://bucket/prefix/ holding the manifests.",
)
@click.option(
    "--state",
    envvar="CONTROLLER_STATE",
    default="sqlite:.controller/state.db",
    show_default=True,
    help="Ledger: sqlite:PATH or dynamodb://TABLE.",
)
@click.option(
    "--owner",
    envvar="CONTROLLER_OWNER",
    default="default",
    show_default=True,
    callback=_check_owner,
    help="This controller's identity; it only touches AWS objects tagged with it.",
)
@click.option(
    "--region",
    envvar="CONTROLLER_REGION",
    default=None,
    help="AWS region (default: boto3's configuration, e.g. AWS_REGION).",
)
@click.pass_context
def cli(ctx: click.Context, source: str, state: str, owner: str, region: str | None) -> None:
    """Level-triggered GitOps controller for batch job runs on AWS ECS."""
    ctx.obj = Settings(source=source, state=state, owner=owner, region=region)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_obj
def validate(settings: Settings, paths: tuple[str, ...]) -> None:
    """Check manifests against the schema and semantic rules, without AWS."""
    targets = list(paths) or [settings.source]
    files, read_errors, read_warnings = read_paths(targets)
    result = ManifestLoader(validators()).load(files, read_errors, read_warnings)
    # Warnings (a symlink loop not followed, ...) are shown but never fail validation.
    for problem in (*result.errors, *result.warnings):
        click.echo(str(problem), err=True)
    desired = result.desired
    summary = (
        f"{len(files)} file(s): {len(desired.job_runs)} JobRun(s), "
        f"{len(desired.cron_jobs)} CronJob(s) valid, {len(result.errors)} error(s)"
    )
    if result.warnings:
        summary += f", {len(result.warnings)} warning(s)"
    # A file named on the command line is meant to be checked: say when it
    # holds nothing to check, and fail when none of them does.
    named = [path for path in targets if not Path(path).is_dir()]
    empty = [path for path in named if path in result.without_manifests]
    for path in empty:
        click.echo(f"{path}: no {API_VERSION} manifest in this file", err=True)
    click.echo(summary)
    sys.exit(1 if result.errors or (named and len(empty) == len(named)) else 0)


@cli.command()
@click.argument(
    "kind", required=False, type=click.Choice(["jobrun", "cronjob"], case_sensitive=False)
)
@click.option(
    "--write",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Write the schema files (both, or KIND's) into DIR for editors, instead of printing.",
)
def schema(kind: str | None, directory: Path | None) -> None:
    """Print the JSON Schema of a kind (both, as one JSON object, without KIND)."""
    kinds = {"jobrun": Kind.JOB_RUN, "cronjob": Kind.CRON_JOB}
    if directory is not None:
        for path in write_schemas(directory, [kinds[kind.lower()]] if kind else list(Kind)):
            click.echo(f"wrote {path}")
        return
    if kind is not None:
        click.echo(json.dumps(load_schema(kinds[kind.lower()]), indent=2, sort_keys=True))
        return
    both = {k.value: load_schema(k) for k in Kind}
    click.echo(json.dumps(both, indent=2, sort_keys=True))


# -- reconcile / diff / status ------------------------------------------------

_OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUT_FORMATS),
    default="text",
    show_default=True,
    help="text for people; json or yaml (the same document) for tools.",
)


def _knobs(knobs: dict[str, Any]) -> PassOptions:
    """The shared pass options as click parsed them."""
    knobs["aws_rates"] = tuple(knobs.get("aws_rates") or ())
    return PassOptions(**knobs)


def _pass_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The options shared by `reconcile` and `run` (one pass, same knobs)."""
    options = [
        click.option("--stop-orphans", is_flag=True, help="Stop the tasks of orphaned runs."),
        click.option(
            "--max-orphan-fraction",
            type=click.FloatRange(0.0, 1.0),
            default=DEFAULT_MAX_ORPHAN_FRACTION,
            show_default=True,
            help="Refuse to orphan more than this fraction of active runs in one pass.",
        ),
        click.option(
            "--keep-revisions",
            type=click.IntRange(1),
            default=5,
            show_default=True,
            help="Newest owned ACTIVE revisions kept per family when pruning.",
        ),
        click.option("--no-prune", is_flag=True, help="Do not deregister stale revisions."),
        click.option(
            "--delete-inactive", is_flag=True, help="Also delete this owner's INACTIVE revisions."
        ),
        click.option(
            "--no-scale-in",
            is_flag=True,
            help=(
                "Release no idle instance of any Auto Scaling group (instances this controller"
                " was draining are set ACTIVE again)."
            ),
        ),
        click.option(
            "--max-scale-in-per-pass",
            type=click.IntRange(1),
            default=DEFAULT_MAX_PER_PASS,
            show_default=True,
            metavar="N",
            help="Instances per Auto Scaling group one pass may drain (and terminate).",
        ),
        click.option(
            "--lock-timeout",
            type=click.FloatRange(min=0.0),
            default=DEFAULT_LOCK_TIMEOUT,
            show_default=True,
            metavar="SECONDS",
            help="Wait this long for the ledger lock (or lease) another pass holds, then exit 2.",
        ),
        click.option(
            "--max-concurrency",
            type=click.IntRange(1, MAX_POOL_CONNECTIONS),
            default=DEFAULT_MAX_CONCURRENCY,
            show_default=True,
            help="AWS calls of one pass in flight at once (independent ones only).",
        ),
        click.option(
            "--pass-budget-seconds",
            type=click.FloatRange(min=1.0),
            default=DEFAULT_PASS_BUDGET_SECONDS,
            show_default=True,
            help="After this long a pass starts no new action; the rest waits for the next pass.",
        ),
        click.option(
            "--aws-rate",
            "aws_rates",
            multiple=True,
            metavar="CATEGORY=BURST:PER_SECOND",
            help="Pace one ECS throttling category differently (repeatable; see the README).",
        ),
        click.option(
            "--notify-sns",
            envvar="CONTROLLER_NOTIFY_SNS",
            default=None,
            metavar="TOPIC_ARN",
            help=(
                "Publish every run that ends Failed (not Missed) to this SNS topic, once;"
                " manifests add their own with spec.notify (see the README)."
            ),
        ),
        click.option(
            "--adopt-history",
            is_flag=True,
            help=(
                "When the ledger is empty but AWS holds this owner's revisions or tasks, record"
                " every current manifest's run as already done (Succeeded/Adopted) instead of"
                " refusing; CronJobs count as scheduled up to now."
            ),
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@cli.command()
@click.option("--once", is_flag=True, help="Do one pass and exit (required: see `controller run`).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@_OUTPUT
@_pass_options
@click.pass_obj
def reconcile(settings: Settings, /, once: bool, dry_run: bool, output: str, **knobs: Any) -> None:
    """One full pass: load, observe, plan, apply (exit 0 clean, 1 problems, 2 setup)."""
    if not once:
        raise click.UsageError("reconcile needs --once; the long-running loop is `controller run`")
    with _setup_errors():
        # A dry run writes nothing, so it takes no lock and never waits.
        lock = None if dry_run else "controller reconcile --once"
        wiring = build_pass(settings, dry_run=dry_run, options=_knobs(knobs), lock=lock)
    with wiring, _setup_errors():  # the lost-ledger guard is a setup error of the pass
        result = wiring.reconcile()
    report_pass(result, output, dry_run=dry_run)
    sys.exit(0 if result.clean else 1)


@cli.command(name="run")
@click.option(
    "--metrics-addr",
    default="127.0.0.1:9464",
    show_default=True,
    metavar="HOST:PORT",
    help="Where /metrics, /healthz and /readyz are served (port 0: any free port, logged).",
)
@click.option(
    "--resync-seconds",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="A pass at least this often, even when nothing is known to have changed.",
)
@click.option(
    "--s3-poll-seconds",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="How often an s3:// source is listed to look for changes.",
)
@click.option(
    "--active-poll-seconds",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_ACTIVE_POLL_SECONDS,
    show_default=True,
    help="While runs are in flight, look at their tasks this often (a change runs a pass).",
)
@click.option(
    "--events-queue",
    default=None,
    metavar="SQS_URL",
    help="Long-poll this SQS queue of ECS state-change events (EventBridge): look at once.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per event on stderr: text, or one JSON object per line.",
)
@_pass_options
@click.pass_obj
def run(
    settings: Settings,
    /,
    metrics_addr: str,
    resync_seconds: float,
    s3_poll_seconds: float,
    active_poll_seconds: float,
    events_queue: str | None,
    log_format: str,
    **knobs: Any,
) -> None:
    """The GitOps sync loop: watch the source, reconcile, serve metrics; stop on SIGTERM."""
    from controller.runtime.service import RunOptions, SyncService  # watchdog, prometheus

    options = RunOptions(
        pass_options=_knobs(knobs),
        metrics_addr=metrics_addr,
        resync_seconds=resync_seconds,
        s3_poll_seconds=s3_poll_seconds,
        active_poll_seconds=active_poll_seconds,
        events_queue=events_queue,
        log_format=log_format,
    )
    with _setup_errors():
        service = SyncService(settings, options)
    sys.exit(service.run_until_signalled())


@cli.command(name="diff")
@_OUTPUT
@_pass_options
@click.pass_obj
def diff_command(settings: Settings, /, output: str, **knobs: Any) -> None:
    """One pass without writes; prints the actions (exit 0 none, 1 pending, 2 error).

    Takes the pass options of `reconcile`, so `diff --stop-orphans` shows the
    StopTasks that `reconcile --once --stop-orphans` would make.
    """
    with _setup_errors():
        wiring = build_pass(settings, dry_run=True, options=_knobs(knobs))
    with wiring, _setup_errors():
        result = wiring.reconcile()
    report_pass(result, output, dry_run=True)
    if result.observe_errors or result.plan.errors:
        sys.exit(2)
    sys.exit(1 if result.plan.actions else 0)


cli.add_command(diff_command, name="plan")


#: How many runs the text status lists unless --limit says otherwise.
STATUS_TEXT_LIMIT = 1000


@cli.command()
@click.argument("name", required=False)
@_OUTPUT
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help=(
        f"List only the newest N runs (0: all). Default: {STATUS_TEXT_LIMIT} for text,"
        " all for -o json/yaml."
    ),
)
@click.pass_obj
def status(settings: Settings, name: str | None, output: str, limit: int | None) -> None:
    """Runs, CronJobs, invalid manifests and guards, from the ledger (exit 0)."""
    if limit is None:
        limit = STATUS_TEXT_LIMIT if output == "text" else 0
    with _setup_errors():
        # Only a DynamoDB ledger needs AWS (and so a region) for status.
        remote = settings.state.startswith("dynamodb://")
        session = AwsSession(settings.region) if remote else None
        # Where ECS (and the ledger) are decides whether test hooks count,
        # even when this command makes no AWS call itself.
        services = settings_services(settings, "ecs")
        hooks = (
            session_hooks(session, services)
            if session is not None
            else read_hooks(lambda: endpoint_urls(settings.region, services))
        )
        ledger = open_ledger(settings.state, session=session, read_only=True)
    try:
        view = ledger.view()
        summary = ledger.pass_summary()
        # Guards come from the summary; only a ledger without one needs the log.
        events = ledger.events(None, limit=200) if summary is None else []
    finally:
        ledger.close()
    if ledger.missing:
        # A mistyped --state: say so (on stderr under -o json/yaml, which stay parseable).
        where = ledger_file(settings.state) or settings.state
        click.echo(f"no ledger at {where}", err=output != "text")
    shown = gather_status(
        view,
        summary,
        events,
        load_source_for_status(settings.source),
        _sync_record(settings.state),
        make_clock(hooks).now(),
        name,
        limit or None,
    )
    if name is not None and not ledger.missing and not _known(name, view, shown):
        raise NotFoundError(f"no run {name} in the ledger")
    if output != "text":
        click.echo(render_document(status_json(shown), output))
        if shown.omitted:
            click.echo(omitted_note(shown), err=True)  # the document keeps its shape
        return
    for line in status_lines(shown):
        click.echo(line)


def _known(name: str, view: LedgerView, shown: Status) -> bool:
    """Whether `status NAME` has something to show: runs, or a CronJob of the ledger or source."""
    return (
        any(key.name == name for key in view.runs)
        or name in view.cron_last_scheduled
        or name in shown.cron_jobs
    )


@cli.command()
@click.argument("name")
@click.option("--run-id", default=None, help="Which run of NAME (default: the newest).")
@click.option(
    "--attempt", type=click.IntRange(1), default=None, help="Which attempt (default: the last)."
)
@click.option(
    "--index",
    type=click.IntRange(0),
    default=None,
    help="Which index of an indexed run (default: its lowest failed index, else its last).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the tasks have stopped.")
@click.pass_obj
def logs(
    settings: Settings,
    name: str,
    run_id: str | None,
    attempt: int | None,
    index: int | None,
    follow: bool,
) -> None:
    """A run's CloudWatch Logs (awslogs driver), found through the ledger."""
    with _setup_errors():
        session = AwsSession(settings.region)
        hooks = session_hooks(session, settings_services(settings, "ecs", "logs"))
        ledger = open_ledger(settings.state, session=session, read_only=True)
    try:
        view = ledger.view()
    finally:
        ledger.close()
    request = LogRequest(name=name, run_id=run_id, attempt=attempt, index=index, follow=follow)
    # An unknown run or attempt is a NotFoundError (exit 1), AWS trouble exits 2.
    show_logs(
        EcsGateway(session), LogsGateway(session), view, request, click.echo, make_clock(hooks)
    )


# -- one run by hand: trigger, stop, oneshot ------------------------------------

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _check_run_id(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _RUN_ID_RE.match(value):
        raise click.BadParameter("must match [A-Za-z0-9._-]{1,64} (a run id, like spec.runId)")
    return value


def _run_id_option(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--run-id", default=None, callback=_check_run_id, help=f"The run id (default: {default})."
    )


def _one_run_wiring(settings: Settings) -> PassWiring:
    """A pass's collaborators for commands that act on one run: no lock, no lease (DESIGN §9)."""
    with _setup_errors():
        return build_pass(settings, dry_run=False, options=PassOptions(), lock=None)


@cli.command()
@click.argument("cron_job", metavar="CRONJOB")
@_run_id_option("manual-<UTC time to the second>")
@_OUTPUT
@click.pass_obj
def trigger(settings: Settings, cron_job: str, run_id: str | None, output: str) -> None:
    """Start one occurrence of CRONJOB now, outside its schedule; print the run and its task."""
    with _one_run_wiring(settings) as wiring:
        context = wiring.context
        triggered = hands_on.trigger(context, hands_on.load_source(context), cron_job, run_id)
    record = triggered.record
    for problem in triggered.problems:
        click.echo(f"warning: {problem}", err=True)
    if output != "text":
        click.echo(render_document(run_json(record), output))
    attempt = record.current_attempt
    arns = " ".join(attempt.task_arns) if attempt is not None else ""
    if output == "text":
        click.echo(f"{record.key} {arns or '-'}")
    if triggered.existed:
        click.echo(
            f"{record.key} was recorded before ({record.phase.value}): nothing started", err=True
        )
    elif record.phase.terminal:
        _fail(f"{record.key} {record.phase.value} ({record.reason.value}): {record.message}", 1)
    elif not arns:
        click.echo(
            f"{record.key} has no task yet: {record.message} (`controller run` follows it)",
            err=True,
        )


@cli.command()
@click.argument("name")
@click.option("--run-id", default=None, help="Which run of NAME (default: its newest unfinished).")
@click.option(
    "--reason",
    default="controller stop",
    show_default=True,
    help="Why: recorded with who asked, in the run's message and the StopTask reason.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0.0),
    default=hands_on.DEFAULT_STOP_WAIT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the tasks to stop; the run ends Cancelled when they have.",
)
@click.pass_obj
def stop(
    settings: Settings, name: str, run_id: str | None, reason: str, wait_seconds: float
) -> None:
    """Cancel a run: StopTask its tasks, then Failed/Cancelled, no retry (1: nothing to stop)."""
    path = ledger_file(settings.state)
    if path is not None and not path.exists():
        raise NothingToStop(f"nothing to stop: no ledger at {path}")
    with _one_run_wiring(settings) as wiring:
        key = hands_on.run_to_stop(wiring.ledger.view(), name, run_id)
        stopped = hands_on.stop(
            wiring.context,
            wiring.ledger,
            key,
            reason,
            by=hands_on.requester(),
            wait_seconds=wait_seconds,
        )
    for problem in stopped.problems:
        click.echo(f"warning: {problem}", err=True)
    record = stopped.record
    if stopped.finished:
        click.echo(
            f"stopped {record.key}: {record.phase.value} ({record.reason.value}): {record.message}"
        )
    else:
        click.echo(
            f"stop requested for {record.key}: its tasks are still stopping after"
            f" {wait_seconds:g}s; the run ends Cancelled once they have (any pass records it)"
        )


@cli.command()
@click.argument("target", metavar="FILE|NAME")
@_run_id_option("oneshot-<UTC time to the second>")
@click.option(
    "--no-wait", is_flag=True, help="Print the run key and task ARN once started; exit 0."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="SECONDS",
    help="Stop the task after this long and exit 124.",
)
@click.option("--no-logs", is_flag=True, help="Do not stream the success containers' awslogs.")
@click.option(
    "--no-stop-on-interrupt",
    is_flag=True,
    help="On SIGINT exit 130 and leave the run going (the loop follows it).",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_ACTIVE_POLL_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Look at the task this often while waiting (like run --active-poll-seconds).",
)
@_OUTPUT
@click.pass_obj
def oneshot(
    settings: Settings,
    /,
    target: str,
    run_id: str | None,
    no_wait: bool,
    timeout: float | None,
    no_logs: bool,
    no_stop_on_interrupt: bool,
    poll_seconds: float,
    output: str,
) -> None:
    """Run FILE (one manifest) or NAME (in --source) now, wait, stream logs; exit with its code.

    Exit status: the container's exit code (0 on success); 1 when the task
    failed to start, was stopped by the platform or refused; 124 after
    --timeout; 130 after SIGINT (the task is stopped first in both).
    """
    options = OneshotOptions(
        wait=not no_wait,
        timeout=timeout,
        logs=not no_logs,
        stop_on_interrupt=not no_stop_on_interrupt,
        poll_seconds=poll_seconds,
        output=output,
    )
    with _one_run_wiring(settings) as wiring:
        desired, _ = oneshot_target(target, run_id, wiring.context)
        session = Oneshot(
            wiring.context,
            wiring.ledger,
            desired,
            options,
            logs=LogsGateway(wiring.session),
            out=click.echo,
            err=lambda line: click.echo(line, err=True),
            by=f"oneshot ({hands_on.requester()})",
        )
        status = session.run()
    sys.exit(status)


def _sync_record(state: str) -> SyncRecord | None:
    """What `controller run` last synced to, when one runs (or ran) on this ledger."""
    path = ledger_file(state)
    return read_sync_record(sync_record_path(path)) if path is not None else None


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,  # `controller demo --help` is the sandbox program's help
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def demo(arguments: tuple[str, ...]) -> None:
    """Run the examples against the local sandbox (--examples DIR, --simulated-time, --timeout).

    The product never imports the sandbox (an import-linter contract): like
    git's subcommands, `demo` runs the sandbox's own program
    (`python -m controller.sandbox.demo`), which owns the options, and exits
    with its status: 0 when every example ended as its file says.
    """
    if importlib.util.find_spec("moto") is None:
        # A plain `pip install ecs-job-controller` has no moto server.
        raise UsageError(
            "the demo needs the sandbox (moto is not installed):"
            " pip install 'ecs-job-controller[sandbox]'"
        )
    child = subprocess.Popen([sys.executable, "-m", "controller.sandbox.demo", *arguments])
    try:
        sys.exit(child.wait())
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the child too: let it finish its cleanup.
        child.wait()
        sys.exit(130)


def main() -> None:
    """Entry point of the `controller` script."""
    cli(prog_name="controller")
