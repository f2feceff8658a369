"""`Sandbox(call_times=True)`: each counted call with its arrival time on the sandbox clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.wsgi import TimedCall


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(clock, call_times=True) as sandbox:
        yield sandbox


def test_each_counted_call_is_kept_in_order_with_the_sandbox_clock_time(
    sandbox: Sandbox, clock: FakeClock
) -> None:
    first = clock.now()
    sandbox.client("ecs").list_clusters()
    clock.advance(2.5)
    sandbox.client("autoscaling").describe_auto_scaling_groups()
    assert sandbox.call_times == [
        TimedCall(first, "ecs", "ListClusters"),
        TimedCall(first + timedelta(seconds=2.5), "autoscaling", "DescribeAutoScalingGroups"),
    ]


def test_setup_and_uncounted_calls_are_not_kept(sandbox: Sandbox) -> None:
    sandbox.create_cluster("batch")
    sandbox.client("ecs", counted=False).list_clusters()
    assert sandbox.call_times == []


def test_reset_calls_forgets_the_times_too(sandbox: Sandbox) -> None:
    sandbox.client("ecs").list_clusters()
    snapshot = sandbox.call_times
    sandbox.reset_calls()
    assert sandbox.call_times == []
    assert len(snapshot) == 1
