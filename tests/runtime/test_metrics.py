"""Metrics and health endpoints, through the WSGI app (no socket) and once over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.clock import FakeClock
from controller.runtime.metrics import Metrics, MetricsServer, health_app, parse_address


def get(metrics: Metrics, path: str) -> tuple[str, str]:
    """(status, body) of one request to the app."""
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Callable[..., Any]:
        answer["status"] = status
        return lambda _data: None

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}
    body = b"".join(health_app(metrics)(environ, start_response))
    return answer["status"], body.decode()


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, text = get(metrics, "/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def aws_calls(operation: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("controller_aws_calls_total", (("operation", operation), ("service", "ecs")))


def test_every_metric_is_present_at_zero_before_any_pass() -> None:
    found = samples(Metrics(FakeClock(), 60))
    expected_zero = [
        ("controller_reconcile_total", (("result", "success"),)),
        ("controller_reconcile_total", (("result", "error"),)),
        ("controller_reconcile_duration_seconds_count", ()),
        aws_calls("RunTask"),
        ("controller_taskdef_registrations_total", ()),
        ("controller_scale_outs_total", ()),
        ("controller_missed_schedules_total", ()),
        ("controller_notifications_total", (("result", "published"),)),
        ("controller_notifications_total", (("result", "failed"),)),
        *[
            ("controller_runs", (("phase", p),))
            for p in ("Pending", "Running", "Succeeded", "Failed")
        ],
    ]
    for key in expected_zero:
        assert found[key] == 0, key


def test_passes_calls_and_runs_are_counted() -> None:
    metrics = Metrics(FakeClock(), 60)
    metrics.pass_finished(ok=True, seconds=0.2, action_counts=Counter(RegisterTaskDefinition=2))
    metrics.pass_finished(ok=False, seconds=0.1, action_counts=Counter())
    metrics.aws_calls_total(Counter({("ecs", "RunTask"): 3, ("ecs", "ListTasks"): 1}))
    metrics.aws_calls_total(Counter({("ecs", "RunTask"): 5, ("ecs", "ListTasks"): 1}))
    metrics.runs_by_phase({"Running": 4, "Succeeded": 1})
    metrics.missed_schedules()
    found = samples(metrics)
    assert found[("controller_reconcile_total", (("result", "success"),))] == 1
    assert found[("controller_reconcile_total", (("result", "error"),))] == 1
    assert found[("controller_reconcile_duration_seconds_count", ())] == 2
    assert found[("controller_taskdef_registrations_total", ())] == 2
    assert found[aws_calls("RunTask")] == 5
    assert found[aws_calls("ListTasks")] == 1
    assert found[("controller_runs", (("phase", "Running"),))] == 4
    assert found[("controller_runs", (("phase", "Pending"),))] == 0
    assert found[("controller_missed_schedules_total", ())] == 1


def test_notifications_are_counted_by_result() -> None:
    metrics = Metrics(FakeClock(), 60)
    counts = Counter(NotificationPublished=2, NotificationFailed=1)
    metrics.pass_finished(ok=False, seconds=0.1, action_counts=counts)
    found = samples(metrics)
    assert found[("controller_notifications_total", (("result", "published"),))] == 2
    assert found[("controller_notifications_total", (("result", "failed"),))] == 1


def test_scale_ins_are_counted_by_group_from_zero() -> None:
    metrics = Metrics(FakeClock(), 60)
    key = ("controller_scale_ins_total", (("group", "batch-asg"),))
    assert key not in samples(metrics)  # no group known yet
    metrics.pass_finished(
        ok=True, seconds=0.1, action_counts={}, scale_in_groups=["batch-asg", "etl-asg"]
    )
    assert samples(metrics)[key] == 0
    metrics.pass_finished(
        ok=True, seconds=0.1, action_counts={}, scale_ins={"batch-asg": 1}, scale_in_groups=[]
    )
    metrics.pass_finished(ok=True, seconds=0.1, action_counts={}, scale_ins={"batch-asg": 2})
    found = samples(metrics)
    assert found[key] == 3
    assert found[("controller_scale_ins_total", (("group", "etl-asg"),))] == 0


def test_readyz_after_the_first_pass_and_healthz_within_three_resync_periods() -> None:
    clock = FakeClock()
    metrics = Metrics(clock, resync_seconds=60)
    assert get(metrics, "/readyz")[0].startswith("503")
    assert get(metrics, "/healthz")[0].startswith("200")  # just started
    metrics.pass_finished(ok=False, seconds=1, action_counts={})
    assert get(metrics, "/readyz")[0].startswith("200")
    clock.advance(180)
    assert get(metrics, "/healthz")[0].startswith("200")
    clock.advance(1)
    assert get(metrics, "/healthz")[0].startswith("503")  # no pass for 181 s
    metrics.pass_finished(ok=True, seconds=1, action_counts={})
    assert get(metrics, "/healthz")[0].startswith("200")


def test_the_server_binds_port_0_and_reports_the_real_port() -> None:
    server = MetricsServer(Metrics(FakeClock(), 60), "127.0.0.1", 0).start()
    try:
        host, port = server.address
        assert port > 0
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as answer:
            assert b"controller_reconcile_total" in answer.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=5)
        assert refused.value.code == 503
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":9464", ("0.0.0.0", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_metrics_addresses(text: str, want: tuple[str, int]) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["9464", "host:", "host:port", "h:70000"])
def test_bad_metrics_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(text)
