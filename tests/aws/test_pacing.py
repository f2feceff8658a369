"""The ECS pacing buckets on a fake clock: bursts, the sustained rate, throttling."""

from __future__ import annotations

import threading

import pytest

from controller.aws.pacing import (
    DEFAULT_RATES,
    FLOOR,
    MARGIN_SECONDS,
    Pacer,
    Rate,
    TokenBucket,
    parse_rate,
)
from controller.clock import FakeClock
from controller.sandbox.throttle import TokenBucket as EcsBucket


def test_a_burst_goes_at_once_then_calls_wait_for_the_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(burst=10, per_second=5), clock, margin_seconds=0)
    assert [bucket.acquire() for _ in range(10)] == [0.0] * 10
    assert clock.monotonic() == 0.0
    waits = [bucket.acquire() for _ in range(5)]
    # Each call waits for its own token: one every 1/5 s after the burst.
    assert waits == pytest.approx([0.2] * 5)
    assert clock.monotonic() == pytest.approx(1.0)


def test_a_large_pass_runs_at_the_sustained_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(burst=100, per_second=20), clock)
    for _ in range(1_000):
        bucket.acquire()
    # The burst less the margin at once, the rest at 20 per second.
    assert bucket.burst == 100 - 20 * MARGIN_SECONDS
    assert clock.monotonic() == pytest.approx((1_000 - bucket.burst) / 20)


def test_requests_that_reach_ecs_unevenly_still_find_ecs_bucket_with_a_token() -> None:
    """The first request reaching ECS MARGIN_SECONDS late starts ECS's refill late: never short.

    ECS's bucket (the sandbox's model of it) has the published figures and
    starts refilling when the first request arrives; every later request
    arrives right after it took its token here.
    """
    rate = Rate(burst=100, per_second=40)
    for margin, throttled_at_most in ((MARGIN_SECONDS, 0), (0.0, None)):
        clock = FakeClock()
        ours = TokenBucket(rate, clock, margin_seconds=margin)
        ecs = EcsBucket(burst=100, refill=40)
        refused = 0
        for number in range(1_000):
            ours.acquire()
            late = MARGIN_SECONDS if number == 0 else 0.0
            refused += not ecs.take(clock.monotonic() + late)
        if throttled_at_most is None:
            assert refused > 0  # ECS's own figures leave no room for the late start
        else:
            assert refused == throttled_at_most


def test_workers_share_one_bucket_and_no_token_is_handed_out_twice() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(burst=50, per_second=10), clock, margin_seconds=0)

    def take() -> None:
        for _ in range(25):
            bucket.acquire()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 200 tokens: 50 of the burst, 150 refilled at 10 per second.
    assert bucket.waited_seconds > 0
    assert clock.monotonic() >= 150 / 10 - 1e-6


def test_throttling_halves_the_rate_down_to_a_floor_and_successes_bring_it_back() -> None:
    bucket = TokenBucket(Rate(burst=10, per_second=20), FakeClock())
    bucket.throttled()
    assert bucket.per_second == 10
    for _ in range(10):
        bucket.throttled()
    assert bucket.per_second == 20 * FLOOR
    for _ in range(100):
        bucket.succeeded()
    assert bucket.per_second == 20


def test_operations_take_from_their_category_and_others_are_not_paced() -> None:
    pacer = Pacer({"cluster-modify": Rate(5, 1)})
    launch = pacer.bucket("RunTask")
    assert launch is not None
    assert launch.configured == Rate(5, 1)
    assert pacer.bucket("StopTask") is launch  # one ECS category, one bucket
    assert pacer.bucket("DescribeTasks") is pacer.bucket("ListContainerInstances")
    assert pacer.bucket("CreateCluster") is None
    assert set(DEFAULT_RATES) == set(pacer.buckets)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("nope=1:1", "unknown category"),
        ("cluster-modify=ten:1", "expected cluster-modify=BURST:PER_SECOND"),
        ("cluster-modify=0:1", "at least 1"),
        ("cluster-modify=10:0", "above 0"),
    ],
)
def test_a_bad_rate_is_refused_with_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_rate(text)
    assert parse_rate("cluster-read=50:10") == ("cluster-read", Rate(50, 10))
