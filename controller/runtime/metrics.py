"""Prometheus metrics and the health endpoints of `controller run` (DESIGN.md §10).

Served on `--metrics-addr` (default 127.0.0.1:9464; port 0 picks a free port,
which is logged): `/metrics` in the Prometheus text format, `/healthz` (200
while the loop keeps finishing passes — within three resync periods — else
503, so a wedged controller gets restarted) and `/readyz` (200 once the
first pass is done).

The metrics live in their own CollectorRegistry, not prometheus-client's
global one, so tests can build as many as they like and the scrape shows
exactly these names:

* `controller_reconcile_total{result="success"|"error"}`
* `controller_reconcile_duration_seconds` (histogram)
* `controller_aws_calls_total{service,operation}` (from AwsSession.calls)
* `controller_runs{phase}` (every phase present, from the ledger after each pass)
* `controller_taskdef_registrations_total`
* `controller_scale_outs_total`
* `controller_scale_ins_total{group}` (instances terminated by scale-in)
* `controller_missed_schedules_total`
* `controller_notifications_total{result="published"|"failed"}` (SNS Publish of run notifications)

Counters start at 0 and appear in the first scrape, before any event, so a
dashboard's `rate()` and an alert's `absent()` work from the start. A
labelled counter can only start at 0 for labels it knows: each Auto Scaling
group's `controller_scale_ins_total` appears (at 0) with the first pass that
sees the group opted in to scale-in.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Gauge, Histogram, make_wsgi_app
from prometheus_client import Counter as PromCounter

from controller.apply.notify import FAILED as NOTIFY_FAILED
from controller.apply.notify import PUBLISHED as NOTIFY_PUBLISHED
from controller.clock import Clock

PHASES = ("Pending", "Running", "Succeeded", "Failed")

#: The AWS operations a pass makes, initialised to 0 so dashboards show a
#: zero rather than no data; others appear when first called.
KNOWN_OPERATIONS = (
    ("ecs", "ListTasks"),
    ("ecs", "DescribeTasks"),
    ("ecs", "RunTask"),
    ("ecs", "StopTask"),
    ("ecs", "RegisterTaskDefinition"),
    ("ecs", "DescribeTaskDefinition"),
    ("ecs", "ListTaskDefinitions"),
    ("ecs", "DeregisterTaskDefinition"),
    ("ecs", "DeleteTaskDefinitions"),
)
S3_OPERATIONS = (("s3", "ListObjectsV2"), ("s3", "GetObject"))
SQS_OPERATIONS = (("sqs", "ReceiveMessage"), ("sqs", "DeleteMessageBatch"))
SNS_OPERATIONS = (("sns", "Publish"),)

#: Passes take from milliseconds (nothing to do) to minutes (thousands of runs).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

#: /healthz fails when no pass finished within this many resync periods.
HEALTHY_RESYNC_PERIODS = 3


class Metrics:
    """The controller's metrics and health, in a registry of their own."""

    def __init__(
        self,
        clock: Clock,
        resync_seconds: float,
        operations: Iterable[tuple[str, str]] = KNOWN_OPERATIONS,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._stale_after = timedelta(seconds=HEALTHY_RESYNC_PERIODS * resync_seconds)
        self._lock = threading.Lock()
        self._last_progress = clock.now()
        self._ready = False
        self._aws_seen: Counter[tuple[str, str]] = Counter()
        registry = self.registry
        self.reconciles = PromCounter(
            "controller_reconcile_total",
            "Reconcile passes, by result.",
            ["result"],
            registry=registry,
        )
        self.duration = Histogram(
            "controller_reconcile_duration_seconds",
            "Wall time of a reconcile pass.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.aws_calls = PromCounter(
            "controller_aws_calls_total",
            "AWS API calls made, by service and operation.",
            ["service", "operation"],
            registry=registry,
        )
        self.runs = Gauge(
            "controller_runs", "Runs in the ledger, by phase.", ["phase"], registry=registry
        )
        self.registrations = PromCounter(
            "controller_taskdef_registrations_total",
            "Task-definition revisions registered.",
            registry=registry,
        )
        self.scale_outs = PromCounter(
            "controller_scale_outs_total",
            "SetDesiredCapacity requests made to scale out.",
            registry=registry,
        )
        self.scale_ins = PromCounter(
            "controller_scale_ins_total",
            "Idle instances released (TerminateInstanceInAutoScalingGroup), by Auto Scaling group.",
            ["group"],
            registry=registry,
        )
        self.missed = PromCounter(
            "controller_missed_schedules_total",
            "CronJob occurrences recorded as Missed.",
            registry=registry,
        )
        self.notifications = PromCounter(
            "controller_notifications_total",
            "Run notifications published to SNS (or failed to be), by result.",
            ["result"],
            registry=registry,
        )
        for result in ("success", "error"):
            self.reconciles.labels(result=result)
        for result in ("published", "failed"):
            self.notifications.labels(result=result)
        for service, operation in operations:
            self.aws_calls.labels(service=service, operation=operation)
        for phase in PHASES:
            self.runs.labels(phase=phase).set(0)

    # -- recording ---------------------------------------------------------------

    def pass_finished(
        self,
        *,
        ok: bool,
        seconds: float,
        action_counts: Mapping[str, int],
        scale_ins: Mapping[str, int] | None = None,
        scale_in_groups: Iterable[str] = (),
    ) -> None:
        """Count a finished pass (any result: finishing one is the loop's progress).

        `scale_ins`: instances released this pass by group; `scale_in_groups`:
        the groups the pass saw opted in (their counters appear at 0).
        """
        self.reconciles.labels(result="success" if ok else "error").inc()
        self.duration.observe(max(0.0, seconds))
        self.registrations.inc(action_counts.get("RegisterTaskDefinition", 0))
        self.scale_outs.inc(action_counts.get("SetDesiredCapacity", 0))
        for group in scale_in_groups:
            self.scale_ins.labels(group=group)
        for group, count in (scale_ins or {}).items():
            self.scale_ins.labels(group=group).inc(count)
        self.missed.inc(action_counts.get("MissedSchedules", 0))
        self.notifications.labels(result="published").inc(action_counts.get(NOTIFY_PUBLISHED, 0))
        self.notifications.labels(result="failed").inc(action_counts.get(NOTIFY_FAILED, 0))
        with self._lock:
            self._last_progress = self._clock.now()
            self._ready = True

    def aws_calls_total(self, totals: Mapping[tuple[str, str], int]) -> None:
        """Catch up with a session's running call totals (only the increase is added)."""
        with self._lock:
            for key, total in totals.items():
                increase = total - self._aws_seen[key]
                if increase > 0:
                    service, operation = key
                    self.aws_calls.labels(service=service, operation=operation).inc(increase)
                    self._aws_seen[key] = total

    def runs_by_phase(self, counts: Mapping[str, int]) -> None:
        """Set the runs gauge; phases without runs read 0."""
        for phase in PHASES:
            self.runs.labels(phase=phase).set(counts.get(phase, 0))

    def missed_schedules(self, count: int = 1) -> None:
        """Count CronJob occurrences recorded as Missed."""
        self.missed.inc(count)

    # -- health --------------------------------------------------------------------

    def healthy(self) -> bool:
        """True while passes keep finishing (within three resync periods)."""
        with self._lock:
            return self._clock.now() - self._last_progress <= self._stale_after

    def ready(self) -> bool:
        """True once the first pass finished."""
        with self._lock:
            return self._ready

    def last_progress(self) -> datetime:
        """When the last pass finished (or the loop started)."""
        with self._lock:
            return self._last_progress


StartResponse = Callable[..., Any]


def health_app(metrics: Metrics) -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    """A WSGI app: /healthz, /readyz, and the Prometheus exposition everywhere else."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            good = metrics.healthy() if path == "/healthz" else metrics.ready()
            status = "200 OK" if good else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n" if good else b"not ok\n"]
        return list(exposition(environ, start_response))

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow client never blocks another."""

    daemon_threads = True


class _ThreadingServerV6(_ThreadingServer):
    """The same on an IPv6 address."""

    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


class MetricsServer:
    """Serves `health_app` on HOST:PORT in a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._server = make_server(
            host,
            port,
            health_app(metrics),
            server_class=_ThreadingServerV6 if ":" in host else _ThreadingServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        """Begin serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[V6]:PORT`) as (host, port); ValueError when malformed."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.removeprefix("[").removesuffix("]")
    return host or "0.0.0.0", int(port)  # noqa: S104 - ":PORT" means every interface, as asked
