"""`controller logs NAME`: a run's CloudWatch Logs, found from the ledger.

The ledger knows each attempt's task ARNs and revision long after ECS has
forgotten the tasks; the revision's awslogs options name the log group and
stream prefix, and the awslogs driver names each stream
`PREFIX/CONTAINER/TASK_ID`. Containers without the awslogs driver are
skipped with a note. `--follow` polls until the attempt's tasks have all
stopped and nothing new arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from controller.aws.cloudwatch_logs import LogsGateway
from controller.aws.ecs import EcsGateway
from controller.clock import Clock
from controller.errors import NotFoundError
from controller.model.run import AttemptRecord, LedgerView, RunRecord

FOLLOW_INTERVAL_SECONDS = 2.0


@dataclass(frozen=True)
class StreamRef:
    """Where one container of one task logs."""

    container: str
    task_arn: str
    group: str
    stream: str


@dataclass
class LogRequest:
    """What to show."""

    name: str
    run_id: str | None = None
    attempt: int | None = None
    follow: bool = False
    notes: list[str] = field(default_factory=list)


def pick_attempt(view: LedgerView, request: LogRequest) -> tuple[RunRecord, AttemptRecord]:
    """The run (latest when no run id) and attempt (latest when none) asked for."""
    runs = [r for r in view.runs_of(request.name) if request.run_id in (None, r.key.run_id)]
    if not runs:
        wanted = request.name + (f"/{request.run_id}" if request.run_id else "")
        raise NotFoundError(f"no run {wanted} in the ledger")
    record = runs[-1]
    attempts = [a for a in record.attempts if request.attempt in (None, a.number)]
    if not attempts:
        raise NotFoundError(f"run {record.key} has no attempt {request.attempt or ''}".rstrip())
    return record, attempts[-1]


def streams_of(ecs: EcsGateway, attempt: AttemptRecord, notes: list[str]) -> list[StreamRef]:
    """The awslogs streams of every container of every task of the attempt."""
    described = ecs.describe_revision(attempt.task_definition_arn)
    refs: list[StreamRef] = []
    for container in described.task_definition.get("containerDefinitions", []):
        name = str(container.get("name"))
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if config.get("logDriver") != "awslogs" or not group or not prefix:
            notes.append(f"container {name}: no awslogs group and stream prefix, skipped")
            continue
        for arn in attempt.task_arns:
            task_id = arn.rsplit("/", 1)[-1]
            refs.append(StreamRef(name, arn, str(group), f"{prefix}/{name}/{task_id}"))
    return refs


def show_logs(
    ecs: EcsGateway,
    logs: LogsGateway,
    view: LedgerView,
    request: LogRequest,
    echo: Callable[[str], None],
    clock: Clock,
) -> None:
    """Print the attempt's log lines; with `follow`, keep polling until its tasks stopped."""
    record, attempt = pick_attempt(view, request)
    refs = streams_of(ecs, attempt, request.notes)
    for note in request.notes:
        echo(f"# {note}")
    echo(f"# {record.key} attempt {attempt.number}: {len(attempt.task_arns)} task(s)")
    tokens: dict[StreamRef, str | None] = dict.fromkeys(refs)
    several = len({r.container for r in refs}) > 1 or len(attempt.task_arns) > 1
    while True:
        new = 0
        for ref in refs:
            lines, tokens[ref] = logs.read(ref.group, ref.stream, tokens[ref])
            for line in lines:
                label = (
                    f"[{ref.container}/{ref.task_arn.rsplit('/', 1)[-1][:8]}] " if several else ""
                )
                echo(f"{label}{line.message}")
            new += len(lines)
        if not request.follow or (new == 0 and _all_stopped(ecs, attempt)):
            return
        clock.sleep(FOLLOW_INTERVAL_SECONDS)


def _all_stopped(ecs: EcsGateway, attempt: AttemptRecord) -> bool:
    """True when ECS reports every task of the attempt stopped (or forgot it)."""
    if not attempt.task_arns:
        return True
    cluster = str(attempt.request.get("cluster", ""))
    found, _ = ecs.describe_tasks(cluster, list(attempt.task_arns))
    return all(task.record.stopped for task in found)
