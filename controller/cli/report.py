"""What the CLI prints: pass reports and the status table / JSON (DESIGN.md §8).

`status -o json` is a contract other tools parse:
`{"runs": [{"kind", "name", "runId", "origin", "phase", "reason", "message",
"taskDefinitionArn", "tries", "attempts": [{"number", "taskArns", "exitCodes",
"stopCode", "startedAt", "stoppedAt"}]}], "cronJobs": [{"name", "schedule",
"timeZone", "suspend", "concurrencyPolicy", "lastScheduleTime",
"nextScheduleTime"}], "invalid": [{"path", "line", "message"}],
"warnings": [string], "sync": {...} | null, "capacityGroups": [{"name",
"minSize", "maxSize", "desired", "instances", "idle": [instance id],
"draining": [instance id], "nextRelease": {"instanceId", "at"} | null,
"message"}]}`, times ISO 8601 UTC, null when there is none.
An indexed run (`spec.completions`) adds `"indexCounts": {"completed",
"failed", "running", "pending"}` and `"indexes": [{"index", "phase",
"reason", "message", "tries", "attempts"}]` (the indexes created so far) to
its run; index records are never listed as runs of their own.
`capacityGroups` (added with scale-in, and present only when some group is
opted in; the other keys are unchanged) lists the Auto Scaling groups opted
in to scale-in as the last pass saw them.
The text output lists the newest 1,000 runs unless `--limit` says
otherwise; JSON and YAML list every run unless `--limit` is given (how many
were left out goes to stderr, so the document keeps its shape).

Where `status` takes each part from, so that it needs no source:

* runs, and each CronJob's lastScheduleTime (the scheduled time of its newest
  occurrence that became a run, not counting Missed ones or manual
  triggers, as Kubernetes counts it): the ledger;
* invalid manifests and guard warnings: the summary the last pass recorded in
  the ledger (a guard shows for a day, until a pass raises none);
* the CronJobs (schedule, time zone, history limits): the source as it is now
  when it can be read — a CronJob whose document is invalid now keeps the
  version the last pass recorded, as the controller keeps the last known good
  one — and otherwise (an `s3://` source, which status does not call AWS
  for, or a directory that is not there) the ones the last pass recorded;
* sync: `<ledger>.sync.json`, written by `controller run` (SQLite only);
* capacityGroups: the summary the last pass recorded (status makes no AWS
  call, so "idle" and "next release" are as of that pass).

`attempts` lists every attempt, as numbered in the task tags and in
`controller logs --attempt`. `tries` counts those whose RunTask placed no task
(waiting for capacity, or refused): they never ran the job, so the table's
ATTEMPTS column counts only the others and shows the tries beside them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import click
import yaml

from controller.apply.executor import Outcome
from controller.model.loader import LoadResult
from controller.model.manifest import CronJob, Kind, RunKey
from controller.model.problems import ManifestError
from controller.model.run import AttemptRecord, Event, EventKind, LedgerView, Reason, RunRecord
from controller.plan.actions import as_json, describe, details
from controller.plan.indexed import index_counts
from controller.plan.schedule import history, next_occurrence, parse_occurrence_run_id
from controller.runtime.reconcile_pass import PassResult
from controller.state.ledger import (
    GUARD_WINDOW,
    GroupReport,
    GuardWarning,
    PassSummary,
    group_report_document,
)
from controller.state.sync import SyncRecord

#: The `-o` choices of the commands that print a document (`diff`, `reconcile`, `status`).
OUTPUT_FORMATS = ("text", "json", "yaml")


def render_document(document: Mapping[str, Any], output: str) -> str:
    """The `-o json` document as JSON, or as the same document in YAML (`-o yaml`).

    YAML is the JSON document re-read, so both formats carry the very same
    values (strings stay strings, `"1"` never becomes 1) in the same key
    order; block style, as people write manifests.
    """
    text = json.dumps(document, indent=2)
    if output != "yaml":
        return text
    dumped: str = yaml.safe_dump(
        json.loads(text), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return dumped.rstrip("\n")


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, or None."""
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def attempt_json(attempt: AttemptRecord) -> dict[str, Any]:
    """One attempt in the status JSON shape."""
    return {
        "number": attempt.number,
        "taskArns": list(attempt.task_arns),
        "exitCodes": attempt.exit_codes,
        "stopCode": attempt.stop_code,
        "startedAt": iso(attempt.started_at),
        "stoppedAt": iso(attempt.stopped_at),
    }


def placement_tries(record: RunRecord) -> int:
    """How many attempts ended with no task placed (no room, or RunTask refused)."""
    return sum(1 for a in record.attempts if a.finished and not a.tasks)


def ran_attempts(record: RunRecord) -> int:
    """How many attempts ran (or are about to run) a task: what ATTEMPTS counts."""
    return len(record.attempts) - placement_tries(record)


def run_json(record: RunRecord, indexes: Mapping[int, RunRecord] | None = None) -> dict[str, Any]:
    """One run in the status JSON shape; an indexed run adds `indexCounts` and `indexes`."""
    document: dict[str, Any] = {
        "kind": record.kind.value,
        "name": record.key.name,
        "runId": record.key.run_id,
        "origin": record.origin.value,
        "phase": record.phase.value,
        "reason": record.reason.value,
        "message": record.message,
        "taskDefinitionArn": record.task_definition_arn,
        "tries": placement_tries(record),
        "attempts": [attempt_json(a) for a in record.attempts],
    }
    completions = run_completions(record, indexes or {})
    if completions is not None:
        counts = index_counts(completions, indexes or {})
        document["indexCounts"] = {
            "completed": counts.succeeded,
            "failed": counts.failed,
            "running": counts.running,
            "pending": counts.pending,
        }
        document["indexes"] = [index_json(i, r) for i, r in sorted((indexes or {}).items())]
    return document


def index_json(index: int, record: RunRecord) -> dict[str, Any]:
    """One index of an indexed run in the status JSON shape."""
    return {
        "index": index,
        "phase": record.phase.value,
        "reason": record.reason.value,
        "message": record.message,
        "tries": placement_tries(record),
        "attempts": [attempt_json(a) for a in record.attempts],
    }


def run_completions(record: RunRecord, indexes: Mapping[int, RunRecord]) -> int | None:
    """The completions of an indexed run (None for any other run)."""
    completions = (record.frozen_spec or {}).get("completions")
    if isinstance(completions, int):
        return completions
    return max(indexes) + 1 if indexes else None


def last_schedule_time(view: LedgerView, name: str) -> datetime | None:
    """When the newest occurrence of a CronJob that became a run (not Missed) was due."""
    due = (
        parse_occurrence_run_id(r.key.run_id)
        for r in view.runs_of(name)
        if r.kind is Kind.CRON_JOB and r.reason is not Reason.MISSED
    )
    return max((at for at in due if at is not None), default=None)


def cron_json(cron: CronJob, view: LedgerView, now: datetime) -> dict[str, Any]:
    """One CronJob in the status JSON shape (no next time while suspended)."""
    return {
        "name": cron.name,
        "schedule": cron.schedule,
        "timeZone": cron.time_zone,
        "suspend": cron.suspend,
        "concurrencyPolicy": cron.concurrency_policy.value,
        "lastScheduleTime": iso(last_schedule_time(view, cron.name)),
        "nextScheduleTime": None if cron.suspend else iso(next_occurrence(cron, now)),
    }


@dataclass(frozen=True)
class Status:
    """Everything `controller status` shows, gathered once for text and JSON alike."""

    runs: Sequence[RunRecord]
    cron_jobs: Mapping[str, CronJob]
    view: LedgerView
    invalid: Sequence[ManifestError]
    warnings: Sequence[GuardWarning]
    sync: SyncRecord | None
    now: datetime
    #: the NAME asked for, if any: runs and CronJobs are of it alone
    name: str | None = None
    #: older runs left out by `--limit`
    omitted: int = 0
    #: the scale-in groups the last pass saw
    capacity_groups: Sequence[GroupReport] = ()


def gather_status(
    view: LedgerView,
    summary: PassSummary | None,
    events: Sequence[Event],
    loaded: LoadResult | None,
    sync: SyncRecord | None,
    now: datetime,
    name: str | None,
    limit: int | None = None,
) -> Status:
    """Put together what `status` shows (see the module docstring for where each part is from).

    `limit` keeps the newest runs of those shown (by creation), None all.

    `events` are only read for guards when the ledger holds no pass summary
    yet (written before summaries were recorded); `loaded` is the source,
    None when it cannot be read.
    """
    cron_jobs = status_cron_jobs(loaded, summary)
    if summary is None:
        warnings = guards_from_events(events, now)
    else:
        warnings = tuple(w for w in summary.warnings if now - w.at <= GUARD_WINDOW)
    runs = shown_runs(view, cron_jobs, name)
    kept = runs if limit is None else newest(runs, limit)
    return Status(
        runs=kept,
        omitted=len(runs) - len(kept),
        cron_jobs={n: c for n, c in cron_jobs.items() if name is None or n == name},
        view=view,
        invalid=() if summary is None else summary.invalid,
        warnings=warnings,
        sync=sync,
        now=now,
        name=name,
        capacity_groups=() if summary is None or name is not None else summary.capacity_groups,
    )


def omitted_note(status: Status) -> str:
    """The line saying how many runs `--limit` left out."""
    return (
        f"{status.omitted} older run(s) not shown (the newest {len(status.runs)};"
        " --limit N shows more, --limit 0 all)"
    )


def newest(runs: Sequence[RunRecord], limit: int) -> list[RunRecord]:
    """The `limit` most recently created of `runs`, in their order."""
    if len(runs) <= limit:
        return list(runs)
    ranked = sorted(range(len(runs)), key=lambda i: (runs[i].created_at, i), reverse=True)
    return [runs[i] for i in sorted(ranked[:limit])]


def status_cron_jobs(loaded: LoadResult | None, summary: PassSummary | None) -> dict[str, CronJob]:
    """The CronJobs `status` shows: the readable source's, else those the last pass recorded."""
    recorded = {c.name: c.as_cron_job() for c in summary.cron_jobs} if summary else {}
    if loaded is None:
        return recorded
    shown = dict(loaded.desired.cron_jobs)
    for name, cron in recorded.items():
        # An invalid edit is not a deletion: keep the last version that loaded.
        if name not in shown and (
            loaded.incomplete or (Kind.CRON_JOB.value, name) in loaded.invalid_names
        ):
            shown[name] = cron
    return shown


def status_json(status: Status) -> dict[str, Any]:
    """The whole `status -o json` document."""
    sync = None
    if status.sync is not None:
        # The same document as `<ledger>.sync.json` itself.
        sync = {**asdict(status.sync), "at": status.sync.at.astimezone(UTC).isoformat()}
    document: dict[str, Any] = {
        "runs": [run_json(r, status.view.indexes_of(r.key)) for r in status.runs],
        "cronJobs": [
            cron_json(c, status.view, status.now)
            for c in sorted(status.cron_jobs.values(), key=lambda c: c.name)
        ],
        "invalid": [{"path": e.path, "line": e.line, "message": e.message} for e in status.invalid],
        "warnings": [w.message for w in status.warnings],
        "sync": sync,
    }
    if status.capacity_groups:
        # Only with a group opted in to scale-in: otherwise the document is
        # exactly DESIGN.md §8's, key for key.
        document["capacityGroups"] = [group_report_document(g) for g in status.capacity_groups]
    return document


def status_lines(status: Status) -> list[str]:
    """`status` for humans: CronJobs, sync, guards, the runs, then the invalid manifests."""
    lines = cron_lines(status.cron_jobs, status.now, status.name)
    if status.sync is not None:
        lines.append(status.sync.summary())
    lines.extend(f"warning: {w.message} (last at {iso(w.at)})" for w in status.warnings)
    lines.extend(group_line(g) for g in status.capacity_groups)
    # One run asked for by name: its messages whole, however long.
    lines.append(status_table(status.runs, status.now, whole_messages=status.name is not None))
    if status.name is not None:
        # One manifest asked for: each index of its indexed runs.
        for record in status.runs:
            indexes = status.view.indexes_of(record.key)
            if indexes:
                lines.append("")
                lines.append(f"indexes of {record.key}:")
                lines.append(index_table(indexes, status.now))
    if status.omitted:
        lines.append(omitted_note(status))
    if status.invalid:
        lines.append("")
        lines.append(f"{len(status.invalid)} invalid manifest(s), not loaded by the last pass:")
        lines.extend(f"  {error}" for error in status.invalid)
    return lines


def group_line(report: GroupReport) -> str:
    """One line per scale-in group: its size, idle instances and the next release."""
    idle = f"{len(report.idle)} idle"
    if report.draining:
        idle += f" ({len(report.draining)} draining)"
    text = (
        f"Auto Scaling group {report.name}: {report.instances} instance(s), {idle},"
        f" desired {report.desired} (min {report.min_size}, max {report.max_size})"
    )
    if report.next_release is not None:
        text += f"; next release {report.next_release} at {iso(report.next_release_at)}"
    return f"{text}: {report.message}" if report.message else text


def shown_runs(
    view: LedgerView, cron_jobs: Mapping[str, CronJob], name: str | None
) -> list[RunRecord]:
    """The runs `status` lists: CronJobs' finished runs within their history limits.

    The ledger keeps every run; successfulRunsHistoryLimit and
    failedRunsHistoryLimit only decide what is shown.
    """
    hidden: set[RunKey] = set()
    for cron in cron_jobs.values():
        hidden.update(r.key for r in history(cron, view.runs_of(cron.name))[1])
    records = [
        r
        for r in view.runs.values()
        if (name is None or r.key.name == name) and r.key not in hidden and r.key.index is None
    ]
    records.sort(key=lambda r: (r.key.name, r.created_at, r.key.run_id))
    return records


def cron_lines(cron_jobs: Mapping[str, CronJob], now: datetime, name: str | None) -> list[str]:
    """One line per CronJob: its schedule and when it next runs."""
    lines = []
    for cron in sorted(cron_jobs.values(), key=lambda c: c.name):
        if name is not None and cron.name != name:
            continue
        upcoming = next_occurrence(cron, now)
        state = "suspended" if cron.suspend else f"next run at {iso(upcoming) or 'never'}"
        lines.append(f"CronJob {cron.name}: {cron.schedule!r} in {cron.time_zone}, {state}")
    return lines


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _exit_codes(record: RunRecord) -> str:
    attempt = record.current_attempt
    if attempt is None or not attempt.exit_codes:
        return "-"
    return ",".join(f"{k}={'-' if v is None else v}" for k, v in sorted(attempt.exit_codes.items()))


def _attempts_cell(record: RunRecord) -> str:
    """`1`, or `1 (+2 tries)` when RunTask also placed nothing twice."""
    tries = placement_tries(record)
    cell = str(ran_attempts(record))
    return cell if not tries else f"{cell} (+{tries} {'try' if tries == 1 else 'tries'})"


#: Longest message the table shows whole when listing every run.
_MESSAGE_WIDTH = 70


def index_table(indexes: Mapping[int, RunRecord], now: datetime) -> str:
    """A fixed-width table of an indexed run's indexes (those created so far)."""
    header = ("INDEX", "PHASE", "REASON", "ATTEMPTS", "EXIT", "AGE", "MESSAGE")
    rows = [
        (
            str(index),
            r.phase.value,
            r.reason.value,
            _attempts_cell(r),
            _exit_codes(r),
            _age(r.created_at, now),
            r.message,
        )
        for index, r in sorted(indexes.items())
    ]
    return _table(header, rows)


def status_table(
    records: Sequence[RunRecord], now: datetime, *, whole_messages: bool = False
) -> str:
    """A fixed-width table of runs for humans; long messages are cut unless `whole_messages`."""
    if not records:
        return "no runs recorded yet"
    header = ("NAME", "RUN-ID", "KIND", "PHASE", "REASON", "ATTEMPTS", "EXIT", "AGE", "MESSAGE")
    rows = [
        (
            r.key.name,
            r.key.run_id,
            r.kind.value,
            r.phase.value,
            r.reason.value,
            _attempts_cell(r),
            _exit_codes(r),
            _age(r.created_at, now),
            r.message
            if whole_messages or len(r.message) <= _MESSAGE_WIDTH
            else r.message[: _MESSAGE_WIDTH - 3] + "...",
        )
        for r in records
    ]
    return _table(header, rows)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last one (a message) is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def guards_from_events(events: Sequence[Event], now: datetime) -> tuple[GuardWarning, ...]:
    """Guards (orphan, prune) of the last day, from the event log of a ledger with no summary."""
    latest: dict[str, datetime] = {}
    for event in events:
        if event.reason == EventKind.GUARD and now - event.at <= GUARD_WINDOW:
            latest[event.message] = max(event.at, latest.get(event.message, event.at))
    return tuple(
        GuardWarning(message, at) for message, at in sorted(latest.items(), key=lambda i: i[1])
    )


def report_pass(result: PassResult, output: str, *, dry_run: bool) -> None:
    """Print a pass's outcome: actions, failures, warnings, manifest errors."""
    for problem in (*result.loaded.errors, *result.loaded.warnings):
        click.echo(str(problem), err=True)
    for problem in result.observe_errors:
        click.echo(f"error: {problem}", err=True)
    for problem in result.plan.errors:
        click.echo(f"error: {problem}", err=True)
    for warning in result.plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    for failure in result.applied.failed:
        click.echo(f"failed: {failure}", err=True)
    for conflict in result.applied.conflicts:
        click.echo(f"failed (ledger conflict): {conflict}", err=True)
    if result.applied.deferred:
        count = len(result.applied.deferred)
        click.echo(
            f"deferred: {count} action(s) not started, the pass budget was spent;"
            " run again to carry on",
            err=True,
        )
    if output != "text":
        document = {
            "revision": result.snapshot.revision,
            "dryRun": dry_run,
            "actions": [as_json(a) for a in result.plan.actions],
            "failed": result.applied.failed,
            "conflicts": result.applied.conflicts,
            "deferred": result.applied.deferred,
            "warnings": [str(w) for w in result.loaded.warnings] + list(result.plan.warnings),
            "errors": [str(e) for e in result.loaded.errors]
            + result.observe_errors
            + list(result.plan.errors),
        }
        click.echo(render_document(document, output))
        return
    verb = "would" if dry_run else "did"
    for action in result.plan.actions:
        # A failed action is listed once, as `failed:` on stderr (above).
        outcome = result.applied.outcome_of(action)
        if outcome is not None and outcome.outcome is Outcome.APPLIED:
            click.echo(f"{verb}: {describe(action)}")
            for line in details(action):
                click.echo(f"    {line}")
    if not result.plan.actions:
        click.echo(f"nothing to do (source {result.snapshot.revision})")
