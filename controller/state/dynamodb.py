"""The DynamoDB ledger: one shared table, so several replicas share one memory (DESIGN.md §9).

Why DynamoDB: replicas on different hosts need a ledger none of them owns,
with conditional writes for the start protocol's claims and a lease item for
leader election (`controller.state.leader_lease`). Why these choices:

* **One table, string keys `pk` and `sk`** (single-table design). Each kind
  of record is one partition, so every read the planner needs is a Query of
  one partition, never a Scan:

  | pk         | sk                           | other attributes                       |
  |------------|------------------------------|----------------------------------------|
  | `RUN`      | `["<name>","<runId>"]` (JSON)| name, run_id, phase, version, body     |
  | `CRON`     | CronJob name                 | last_scheduled                         |
  | `REVISION` | task-definition ARN          | family, revision, spec_hash, status,   |
  |            |                              | owner?, tagged_hash?                   |
  | `EVENT`    | `<append time>#<random hex>` | at, reason, message;                   |
  |            |                              | run_key, name, run_id (run events)     |
  | `LEASE`    | lease name (`leader`)        | holder, acquired_at, renewed_at,       |
  |            |                              | duration_ms, transitions               |
  | `SUMMARY`  | `last` (the last pass)       | at, revision, body (PassSummary JSON)  |
  | `CAPACITY` | `idle#<EC2 instance id>`     | group, cluster, idle_since,            |
  |            |                              | draining_since?                        |
  | `CAPACITY` | `scaleout#<group>`           | at (this controller's last scale-out)  |
  | `NOTIFY`   | `watermark#["<scope>","<topic>"]` | since (first seen configured)     |
  | `NOTIFY`   | `id#<notification id>`       | name, run_id, topic_arn, phase,        |
  |            |                              | intent_at, message_id?, published_at?  |

  A global secondary index `events_by_run` (hash `run_key`, range `sk`) holds
  only the events of runs, for `status NAME`; it is the one read that is
  eventually consistent (DynamoDB cannot read an index otherwise).
* **A run is one item,** its attempts and tasks serialised as JSON in `body`,
  so saving a run is one conditional PutItem: `attribute_not_exists(pk)` for
  version 0, `version = :v` otherwise; a failed condition is LedgerConflict.
  name, run_id and phase are copied out of the body so an operator can
  filter them in the console. DynamoDB items hold at most 400 KB; a run
  above `MAX_ITEM_BYTES` (350,000 bytes, leaving room for the key and the
  other attributes) is refused with a TerminalError before anything is
  written. That is hundreds of attempts of typical size; a run that large is
  a runaway retry loop, not a job.
* **Datetimes as fixed-width ISO 8601 UTC text** with microseconds, exact and
  sorted as text in time order, as in the SQLite ledger; naive ones are refused.
* **Events keep append order.** Their sort key is the append time on this
  process's clock, made strictly increasing per ledger object, plus random
  hex so two replicas appending in the same microsecond never collide.
  Between replicas the order is as good as their clocks.
* **`view()` reads four partitions** (runs, CronJobs, revisions, and
  scale-in's idle clocks with the groups' last scale-outs in one), each page
  strongly consistent, and decodes only runs whose version changed since the
  previous view. It is not a point-in-time snapshot across items (DynamoDB
  has none for a Query); the planner tolerates that because every run write
  is conditional on the version it read.
* **The table is created on first use** if missing (PAY_PER_REQUEST, with
  the index), which needs `dynamodb:CreateTable` once; a table created ahead
  of time must have the same keys and index (see README.md). A `read_only`
  ledger (`status`, `diff`, `logs`) never creates it: it asks DescribeTable
  once, reads a missing table as empty (`missing`) and refuses writes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final

from controller.aws.dynamodb import Condition, DynamoDbGateway, Item, ItemValue, SecondaryIndex
from controller.aws.session import AwsSession
from controller.errors import TerminalError
from controller.model.capacity import IdleInstance
from controller.model.manifest import Kind, RunKey
from controller.model.notify import NotificationRecord
from controller.model.run import (
    AttemptOutcome,
    AttemptRecord,
    CancelRequest,
    Event,
    Phase,
    Reason,
    RevisionRecord,
    RunOrigin,
    RunRecord,
    TaskRecord,
)
from controller.state.encoding import (
    from_text,
    optional_datetime,
    optional_text,
    to_json,
    to_text,
)
from controller.state.leader_lease import LeaseRecord
from controller.state.ledger import LedgerConflict, LedgerView, PassSummary

#: Runs larger than this (as DynamoDB counts item size) are refused; the hard limit is 400 KB.
MAX_ITEM_BYTES: Final = 350_000

_RUN: Final = "RUN"
_CRON: Final = "CRON"
_REVISION: Final = "REVISION"
_EVENT: Final = "EVENT"
_LEASE: Final = "LEASE"
_SUMMARY: Final = "SUMMARY"
_CAPACITY: Final = "CAPACITY"
_NOTIFY: Final = "NOTIFY"
_WATERMARK_PREFIX: Final = "watermark#"
_NOTIFICATION_PREFIX: Final = "id#"
_IDLE_PREFIX: Final = "idle#"
_SCALE_OUT_PREFIX: Final = "scaleout#"
#: The one pass-summary item: each pass replaces it.
_PASS_KEY: Final = {"pk": _SUMMARY, "sk": "last"}
EVENTS_BY_RUN: Final = SecondaryIndex("events_by_run", "run_key", "sk")
#: Events read per Query page when the caller wants the newest few.
_EVENT_PAGE: Final = 100
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class DynamoDbLedger:
    """The `Ledger` on one DynamoDB table; safe to share between threads."""

    def __init__(
        self,
        table: str,
        session: AwsSession,
        *,
        create_table: bool = True,
        read_only: bool = False,
    ) -> None:
        """Open the ledger on `table`, creating the table first if `create_table` and missing.

        A `read_only` ledger creates nothing and refuses writes; on a table
        that does not exist it reads as empty and `missing` is True.
        """
        self.table = table
        self.read_only = read_only
        #: True when a read-only open found no table: the ledger reads as empty
        self.missing = False
        self._gateway = DynamoDbGateway(session)
        self._lock = threading.Lock()
        self._closed = False
        #: runs decoded by the last view(), by sort key; reused while the version is unchanged
        self._decoded: dict[str, RunRecord] = {}
        #: the last event sort-key time, in microseconds since the epoch
        self._last_event_us = 0
        if read_only:
            self.missing = not self._gateway.table_exists(table)
        elif create_table:
            self._gateway.create_table_if_missing(table, "pk", "sk", (EVENTS_BY_RUN,))

    # -- the Ledger protocol -------------------------------------------------------

    def view(self) -> LedgerView:
        """Read every run, CronJob schedule and revision (each page strongly consistent)."""
        self._check_open()
        previous = self._decoded
        runs: dict[str, RunRecord] = {}
        for item in self._partition(_RUN):
            sk = str(item["sk"])
            cached = previous.get(sk)
            fresh = cached is not None and cached.version == item["version"]
            runs[sk] = cached if fresh and cached is not None else _decode_run(item)
        self._decoded = runs  # records are immutable: sharing them is safe
        cron = {str(i["sk"]): from_text(str(i["last_scheduled"])) for i in self._partition(_CRON)}
        revisions = {str(i["sk"]): _decode_revision(i) for i in self._partition(_REVISION)}
        idle: dict[str, IdleInstance] = {}
        scale_outs: dict[str, datetime] = {}
        for item in self._partition(_CAPACITY):
            sk = str(item["sk"])
            if sk.startswith(_IDLE_PREFIX):
                instance = _decode_idle(sk.removeprefix(_IDLE_PREFIX), item)
                idle[instance.instance_id] = instance
            elif sk.startswith(_SCALE_OUT_PREFIX):
                scale_outs[sk.removeprefix(_SCALE_OUT_PREFIX)] = from_text(str(item["at"]))
        return LedgerView(
            runs={run.key: run for run in runs.values()},
            cron_last_scheduled=cron,
            revisions=revisions,
            idle_instances=idle,
            scale_outs=scale_outs,
        )

    def get(self, key: RunKey) -> RunRecord | None:
        """Return one run (strongly consistent read), or None."""
        self._check_open()
        if self.missing:
            return None
        item = self._gateway.get_item(self.table, {"pk": _RUN, "sk": _run_sk(key)})
        return None if item is None else _decode_run(item)

    def save(self, run: RunRecord) -> RunRecord:
        """Store `run` whole if the stored version is `run.version`; return it with version + 1."""
        self._check_writable()
        new_version = run.version + 1
        item: Item = {
            "pk": _RUN,
            "sk": _run_sk(run.key),
            "name": run.key.name,
            "run_id": run.key.id_text,
            "phase": run.phase.value,
            "version": new_version,
            "body": to_json(_encode_run(run)),
        }
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise TerminalError(
                f"run {run.key} would be a {size:,}-byte DynamoDB item, above the ledger's"
                f" limit of {MAX_ITEM_BYTES:,} bytes (DynamoDB items hold at most 400 KB):"
                f" {len(run.attempts)} attempts are too many to record"
            )
        if run.version <= 0:
            condition = Condition("attribute_not_exists(pk)", {}, {})
        else:
            condition = Condition("#v = :v", {"#v": "version"}, {":v": run.version})
        if run.version < 0 or not self._gateway.put_item(self.table, item, condition):
            stored = self._gateway.get_item(self.table, {"pk": _RUN, "sk": _run_sk(run.key)})
            raise LedgerConflict(_conflict_message(run, 0 if stored is None else stored["version"]))
        return replace(run, version=new_version)

    def append_event(self, event: Event) -> None:
        """Add one event to the end of the log."""
        self._check_writable()
        item: Item = {
            "pk": _EVENT,
            "sk": f"{to_text(self._append_time())}#{secrets.token_hex(4)}",
            "at": to_text(event.at),
            "reason": event.reason,
            "message": event.message,
        }
        if event.run is not None:
            item.update(run_key=_run_sk(event.run), name=event.run.name, run_id=event.run.id_text)
        self._gateway.put_item(self.table, item)

    def events(self, key: RunKey | None = None, limit: int = 100) -> list[Event]:
        """Return the newest `limit` events (of one run, if given), oldest first."""
        self._check_open()
        if limit <= 0 or self.missing:
            return []
        if key is None:
            pages = self._gateway.query_pages(
                self.table, "pk", _EVENT, newest_first=True, page_size=min(limit, _EVENT_PAGE)
            )
        else:
            pages = self._gateway.query_pages(
                self.table,
                EVENTS_BY_RUN.hash_key,
                _run_sk(key),
                index=EVENTS_BY_RUN.name,
                newest_first=True,
                page_size=min(limit, _EVENT_PAGE),
            )
        newest: list[Event] = []
        for page in pages:
            newest.extend(_decode_event(item) for item in page)
            if len(newest) >= limit:
                break
        return list(reversed(newest[:limit]))

    def set_cron_last_scheduled(self, name: str, at: datetime) -> None:
        """Remember the newest occurrence of a CronJob already handled."""
        self._check_writable()
        item: Item = {"pk": _CRON, "sk": name, "last_scheduled": to_text(at)}
        self._gateway.put_item(self.table, item)

    def put_revision(self, revision: RevisionRecord) -> None:
        """Remember a described revision, replacing what was known under its ARN."""
        self._check_writable()
        item: Item = {
            "pk": _REVISION,
            "sk": revision.arn,
            "family": revision.family,
            "revision": revision.revision,
            "spec_hash": revision.spec_hash,
            "status": revision.status,
        }
        if revision.owner is not None:
            item["owner"] = revision.owner
        if revision.tagged_hash is not None:
            item["tagged_hash"] = revision.tagged_hash
        self._gateway.put_item(self.table, item)

    def forget_revision(self, arn: str) -> None:
        """Drop a revision that was deleted; forgetting an unknown one does nothing."""
        self._check_writable()
        self._gateway.delete_item(self.table, {"pk": _REVISION, "sk": arn})

    def put_idle_instance(self, instance: IdleInstance) -> None:
        """Remember (or replace) an instance's idle clock and drain decision."""
        self._check_writable()
        item: Item = {
            "pk": _CAPACITY,
            "sk": _IDLE_PREFIX + instance.instance_id,
            "group": instance.group,
            "cluster": instance.cluster,
            "idle_since": to_text(instance.idle_since),
        }
        if instance.draining_since is not None:
            item["draining_since"] = to_text(instance.draining_since)
        self._gateway.put_item(self.table, item)

    def forget_idle_instance(self, instance_id: str) -> None:
        """Drop an instance's idle clock; an unknown id does nothing."""
        self._check_writable()
        self._gateway.delete_item(self.table, {"pk": _CAPACITY, "sk": _IDLE_PREFIX + instance_id})

    def record_scale_out(self, group: str, at: datetime) -> None:
        """Remember when this controller last scaled `group` out."""
        self._check_writable()
        item: Item = {"pk": _CAPACITY, "sk": _SCALE_OUT_PREFIX + group, "at": to_text(at)}
        self._gateway.put_item(self.table, item)

    def notify_watermarks(self) -> dict[tuple[str, str], datetime]:
        """Return when each notification rule (scope, topic) was first seen configured."""
        self._check_open()
        found: dict[tuple[str, str], datetime] = {}
        for item in self._partition(_NOTIFY):
            sk = str(item["sk"])
            if sk.startswith(_WATERMARK_PREFIX):
                scope, topic = json.loads(sk.removeprefix(_WATERMARK_PREFIX))
                found[(str(scope), str(topic))] = from_text(str(item["since"]))
        return found

    def set_notify_watermark(self, scope: str, topic_arn: str, at: datetime) -> None:
        """Remember when a rule was first seen configured; a known rule keeps its instant."""
        self._check_writable()
        sk = _WATERMARK_PREFIX + json.dumps([scope, topic_arn], separators=(",", ":"))
        item: Item = {"pk": _NOTIFY, "sk": sk, "since": to_text(at)}
        # False when it exists: the first instant stays.
        self._gateway.put_item(self.table, item, Condition("attribute_not_exists(pk)", {}, {}))

    def notifications(self) -> dict[str, NotificationRecord]:
        """Return every notification record, by notification id (strongly consistent)."""
        self._check_open()
        records: dict[str, NotificationRecord] = {}
        for item in self._partition(_NOTIFY):
            if str(item["sk"]).startswith(_NOTIFICATION_PREFIX):
                record = _notification(item)
                records[record.notification_id] = record
        return records

    def record_notification_intent(self, record: NotificationRecord) -> None:
        """Record a notification about to be published; an existing record is kept as it is."""
        self._check_writable()
        item: Item = {
            "pk": _NOTIFY,
            "sk": _NOTIFICATION_PREFIX + record.notification_id,
            "name": record.run.name,
            "run_id": record.run.run_id,
            "topic_arn": record.topic_arn,
            "phase": record.phase.value,
            "intent_at": to_text(record.intent_at),
        }
        self._gateway.put_item(self.table, item, Condition("attribute_not_exists(pk)", {}, {}))

    def record_notification_published(
        self, notification_id: str, message_id: str, at: datetime
    ) -> None:
        """Record that SNS accepted a notification whose intent is recorded."""
        self._check_writable()
        key = {"pk": _NOTIFY, "sk": _NOTIFICATION_PREFIX + notification_id}
        item = self._gateway.get_item(self.table, key)
        if item is None:
            return  # no intent: nothing to complete (the contract records intents first)
        updated: Item = {**item, "message_id": message_id, "published_at": to_text(at)}
        self._gateway.put_item(self.table, updated)

    def close(self) -> None:
        """Stop using the table (there is no connection to close); closing twice is harmless."""
        self._closed = True

    def record_pass_summary(self, summary: PassSummary) -> None:
        """Replace the last pass's summary (one item)."""
        self._check_open()
        document = summary.as_document()
        item: Item = {
            **_PASS_KEY,
            "at": document["at"],
            "revision": document["revision"],
            "body": to_json(document),
        }
        self._gateway.put_item(self.table, item)

    def pass_summary(self) -> PassSummary | None:
        """Return the last pass's summary (strongly consistent read); None before the first."""
        self._check_open()
        if self.missing:
            return None
        item = self._gateway.get_item(self.table, dict(_PASS_KEY))
        return None if item is None else PassSummary.from_document(json.loads(str(item["body"])))

    # -- the lease -----------------------------------------------------------------

    def lease_store(self, name: str = "leader") -> DynamoDbLeaseStore:
        """The lease item `name` in this ledger's table, for `LeaderElector`."""
        return DynamoDbLeaseStore(self._gateway, self.table, name)

    # -- inside --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TerminalError(f"the ledger dynamodb://{self.table} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise TerminalError(f"the ledger dynamodb://{self.table} is open read-only")

    def _partition(self, pk: str) -> list[Item]:
        """Every item of one partition, all pages (none when the table is missing)."""
        items: list[Item] = []
        if self.missing:
            return items
        for page in self._gateway.query_pages(self.table, "pk", pk):
            items.extend(page)
        return items

    def _append_time(self) -> datetime:
        """Now, but always later than the previous event this ledger appended."""
        with self._lock:
            micros = max(time.time_ns() // 1000, self._last_event_us + 1)
            self._last_event_us = micros
        return _EPOCH + timedelta(microseconds=micros)

    def __enter__(self) -> DynamoDbLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DynamoDbLedger({self.table!r})"


class DynamoDbLeaseStore:
    """The lease record as one item (pk `LEASE`) of the ledger's table."""

    def __init__(self, gateway: DynamoDbGateway, table: str, name: str) -> None:
        self._gateway = gateway
        self._table = table
        self._key = {"pk": _LEASE, "sk": name}

    def read(self) -> LeaseRecord | None:
        """The lease record, read strongly consistently; None when there is none."""
        item = self._gateway.get_item(self._table, self._key)
        if item is None:
            return None
        return LeaseRecord(
            holder=str(item["holder"]),
            acquired_at=from_text(str(item["acquired_at"])),
            renewed_at=from_text(str(item["renewed_at"])),
            duration_seconds=int(item["duration_ms"]) / 1000,
            transitions=int(item["transitions"]),
        )

    def create(self, record: LeaseRecord) -> bool:
        """Write `record` only if there is no lease item yet."""
        condition = Condition("attribute_not_exists(pk)", {}, {})
        return self._gateway.put_item(self._table, self._item(record), condition)

    def replace(self, expected: LeaseRecord, new: LeaseRecord) -> bool:
        """Write `new` only if the stored holder and renew time are still `expected`'s."""
        condition = Condition(
            "#h = :holder AND #r = :renewed",
            {"#h": "holder", "#r": "renewed_at"},
            {":holder": expected.holder, ":renewed": to_text(expected.renewed_at)},
        )
        return self._gateway.put_item(self._table, self._item(new), condition)

    def _item(self, record: LeaseRecord) -> Item:
        return {
            **self._key,
            "holder": record.holder,
            "acquired_at": to_text(record.acquired_at),
            "renewed_at": to_text(record.renewed_at),
            # Items hold no floats here; milliseconds are exact enough for a lease.
            "duration_ms": round(record.duration_seconds * 1000),
            "transitions": record.transitions,
        }


# -- size ----------------------------------------------------------------------


def item_size(item: Mapping[str, ItemValue]) -> int:
    """An item's size as DynamoDB counts it: names and values in UTF-8 bytes (numbers ~21)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if isinstance(value, bool):
            size += 1
        elif isinstance(value, int):
            size += 21  # the most a number can take
        else:
            size += len(value.encode())
    return size


# -- encoding ------------------------------------------------------------------


def _notification(item: Mapping[str, ItemValue]) -> NotificationRecord:
    """Decode a notification item."""
    message_id = item.get("message_id")
    published_at = item.get("published_at")
    return NotificationRecord(
        notification_id=str(item["sk"]).removeprefix(_NOTIFICATION_PREFIX),
        run=RunKey(str(item["name"]), str(item["run_id"])),
        topic_arn=str(item["topic_arn"]),
        phase=Phase(str(item["phase"])),
        intent_at=from_text(str(item["intent_at"])),
        message_id=None if message_id is None else str(message_id),
        published_at=None if published_at is None else from_text(str(published_at)),
    )


def _run_sk(key: RunKey) -> str:
    """The sort key of a run: JSON, so any name and run id stay apart and non-empty."""
    return json.dumps([key.name, key.id_text], separators=(",", ":"))


def _encode_run(run: RunRecord) -> dict[str, Any]:
    """The JSON body of a run item: everything but the key and the version."""
    return {
        "kind": run.kind.value,
        "phase": run.phase.value,
        "reason": run.reason.value,
        "message": run.message,
        "createdAt": to_text(run.created_at),
        "updatedAt": to_text(run.updated_at),
        "specDigest": run.spec_digest,
        "frozenSpec": None if run.frozen_spec is None else dict(run.frozen_spec),
        "taskDefinitionArn": run.task_definition_arn,
        "attempts": [_encode_attempt(a) for a in run.attempts],
        "notBefore": optional_text(run.not_before),
        "pendingSince": optional_text(run.pending_since),
        "finishedAt": optional_text(run.finished_at),
        "origin": run.origin.value,
        "cancel": None
        if run.cancel is None
        else {"by": run.cancel.by, "reason": run.cancel.reason, "at": to_text(run.cancel.at)},
    }


def _encode_attempt(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "clientToken": attempt.client_token,
        "taskDefinitionArn": attempt.task_definition_arn,
        "request": dict(attempt.request),
        "intentAt": to_text(attempt.intent_at),
        "tasks": [_encode_task(t) for t in attempt.tasks],
        "submitted": attempt.submitted,
        "placementFailures": list(attempt.placement_failures),
        "outcome": None if attempt.outcome is None else attempt.outcome.value,
        "message": attempt.message,
        "finishedAt": optional_text(attempt.finished_at),
    }


def _encode_task(task: TaskRecord) -> dict[str, Any]:
    return {
        "arn": task.arn,
        "lastStatus": task.last_status,
        "exitCodes": dict(task.exit_codes),
        "stopCode": task.stop_code,
        "stoppedReason": task.stopped_reason,
        "startedAt": optional_text(task.started_at),
        "stoppedAt": optional_text(task.stopped_at),
        "missing": task.missing,
    }


def _decode_run(item: Mapping[str, ItemValue]) -> RunRecord:
    """Decode a run item written by `save`."""
    body = json.loads(str(item["body"]))
    return RunRecord(
        key=RunKey.from_id_text(str(item["name"]), str(item["run_id"])),
        kind=Kind(body["kind"]),
        phase=Phase(body["phase"]),
        reason=Reason(body["reason"]),
        message=body["message"],
        created_at=from_text(body["createdAt"]),
        updated_at=from_text(body["updatedAt"]),
        spec_digest=body["specDigest"],
        frozen_spec=body["frozenSpec"],
        task_definition_arn=body["taskDefinitionArn"],
        attempts=tuple(_decode_attempt(a) for a in body["attempts"]),
        not_before=optional_datetime(body["notBefore"]),
        pending_since=optional_datetime(body["pendingSince"]),
        finished_at=optional_datetime(body["finishedAt"]),
        version=int(item["version"]),
        # Items written before runs had an origin or a cancel request lack both.
        origin=RunOrigin(body.get("origin", RunOrigin.MANIFEST.value)),
        cancel=_decode_cancel(body.get("cancel")),
    )


def _decode_cancel(body: Mapping[str, Any] | None) -> CancelRequest | None:
    if body is None:
        return None
    return CancelRequest(by=body["by"], reason=body["reason"], at=from_text(body["at"]))


def _decode_attempt(body: Mapping[str, Any]) -> AttemptRecord:
    outcome = body["outcome"]
    return AttemptRecord(
        number=body["number"],
        client_token=body["clientToken"],
        task_definition_arn=body["taskDefinitionArn"],
        request=body["request"],
        intent_at=from_text(body["intentAt"]),
        tasks=tuple(_decode_task(t) for t in body["tasks"]),
        submitted=body["submitted"],
        placement_failures=tuple(body["placementFailures"]),
        outcome=None if outcome is None else AttemptOutcome(outcome),
        message=body["message"],
        finished_at=optional_datetime(body["finishedAt"]),
    )


def _decode_task(body: Mapping[str, Any]) -> TaskRecord:
    return TaskRecord(
        arn=body["arn"],
        last_status=body["lastStatus"],
        exit_codes=body["exitCodes"],
        stop_code=body["stopCode"],
        stopped_reason=body["stoppedReason"],
        started_at=optional_datetime(body["startedAt"]),
        stopped_at=optional_datetime(body["stoppedAt"]),
        missing=body["missing"],
    )


def _decode_idle(instance_id: str, item: Mapping[str, ItemValue]) -> IdleInstance:
    draining = item.get("draining_since")
    return IdleInstance(
        instance_id=instance_id,
        group=str(item["group"]),
        cluster=str(item["cluster"]),
        idle_since=from_text(str(item["idle_since"])),
        draining_since=None if draining is None else from_text(str(draining)),
    )


def _decode_revision(item: Mapping[str, ItemValue]) -> RevisionRecord:
    owner, tagged = item.get("owner"), item.get("tagged_hash")
    return RevisionRecord(
        arn=str(item["sk"]),
        family=str(item["family"]),
        revision=int(item["revision"]),
        spec_hash=str(item["spec_hash"]),
        owner=None if owner is None else str(owner),
        status=str(item["status"]),
        tagged_hash=None if tagged is None else str(tagged),
    )


def _decode_event(item: Mapping[str, ItemValue]) -> Event:
    run = (
        None
        if "run_key" not in item
        else RunKey.from_id_text(str(item["name"]), str(item["run_id"]))
    )
    return Event(
        at=from_text(str(item["at"])),
        run=run,
        reason=str(item["reason"]),
        message=str(item["message"]),
    )


def _conflict_message(run: RunRecord, stored: ItemValue) -> str:
    """Explain why a save was refused, in words an operator can act on."""
    if run.version == 0:
        return f"run {run.key} already exists (version {stored}): it was saved by someone else"
    if stored == 0:
        return f"run {run.key} is not stored, but the record has version {run.version}"
    return (
        f"run {run.key} was saved by someone else (stored version {stored},"
        f" the record has {run.version}): re-read it and plan again"
    )
