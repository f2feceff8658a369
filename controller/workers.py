"""A bounded pool of threads shared by one pass's observe and apply (`--max-concurrency`).

At real AWS latency a pass that makes its calls one after another spends
its whole time waiting: 100 RunTasks at 150 ms are 15 s. The calls a pass
makes are mostly independent (DescribeTasks batches, the RunTasks of
different runs, the deletions of different revisions), so they overlap here,
at most `max_concurrency` at once; what depends on what stays ordered by the
caller (the executor runs its phases one after another, and each run's own
actions in order on one worker).

`map` keeps the order of its input in its output and never nests: a task
given to `map` must not call `map` itself, or a full pool would wait on
itself. With `max_concurrency` 1 everything runs on the calling thread, in
order, exactly as before the pool existed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: `--max-concurrency`'s default.
DEFAULT_MAX_CONCURRENCY = 16


class Workers:
    """Run independent calls concurrently, at most `max_concurrency` at a time."""

    def __init__(self, max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`[fn(item) for item in items]`, concurrently; the first exception raised is re-raised.

        Every call has finished (or failed) when this returns or raises, so
        no call outlives the phase that started it.
        """
        work = list(items)
        if self.max_concurrency == 1 or len(work) <= 1:
            return [fn(item) for item in work]
        futures = [self._executor().submit(fn, item) for item in work]
        failure: BaseException | None = None
        results: list[R] = []
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # wait for the others before raising
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="worker")
            return self._pool

    def close(self) -> None:
        """Stop the threads (idempotent); a later `map` starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
