"""boto3 clients, configured once, with every API call counted.

The endpoint comes from boto3's own configuration (`AWS_ENDPOINT_URL` and
friends), so the same binary talks to AWS or to the sandbox. botocore's
"standard" retry mode retries throttling and 5xx with jittered backoff; our
own classification (`controller.aws.errors`) decides what happens when it
gives up.

How long one call can take, at most: botocore's standard mode makes up to 7
attempts (`max_attempts` 6 retries), waiting a random 0..2^n s (capped at
20 s) before retry n: at most 1 + 2 + 4 + 8 + 16 + 20 = 51 s of backoff,
plus each attempt's 10 s connect and 60 s read timeouts (the read timeout is
what an SQS long poll of 20 s needs). A pass stops starting new work after
`--pass-budget-seconds` (the executor), so one slow call delays a pass by
that bound, never by minutes more. With a pacer, ECS requests also wait for
their throttling category's token (`controller.aws.pacing`).

A session is made at start-up, so it checks there what every call needs: a
region, a readable AWS configuration (an `AWS_PROFILE` that exists) and
credentials. Without them it raises UsageError (one line, exit 2) instead of
letting the first call fail deep inside a pass. Finding credentials is what
botocore does for the first client anyway (environment, profile, SSO,
container or instance role), so the check costs nothing extra.

Retrying is only safe for calls that are idempotent. RegisterTaskDefinition
is not (it has no client token): a 5xx or a timeout may come after ECS
registered the revision, and botocore's retry would register a second one.
So `client(service, retries=False)` gives a client that makes one attempt
per call; the ECS gateway registers through it, and the executor retries
itself after re-reading the family for the revision (`controller.apply`).
A retry hook could not do this: botocore's `needs-retry` handlers can ask
for a retry but not veto the one its own handler asks for.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from controller.aws.errors import CREDENTIALS_HINT, AwsTerminalError, one_line
from controller.aws.pacing import Pacer
from controller.errors import UsageError

#: botocore retries throttling/5xx itself before we ever see the error.
if TYPE_CHECKING:  # the maintained stub packages type every client (dev dependency only)
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

#: What ECS answers when a bucket is empty (botocore's throttling codes for it).
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "RequestLimitExceeded"})

#: Connections per client: above the largest --max-concurrency, so workers
#: never queue for a connection (urllib3 would discard the extra ones).
MAX_POOL_CONNECTIONS = 64

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=MAX_POOL_CONNECTIONS,
    user_agent_extra="ecs-job-controller",
)
#: For calls whose outcome must be known before they are repeated.
NO_RETRY_CONFIG = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))


class AwsSession:
    """Creates clients for one region and counts API calls per (service, operation)."""

    def __init__(self, region: str | None = None, *, pacer: Pacer | None = None) -> None:
        #: paces ECS requests per throttling category (None: not paced)
        self.pacer = pacer
        try:
            self._session = boto3.session.Session(region_name=region)
            found_region = self._session.region_name
        except BotoCoreError as exc:  # a profile that does not exist, a broken config file
            raise UsageError(f"AWS configuration: {one_line(str(exc))}") from None
        if found_region is None:
            # botocore would only say so at the first call, deep inside a pass.
            raise UsageError("no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION")
        self._check_credentials()
        self._clients: dict[tuple[str, bool], Any] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        # boto3 clients are thread-safe once made; making them (from the one
        # boto3 Session) and counting calls are not, and a loop has threads.
        self._lock = threading.Lock()

    def _check_credentials(self) -> None:
        """Raise UsageError when boto3 finds no credentials (see the module docstring)."""
        try:
            credentials = self._session.get_credentials()
        except BotoCoreError as exc:
            raise UsageError(
                f"AWS credentials: {type(exc).__name__}: {one_line(str(exc))}"
            ) from None
        if credentials is None:
            raise UsageError(f"no AWS credentials: {CREDENTIALS_HINT}")

    @property
    def region(self) -> str | None:
        """The region in use (from the option or boto3's configuration)."""
        region: str | None = self._session.region_name
        return region

    def client(self, service: str, *, retries: bool = True) -> Any:
        """A cached client for `service` whose calls are counted.

        `retries=False`: one attempt per call, for calls that must not be
        repeated before their outcome is known (see the module docstring).
        """
        with self._lock:
            return self._client(service, retries)

    def _client(self, service: str, retries: bool) -> Any:
        client = self._clients.get((service, retries))
        if client is None:
            config = RETRY_CONFIG if retries else NO_RETRY_CONFIG
            try:
                client = self._session.client(service, config=config)  # type: ignore[call-overload]
            except (BotoCoreError, ValueError) as exc:
                # e.g. an AWS_ENDPOINT_URL that is not a URL: every call would fail alike.
                raise AwsTerminalError(type(exc).__name__, str(exc), f"{service} client") from exc
            client.meta.events.register("before-call.*.*", self._count)
            if self.pacer is not None and service == "ecs":
                client.meta.events.register("before-send.ecs.*", self._pace)
                client.meta.events.register("needs-retry.ecs.*", self._paced_answer)
            self._clients[(service, retries)] = client
        return client

    def ecs(self, *, retries: bool = True) -> ECSClient:
        """The ECS client, typed."""
        return cast("ECSClient", self.client("ecs", retries=retries))

    def autoscaling(self) -> AutoScalingClient:
        """The Auto Scaling client, typed."""
        return cast("AutoScalingClient", self.client("autoscaling"))

    def ec2(self) -> EC2Client:
        """The EC2 client, typed."""
        return cast("EC2Client", self.client("ec2"))

    def s3(self) -> S3Client:
        """The S3 client, typed."""
        return cast("S3Client", self.client("s3"))

    def dynamodb(self) -> DynamoDBClient:
        """The DynamoDB client, typed."""
        return cast("DynamoDBClient", self.client("dynamodb"))

    def logs(self) -> CloudWatchLogsClient:
        """The CloudWatch Logs client, typed."""
        return cast("CloudWatchLogsClient", self.client("logs"))

    def sqs(self) -> SQSClient:
        """The SQS client, typed (the ECS events queue)."""
        return cast("SQSClient", self.client("sqs"))

    def endpoint_urls(self, services: Iterable[str]) -> dict[str, str]:
        """Where each service's calls go, as boto3 resolved it for the clients in use.

        `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, a config file's
        `endpoint_url`; with none of them, AWS's own regional endpoint.
        """
        return {s: str(self.client(s).meta.endpoint_url) for s in services}

    def _pace(self, event_name: str, **_: Any) -> None:
        # Every HTTP attempt, botocore's retries included, takes a token.
        assert self.pacer is not None
        bucket = self.pacer.bucket(event_name.rsplit(".", 1)[-1])
        if bucket is not None:
            bucket.acquire()

    def _paced_answer(self, event_name: str, response: Any = None, **_: Any) -> None:
        # Only observes: returning None leaves the retry decision to botocore.
        assert self.pacer is not None
        bucket = self.pacer.bucket(event_name.rsplit(".", 1)[-1])
        if bucket is None or not isinstance(response, tuple) or len(response) != 2:
            return
        code = (response[1] or {}).get("Error", {}).get("Code")
        if code in THROTTLING_CODES:
            bucket.throttled()
        elif code is None:
            bucket.succeeded()

    def call_counts(self) -> Counter[tuple[str, str]]:
        """A copy of the call counts, safe while other threads make calls."""
        with self._lock:
            return self.calls.copy()

    def _count(self, model: Any, **_: Any) -> None:
        # One count per API operation issued by us; botocore's own retries
        # of the same call are not counted again.
        with self._lock:
            self.calls[(model.service_model.service_name, model.name)] += 1


def endpoint_urls(region: str | None, services: Iterable[str]) -> dict[str, str]:
    """As `AwsSession.endpoint_urls`, for a command that needs no region otherwise.

    Without a region boto3 cannot build a client; AWS's own endpoint of
    us-east-1 stands in then (only its being AWS matters, not its region).
    """
    session = boto3.session.Session(region_name=region)
    name = session.region_name or "us-east-1"
    return {
        s: str(session.client(s, region_name=name).meta.endpoint_url)  # type: ignore[call-overload]
        for s in services
    }
