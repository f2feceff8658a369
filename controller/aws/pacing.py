"""Client-side pacing of ECS calls: one token bucket per ECS throttling category.

ECS throttles each account and Region with token buckets, one per category of
actions (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html):
a bucket holds at most `burst` tokens, refills at `per_second`, and every
request takes one; an empty bucket answers ThrottlingException. A pass that
starts 1,000 runs on 16 workers would empty the RunTask bucket in a second
and then spend its time in botocore's backoff. Pacing on our side, with the
same buckets, makes a large pass run at the sustained rate instead, and
leaves headroom for the account's other clients.

Every worker of a pass shares the session's `Pacer`. A request (each HTTP
attempt, retries included: botocore's `before-send`) takes a token from its
category's bucket, waiting for it if needed; a reservation model (tokens may
go below zero, each caller waits for its own token) keeps waiting fair and
the lock short. Throttling that still happens (other clients share the
account's buckets) halves that bucket's refill rate, down to a floor of a
tenth; every request that is not throttled gives back 2 % of the configured
rate, so it recovers in about fifty requests: additive increase,
multiplicative decrease, as TCP and botocore's `adaptive` mode do.

Our burst is smaller than ECS's by `MARGIN_SECONDS` of refill (RunTask: 80,
not 100); the sustained rate is ECS's. A request reaches ECS a while after
it took its token here, and not always the same while (a new connection, a
busy worker, the network; on the sandbox at 150 ms per call the first
RunTask of a pass arrived after 0.28 s, later ones after 0.15 to 0.37 s).
If the first request arrives 0.25 s later than the ones after it, ECS's
bucket starts refilling 0.25 s after ours, and a pass keeping exactly to
ECS's figures arrives 10 tokens short (0.25 s at 40 per second) at the end
of its burst: bench/latency.py saw 3 to 6 ThrottlingExceptions per 1,000
RunTasks that way, each of them halving the rate. With the margin, requests
whose arrival drifts up to `MARGIN_SECONDS` from their tokens' spacing
still find a token at ECS.

Why not botocore's `adaptive` retry mode: it starts unlimited and only
limits after the first throttle (we want to stay under the published rates
from the first call), and it keeps one rate per client, so a throttled
DescribeTasks would slow RunTask too, whose bucket is separate at ECS.

The defaults below are the categories and figures of that page; any of them
can be changed with `--aws-rate CATEGORY=BURST:PER_SECOND` (for an account
whose quotas were raised, or to leave room for other tools sharing the
account; the margin applies to them too). Fargate has a separate task-launch
quota counted per task (burst 100, 20 per second, "AWS Fargate throttling
quotas"); it is not paced here, because one RunTask may launch up to ten
tasks: an account that launches mostly Fargate tasks sets
`--aws-rate cluster-modify=100:20`. Operations outside every category are
not paced.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from controller.clock import SystemClock, Timer


@dataclass(frozen=True)
class Rate:
    """A token bucket's size and refill rate."""

    burst: float
    per_second: float


#: ECS throttling category -> the ECS operations the controller calls in it
#: (the page's categories: "Cluster resource modify", "Cluster resource
#: read", "Task definition modify", "Task definition read", "Task
#: definition deletion"; operations of one category share its bucket).
CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "cluster-modify": ("RunTask", "StopTask"),
    "cluster-read": (
        "DescribeTasks",
        "ListTasks",
        "DescribeContainerInstances",
        "ListContainerInstances",
    ),
    "taskdef-modify": ("RegisterTaskDefinition", "DeregisterTaskDefinition"),
    "taskdef-read": ("DescribeTaskDefinition", "ListTaskDefinitions"),
    "taskdef-delete": ("DeleteTaskDefinitions",),
}

#: The default buckets: the page's burst and refill per second.
DEFAULT_RATES: Mapping[str, Rate] = {
    "cluster-modify": Rate(100, 40),
    "cluster-read": Rate(100, 20),
    "taskdef-modify": Rate(20, 1),
    "taskdef-read": Rate(50, 20),
    "taskdef-delete": Rate(5, 1),
}

#: Seconds of refill our buckets' burst keeps below ECS's (see the module docstring).
MARGIN_SECONDS = 0.5

#: How far throttling can slow a bucket, as a fraction of its configured rate.
FLOOR = 0.1
#: What each request that was not throttled gives back, as a fraction of the rate.
RECOVERY = 0.02


class TokenBucket:
    """One category's bucket, shared by every worker; thread-safe.

    It holds `rate.burst` less `margin_seconds` of refill (at least one
    token): the headroom ECS's own bucket needs for requests that do not
    reach it evenly spaced (see the module docstring).
    """

    def __init__(self, rate: Rate, timer: Timer, *, margin_seconds: float = MARGIN_SECONDS) -> None:
        self.configured = rate
        self.per_second = rate.per_second
        #: the tokens this bucket holds at most
        self.burst = max(1.0, rate.burst - rate.per_second * margin_seconds)
        self._timer = timer
        self._tokens = self.burst
        self._at = timer.monotonic()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0
        self.throttles = 0

    def acquire(self) -> float:
        """Take one token, waiting for it if the bucket is empty; the seconds waited."""
        with self._lock:
            now = self._timer.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.per_second
            self.waited_seconds += wait
        if wait > 0:
            self._timer.sleep(wait)
        return wait

    def throttled(self) -> None:
        """ECS throttled a request of this category anyway: halve the refill rate."""
        with self._lock:
            self.throttles += 1
            self.per_second = max(self.configured.per_second * FLOOR, self.per_second / 2)
            self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        """A request went through: recover a little of the configured rate."""
        with self._lock:
            step = self.configured.per_second * RECOVERY
            self.per_second = min(self.configured.per_second, self.per_second + step)


class Pacer:
    """The buckets of one process: which bucket an operation takes from."""

    def __init__(self, rates: Mapping[str, Rate] | None = None, timer: Timer | None = None) -> None:
        clock = timer or SystemClock()
        merged = {**DEFAULT_RATES, **(rates or {})}
        self.buckets = {name: TokenBucket(rate, clock) for name, rate in merged.items()}
        self._by_operation = {
            operation: self.buckets[name]
            for name, operations in CATEGORIES.items()
            if name in self.buckets
            for operation in operations
        }

    def bucket(self, operation: str) -> TokenBucket | None:
        """The bucket an ECS operation takes from (None: not paced)."""
        return self._by_operation.get(operation)


def parse_rate(text: str) -> tuple[str, Rate]:
    """`CATEGORY=BURST:PER_SECOND` -> (category, Rate); ValueError names what is wrong."""
    name, _, numbers = text.partition("=")
    if name not in CATEGORIES:
        raise ValueError(f"unknown category {name!r} (one of {', '.join(sorted(CATEGORIES))})")
    burst, _, per_second = numbers.partition(":")
    try:
        rate = Rate(float(burst), float(per_second))
    except ValueError:
        raise ValueError(f"{text!r}: expected {name}=BURST:PER_SECOND") from None
    if rate.burst < 1 or rate.per_second <= 0:
        raise ValueError(f"{text!r}: the burst must be at least 1 and the rate above 0")
    return name, rate
