"""Token-bucket throttling for the sandbox (`SANDBOX_THROTTLE`), answered as AWS answers it.

ECS throttles every account per Region with token buckets: each call takes
a token from its category's bucket, which holds at most *burst* tokens and
gets *refill* tokens back per second; a call that finds it empty is answered
HTTP 400 `ThrottlingException`, "Rate exceeded". Random injected faults
(`Sandbox.inject_fault`) cannot show whether a controller paces itself; a
bucket can:

    SANDBOX_THROTTLE=ecs:RunTask:100:20                  Fargate's task launches
    SANDBOX_THROTTLE=ecs:RunTask+StartTask+StopTask:100:40,DescribeTasks+ListTasks:100:20
    SANDBOX_THROTTLE=ecs                                 ECS's published buckets

A comma list of entries. `SCOPE[+SCOPE...]:BURST:REFILL` is one bucket
shared by the scopes it names (`scopes.py`: `ecs`, `RunTask`,
`ecs:RunTask`; in a `+` list a bare operation takes the service of the one
before it, so `ecs:RunTask+StopTask` is ECS's RunTask and StopTask); BURST
is a whole number of tokens >= 1, REFILL tokens per second >= 0 (0: never
refills). The word `ecs` stands for the buckets of the ECS API reference's
"Request throttling for the Amazon ECS API" table (`ECS_API_BUCKETS`). A
call takes a token from the bucket of the most specific scope that names
it, and only from that one; a later entry for the same scope replaces the
earlier one (`ecs,ecs:RunTask:10:1` tightens RunTask alone). Calls no
bucket names are never throttled. Buckets are shared by every client of the
sandbox, as ECS's are shared by every client of the account, start full,
and are full again after `Sandbox.reset()`.

Refill is continuous (`burst` caps it) and runs on the sandbox's time: real
monotonic time when the sandbox runs on a `SystemClock`, the sandbox's
clock otherwise, so under a `FakeClock` an empty bucket stays empty until
the test advances the clock (e.g. refill 20/s: 0.05 s gives one token).

The answer is the service's own throttling error in its wire format
(`wsgi.error_response`): ECS, Logs, DynamoDB, SQS, EventBridge
`ThrottlingException`/400, Auto Scaling `Throttling`/400, EC2
`RequestLimitExceeded`/503, S3 `SlowDown`/503; botocore retries each of
them as throttling. A throttled call is counted in `Sandbox.calls` (AWS
served it) and in `Sandbox.throttled`, and does nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.sandbox.scopes import ScopedTable, parse_scope

#: The environment variable `Sandbox` and `python -m controller.sandbox` read.
THROTTLE_VARIABLE = "SANDBOX_THROTTLE"

#: The word in SANDBOX_THROTTLE that stands for `ECS_API_BUCKETS`.
ECS_PRESET = "ecs"

#: ECS's API throttling categories: (category, actions, burst, refill per second),
#: the table of "Request throttling for the Amazon ECS API" (Amazon ECS API
#: Reference, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html),
#: the same in every Region. (The page spells one action
#: "UpdateContainerInstancesStates"; the API's name is used here.) RunTask on
#: Fargate is also limited by Fargate's task launch bucket, burst 100 and 20
#: per second per account and Region ("AWS Fargate throttling quotas", Amazon
#: ECS Developer Guide), counted per task launched: not part of the preset;
#: `ecs:RunTask:100:20` approximates it for one-task RunTask calls.
ECS_API_BUCKETS: tuple[tuple[str, tuple[str, ...], int, float], ...] = (
    (
        "Cluster modify actions",
        (
            "CreateCluster",
            "DeleteCluster",
            "PutClusterCapacityProviders",
            "UpdateCluster",
            "UpdateClusterSettings",
        ),
        20,
        1,
    ),
    ("Cluster read actions", ("DescribeClusters", "ListClusters"), 50, 20),
    (
        "Task definition modify actions",
        ("DeregisterTaskDefinition", "RegisterTaskDefinition"),
        20,
        1,
    ),
    (
        "Task definition read actions",
        ("DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies"),
        50,
        20,
    ),
    ("Task definition deletion actions", ("DeleteTaskDefinitions",), 5, 1),
    (
        "Capacity provider modify actions",
        ("CreateCapacityProvider", "DeleteCapacityProvider", "UpdateCapacityProvider"),
        10,
        1,
    ),
    ("Capacity provider read actions", ("DescribeCapacityProviders",), 50, 20),
    ("Tag modify actions", ("TagResource", "UntagResource"), 20, 10),
    ("Tag read actions", ("ListTagsForResource",), 50, 20),
    (
        "Setting modify actions",
        ("DeleteAccountSetting", "PutAccountSetting", "PutAccountSettingDefault"),
        10,
        1,
    ),
    ("Setting read actions", ("ListAccountSettings",), 50, 20),
    (
        "Cluster resource modify actions",
        (
            "DeleteAttributes",
            "DeregisterContainerInstance",
            "ExecuteCommand",
            "PutAttributes",
            "RunTask",
            "StartTask",
            "StopTask",
            "UpdateContainerAgent",
            "UpdateContainerInstancesState",
        ),
        100,
        40,
    ),
    (
        "Cluster resource read actions",
        (
            "DescribeContainerInstances",
            "DescribeTasks",
            "ListAttributes",
            "ListContainerInstances",
            "ListTasks",
        ),
        100,
        20,
    ),
    (
        "Agent modify actions",
        (
            "RegisterContainerInstance",
            "SubmitAttachmentStateChanges",
            "SubmitContainerStateChange",
            "SubmitTaskStateChange",
        ),
        200,
        120,
    ),
    ("Service modify actions", ("CreateService", "DeleteService", "UpdateService"), 50, 5),
    ("Service read actions", ("DescribeServices", "ListServices"), 100, 20),
    (
        "Service deployment actions",
        ("DescribeServiceDeployments", "ListServiceDeployments"),
        50,
        20,
    ),
    ("Service revision actions", ("DescribeServiceRevisions",), 50, 20),
    ("Task protection actions", ("UpdateTaskProtection", "GetTaskProtection"), 200, 80),
    ("Cluster service resource read actions", ("ListServicesByNamespace",), 10, 1),
)

#: (code, message, HTTP status) of each service's throttling error.
_THROTTLING_ERRORS: dict[str, tuple[str, str, int]] = {
    "ecs": ("ThrottlingException", "Rate exceeded", 400),
    "autoscaling": ("Throttling", "Rate exceeded", 400),
    "ec2": ("RequestLimitExceeded", "Request limit exceeded.", 503),
    "s3": ("SlowDown", "Please reduce your request rate.", 503),
}
_DEFAULT_THROTTLING_ERROR = ("ThrottlingException", "Rate exceeded", 400)

#: Float slack when a refill lands exactly on a whole token.
_EPSILON = 1e-9


def throttling_error(service: str) -> tuple[str, str, int]:
    """(code, message, HTTP status) with which `service` answers a throttled call."""
    return _THROTTLING_ERRORS.get(service, _DEFAULT_THROTTLING_ERROR)


@dataclass
class TokenBucket:
    """At most `burst` tokens, `refill` more per second; a call takes one."""

    burst: int
    refill: float
    tokens: float = math.nan
    #: the time of the last take, in the sandbox's seconds (None: never taken)
    last: float | None = None

    def __post_init__(self) -> None:
        if math.isnan(self.tokens):
            self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Take a token at time `now` (seconds); False when the bucket is empty."""
        if self.last is not None:
            elapsed = max(0.0, now - self.last)
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.refill)
        self.last = now if self.last is None else max(self.last, now)
        if self.tokens >= 1 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1)
            return True
        return False


class Throttle:
    """The sandbox's buckets, by the scopes that share them."""

    def __init__(self, table: ScopedTable[TokenBucket] | None = None, spec: str = "") -> None:
        self._table: ScopedTable[TokenBucket] = table if table is not None else ScopedTable()
        self._spec = spec

    @classmethod
    def parse(cls, spec: str) -> Throttle:
        """Read a `SANDBOX_THROTTLE` value (see the module's docstring); ValueError if bad."""
        table: ScopedTable[TokenBucket] = ScopedTable()
        entries = [part.strip() for part in spec.split(",") if part.strip()]
        for entry in entries:
            if entry == ECS_PRESET:
                for _, actions, burst, refill in ECS_API_BUCKETS:
                    bucket = TokenBucket(burst, refill)
                    for action in actions:
                        table.set(parse_scope(f"ecs:{action}"), bucket)
                continue
            scopes_text, burst_text, refill_text = _fields(entry)
            bucket = TokenBucket(_burst(burst_text, entry), _refill(refill_text, entry))
            service: str | None = None
            for member in scopes_text.split("+"):
                try:
                    scope = parse_scope(member, service=service)
                except ValueError as error:
                    raise ValueError(f"{THROTTLE_VARIABLE}: {entry!r}: {error}") from None
                service = scope.service
                table.set(scope, bucket)
        return cls(table, ",".join(entries))

    def admit(self, service: str, operation: str, now: float) -> bool:
        """Whether a call of service/operation at `now` finds a token (takes it if so)."""
        bucket = self._table.lookup(service, operation)
        return bucket is None or bucket.take(now)

    def bucket(self, service: str, operation: str) -> TokenBucket | None:
        """The bucket a call of service/operation takes its token from, if any."""
        return self._table.lookup(service, operation)

    def __bool__(self) -> bool:
        return bool(self._table)

    def __str__(self) -> str:
        return self._spec or "off"


def _fields(entry: str) -> tuple[str, str, str]:
    parts = entry.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise ValueError(
            f"{THROTTLE_VARIABLE}: {entry!r} is not SCOPE[+SCOPE...]:BURST:REFILL "
            f"(e.g. ecs:RunTask:100:20) nor {ECS_PRESET!r}"
        )
    return parts[0], parts[1], parts[2]


def _burst(text: str, entry: str) -> int:
    try:
        burst = int(text)
    except ValueError:
        burst = 0
    if burst < 1:
        raise ValueError(f"{THROTTLE_VARIABLE}: {entry!r}: BURST must be a whole number >= 1")
    return burst


def _refill(text: str, entry: str) -> float:
    try:
        refill = float(text)
    except ValueError:
        refill = -1.0
    if not math.isfinite(refill) or refill < 0:
        raise ValueError(f"{THROTTLE_VARIABLE}: {entry!r}: REFILL must be tokens per second >= 0")
    return refill
