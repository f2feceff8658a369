"""SANDBOX_LATENCY_MS: every served call waits its latency, outside the lock, so calls overlap."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.latency import Latency
from tests.sandbox.helpers import no_retries, register

#: How long a test waits, at most, for the calls it started to meet.
MEET_TIMEOUT = 60.0


@pytest.mark.parametrize(
    ("spec", "service", "operation", "seconds"),
    [
        ("", "ecs", "RunTask", 0.0),
        ("150", "ecs", "RunTask", 0.15),
        ("150", "logs", "PutLogEvents", 0.15),
        ("150,ecs:RunTask:300,DescribeTasks:80", "ecs", "RunTask", 0.3),
        ("150,ecs:RunTask:300,DescribeTasks:80", "ecs", "DescribeTasks", 0.08),
        ("150,ecs:RunTask:300,DescribeTasks:80", "ecs", "ListTasks", 0.15),
        ("ecs:150", "ecs", "ListTasks", 0.15),
        ("ecs:150", "autoscaling", "SetDesiredCapacity", 0.0),
        # The most specific scope wins, whatever the order of the entries.
        ("ecs:RunTask:5,RunTask:10,ecs:20,30", "ecs", "RunTask", 0.005),
        ("ecs:RunTask:5,RunTask:10,ecs:20,30", "ecs", "StopTask", 0.02),
        ("ecs:RunTask:5,RunTask:10,ecs:20,30", "logs", "PutLogEvents", 0.03),
        ("0.5", "ecs", "RunTask", 0.0005),
    ],
)
def test_a_call_waits_the_latency_of_its_most_specific_scope(
    spec: str, service: str, operation: str, seconds: float
) -> None:
    assert Latency.parse(spec).seconds(service, operation) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("fast", "neither MS nor SCOPE:MS"),
        ("-5", ">= 0"),
        ("ecs:RunTask:soon", "neither MS nor SCOPE:MS"),
        ("ecs:RunTsk:100", "no operation 'RunTsk'"),
        ("nosuch:100", "unknown AWS service 'nosuch'"),
        (":100", "empty name"),
    ],
)
def test_a_bad_latency_is_refused_at_once(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Latency.parse(spec)


def test_the_constructor_reads_the_environment_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_LATENCY_MS", "150,ecs:RunTask:300")
    assert str(Sandbox(FakeClock()).latency) == "150,ecs:RunTask:300"
    assert not Sandbox(FakeClock(), latency="").latency
    assert str(Sandbox(FakeClock(), latency="ecs:20").latency) == "ecs:20"
    monkeypatch.setenv("SANDBOX_LATENCY_MS", "ecs:RunTsk:1")
    with pytest.raises(ValueError, match="RunTsk"):
        Sandbox(FakeClock())


def test_latency_is_spent_outside_the_lock_so_calls_overlap(sandbox: Sandbox) -> None:
    """8 calls at once are all in flight together: none waits for another's latency.

    Each call's latency is spent waiting for the 8 to meet. Spent under the
    sandbox's lock, the first would hold the lock and the others could
    never arrive: the meeting would time out and every call fail.
    """
    callers = 8
    meeting = threading.Barrier(callers, timeout=MEET_TIMEOUT)
    sandbox.set_latency("ListClusters:200", pause=lambda _seconds: meeting.wait())
    clients = [no_retries(sandbox, "ecs") for _ in range(callers)]
    answers: list[Any] = []

    def call(client: Any) -> None:
        answers.append(client.list_clusters())

    threads = [threading.Thread(target=call, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(MEET_TIMEOUT)
    assert len(answers) == callers
    assert sandbox.in_flight_peak("ecs", "ListClusters") == callers
    assert sandbox.in_flight_peak() == callers
    assert sandbox.max_in_flight == {("ecs", "ListClusters"): callers}
    assert sandbox.calls[("ecs", "ListClusters")] == callers


def test_each_served_call_waits_its_own_latency_and_setup_calls_none(sandbox: Sandbox) -> None:
    waited: list[float] = []
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1)
    sandbox.set_latency("150,ecs:RunTask:300,DescribeTasks:80", pause=waited.append)
    sandbox.create_log_group("/ecs/batch")  # the sandbox's own call: no latency
    assert waited == []

    ecs = sandbox.client("ecs")
    register(ecs)
    arn = ecs.run_task(cluster="batch", taskDefinition="job")["tasks"][0]["taskArn"]
    ecs.describe_tasks(cluster="batch", tasks=[arn])
    sandbox.client("ecs", counted=False).list_tasks(cluster="batch")  # uncounted: no latency
    assert waited == pytest.approx([0.15, 0.3, 0.08])


def test_real_latency_sleeps_and_answers(sandbox: Sandbox) -> None:
    sandbox.set_latency("ecs:ListClusters:1")
    assert sandbox.client("ecs").list_clusters()["clusterArns"] == []
    assert sandbox.in_flight_peak("ecs", "ListClusters") == 1


def test_calls_one_after_another_never_overlap(sandbox: Sandbox) -> None:
    ecs = sandbox.client("ecs")
    for _ in range(3):
        ecs.list_clusters()
    assert sandbox.in_flight_peak("ecs", "ListClusters") == 1
    assert sandbox.in_flight_peak("ecs", "RunTask") == 0


def test_reset_restores_the_constructors_latency_and_the_peaks(sandbox: Sandbox) -> None:
    waited: list[float] = []
    sandbox.set_latency("ecs:100", pause=waited.append)
    sandbox.client("ecs").list_clusters()
    assert waited == [0.1]
    sandbox.reset()
    assert not sandbox.latency
    assert sandbox.in_flight_peak() == 0
    sandbox.client("ecs").list_clusters()
    assert waited == [0.1]


def test_a_peak_names_both_service_and_operation_or_neither(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="both"):
        sandbox.in_flight_peak("ecs")
