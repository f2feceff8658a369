"""The bounded pool: order kept, bound respected, every call finished before an error is raised."""

from __future__ import annotations

import threading

import pytest

from controller.workers import Workers


def test_results_keep_the_input_order() -> None:
    workers = Workers(4)
    try:
        assert workers.map(lambda n: n * n, range(50)) == [n * n for n in range(50)]
    finally:
        workers.close()


def test_never_more_calls_in_flight_than_the_bound() -> None:
    workers = Workers(3)
    lock = threading.Lock()
    in_flight = peak = 0
    release = threading.Event()

    def call(_: int) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight == 3:
                release.set()  # the pool is full: let everyone go on
        release.wait(timeout=10)
        with lock:
            in_flight -= 1

    try:
        workers.map(call, range(12))
    finally:
        workers.close()
    assert peak == 3


def test_the_first_error_is_raised_after_every_call_finished() -> None:
    workers = Workers(4)
    done: list[int] = []

    def call(n: int) -> None:
        if n == 2:
            raise RuntimeError("two")
        done.append(n)

    try:
        with pytest.raises(RuntimeError, match="two"):
            workers.map(call, range(8))
    finally:
        workers.close()
    assert sorted(done) == [0, 1, 3, 4, 5, 6, 7]


def test_one_worker_runs_everything_on_the_calling_thread_in_order() -> None:
    seen: list[str] = []
    Workers(1).map(lambda n: seen.append(threading.current_thread().name), range(3))
    assert seen == [threading.current_thread().name] * 3
