"""`controller logs NAME`: a run's CloudWatch Logs, found from the ledger.

The ledger knows each attempt's task ARNs and revision long after ECS has
forgotten the tasks; the revision's awslogs options name the log group and
stream prefix, and the awslogs driver names each stream
`PREFIX/CONTAINER/TASK_ID`. Containers without the awslogs driver are
skipped with a note. `--follow` polls until the attempt's tasks have all
stopped and nothing new arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controller.aws.cloudwatch_logs import LogLine, LogsGateway
from controller.aws.ecs import EcsGateway
from controller.clock import Clock
from controller.errors import NotFoundError
from controller.model.run import AttemptRecord, LedgerView, Phase, RunRecord

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
    #: which index of an indexed run (None: its lowest failed index, else its last)
    index: int | None = None
    follow: bool = False
    notes: list[str] = field(default_factory=list)


def pick_attempt(view: LedgerView, request: LogRequest) -> tuple[RunRecord, AttemptRecord]:
    """The run (latest when no run id) and attempt (latest when none) asked for."""
    runs = [r for r in view.runs_of(request.name) if request.run_id in (None, r.key.run_id)]
    if not runs:
        wanted = request.name + (f"/{request.run_id}" if request.run_id else "")
        raise NotFoundError(f"no run {wanted} in the ledger")
    record = runs[-1]
    indexes = view.indexes_of(record.key)
    if indexes or request.index is not None:
        record = _pick_index(record, indexes, request.index)
    attempts = [a for a in record.attempts if request.attempt in (None, a.number)]
    if not attempts:
        raise NotFoundError(f"run {record.key} has no attempt {request.attempt or ''}".rstrip())
    return record, attempts[-1]


def _pick_index(run: RunRecord, indexes: Mapping[int, RunRecord], index: int | None) -> RunRecord:
    """The index of an indexed run whose logs are shown: the one asked for, else a telling one."""
    if index is not None:
        if index not in indexes:
            raise NotFoundError(f"run {run.key} has no index {index} in the ledger")
        return indexes[index]
    failed = [i for i in sorted(indexes) if indexes[i].phase is Phase.FAILED]
    return indexes[failed[0] if failed else max(indexes)]


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


class LogTail:
    """New lines of an attempt's awslogs streams, each read forward from where it stopped.

    `containers` limits the streams to those containers (oneshot follows the
    success containers only); None reads every container's. Streams are
    found once per task, from the attempt's revision (described once per
    process, as revisions never change).
    """

    def __init__(
        self, ecs: EcsGateway, logs: LogsGateway, containers: frozenset[str] | None = None
    ) -> None:
        self._ecs = ecs
        self._logs = logs
        self._containers = containers
        self._tokens: dict[StreamRef, str | None] = {}
        self._known_tasks: set[str] = set()
        self.notes: list[str] = []

    def streams(self, attempt: AttemptRecord) -> list[StreamRef]:
        """The streams of the attempt's tasks (found the first time a task is seen)."""
        new = [arn for arn in attempt.task_arns if arn not in self._known_tasks]
        if new:
            for ref in streams_of(self._ecs, attempt, self.notes):
                wanted = self._containers is None or ref.container in self._containers
                if ref.task_arn in new and wanted:
                    self._tokens.setdefault(ref, None)
            self._known_tasks.update(new)
        arns = set(attempt.task_arns)
        return [ref for ref in self._tokens if ref.task_arn in arns]

    def read(self, attempt: AttemptRecord) -> list[tuple[StreamRef, LogLine]]:
        """Every line logged since the last read, oldest first across the streams (interleaved)."""
        lines: list[tuple[StreamRef, LogLine]] = []
        for ref in self.streams(attempt):
            read, self._tokens[ref] = self._logs.read(ref.group, ref.stream, self._tokens[ref])
            lines.extend((ref, line) for line in read)
        # Stable: lines of one stream with one timestamp keep their order.
        lines.sort(key=lambda item: item[1].at)
        return lines


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
    tail = LogTail(ecs, logs)
    refs = tail.streams(attempt)
    for note in (*request.notes, *tail.notes):
        echo(f"# {note}")
    echo(f"# {record.key} attempt {attempt.number}: {len(attempt.task_arns)} task(s)")
    several = len({r.container for r in refs}) > 1 or len(attempt.task_arns) > 1
    while True:
        lines = tail.read(attempt)
        for ref, line in lines:
            label = f"[{ref.container}/{ref.task_arn.rsplit('/', 1)[-1][:8]}] " if several else ""
            echo(f"{label}{line.message}")
        if not request.follow or (not lines and _all_stopped(ecs, attempt)):
            return
        clock.sleep(FOLLOW_INTERVAL_SECONDS)


def _all_stopped(ecs: EcsGateway, attempt: AttemptRecord) -> bool:
    """True when ECS reports every task of the attempt stopped (or forgot it)."""
    if not attempt.task_arns:
        return True
    cluster = str(attempt.request.get("cluster", ""))
    found, _ = ecs.describe_tasks(cluster, list(attempt.task_arns))
    return all(task.record.stopped for task in found)
