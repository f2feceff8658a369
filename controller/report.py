"""What the CLI prints: pass reports and the status table / JSON (DESIGN.md §8).

`status -o json` is a contract other tools parse:
`{"runs": [{"kind", "name", "runId", "phase", "reason", "message",
"taskDefinitionArn", "attempts": [{"number", "taskArns", "exitCodes",
"stopCode", "startedAt", "stoppedAt"}]}]}`, times ISO 8601 UTC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from controller.model.manifest import CronJob, RunKey
from controller.model.run import AttemptRecord, Event, LedgerView, RunRecord
from controller.plan.actions import as_json, describe
from controller.plan.schedule import history, next_occurrence
from controller.runtime.reconcile import PassResult


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


def run_json(record: RunRecord) -> dict[str, Any]:
    """One run in the status JSON shape."""
    return {
        "kind": record.kind.value,
        "name": record.key.name,
        "runId": record.key.run_id,
        "phase": record.phase.value,
        "reason": record.reason.value,
        "message": record.message,
        "taskDefinitionArn": record.task_definition_arn,
        "attempts": [attempt_json(a) for a in record.attempts],
    }


def status_json(records: Sequence[RunRecord]) -> dict[str, Any]:
    """The whole `status -o json` document."""
    return {"runs": [run_json(r) for r in records]}


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
        if (name is None or r.key.name == name) and r.key not in hidden
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


def status_table(records: Sequence[RunRecord], now: datetime) -> str:
    """A fixed-width table of runs for humans."""
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
            str(len(r.attempts)),
            _exit_codes(r),
            _age(r.created_at, now),
            r.message if len(r.message) <= 70 else r.message[:67] + "...",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


#: How far back `status` shows guards that held deletions back.
GUARD_WINDOW = timedelta(hours=24)


def recent_guards(events: Sequence[Event], now: datetime) -> list[str]:
    """Warning lines for guards (orphan, prune) that held something back lately."""
    latest: dict[str, datetime] = {}
    for event in events:
        if event.reason == "Guard" and now - event.at <= GUARD_WINDOW:
            latest[event.message] = max(event.at, latest.get(event.message, event.at))
    return [
        f"warning: {message} (last at {iso(at)})"
        for message, at in sorted(latest.items(), key=lambda item: item[1])
    ]


def report_pass(result: PassResult, output: str, *, dry_run: bool) -> None:
    """Print a pass's outcome: actions, failures, warnings, manifest errors."""
    for error in result.loaded.errors:
        click.echo(str(error), err=True)
    for problem in result.observe_errors:
        click.echo(f"error: {problem}", err=True)
    for warning in result.plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    for failure in result.applied.failed:
        click.echo(f"failed: {failure}", err=True)
    for conflict in result.applied.conflicts:
        click.echo(f"failed (ledger conflict): {conflict}", err=True)
    if output == "json":
        document = {
            "revision": result.snapshot.revision,
            "dryRun": dry_run,
            "actions": [as_json(a) for a in result.plan.actions],
            "failed": result.applied.failed,
            "conflicts": result.applied.conflicts,
            "warnings": list(result.plan.warnings),
            "errors": [str(e) for e in result.loaded.errors] + result.observe_errors,
        }
        click.echo(json.dumps(document, indent=2))
        return
    verb = "would" if dry_run else "did"
    for action in result.plan.actions:
        click.echo(f"{verb}: {describe(action)}")
    if not result.plan.actions:
        click.echo(f"nothing to do (source {result.snapshot.revision})")
