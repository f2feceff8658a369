"""boto3 clients, configured once, with every API call counted.

The endpoint comes from boto3's own configuration (`AWS_ENDPOINT_URL` and
friends), so the same binary talks to AWS or to the sandbox. botocore's
"standard" retry mode retries throttling and 5xx with jittered backoff; our
own classification (`controller.aws.errors`) decides what happens when it
gives up.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
from botocore.config import Config

from controller.errors import UsageError

#: botocore retries throttling/5xx itself before we ever see the error.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="ecs-job-controller",
)


class AwsSession:
    """Creates clients for one region and counts API calls per (service, operation)."""

    def __init__(self, region: str | None = None) -> None:
        self._session = boto3.session.Session(region_name=region)
        if self._session.region_name is None:
            # botocore would only say so at the first call, deep inside a pass.
            raise UsageError("no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION")
        self._clients: dict[str, Any] = {}
        self.calls: Counter[tuple[str, str]] = Counter()

    @property
    def region(self) -> str | None:
        """The region in use (from the option or boto3's configuration)."""
        region: str | None = self._session.region_name
        return region

    def client(self, service: str) -> Any:
        """A cached client for `service` whose calls are counted."""
        client = self._clients.get(service)
        if client is None:
            client = self._session.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]
            client.meta.events.register("before-call.*.*", self._count)
            self._clients[service] = client
        return client

    def _count(self, model: Any, **_: Any) -> None:
        # One count per API operation issued by us; botocore's own retries
        # of the same call are not counted again.
        self.calls[(model.service_model.service_name, model.name)] += 1
