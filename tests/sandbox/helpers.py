"""Small helpers the sandbox tests share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config

from controller.clock import Clock
from controller.sandbox import Sandbox


def environment(**variables: object) -> list[dict[str, str]]:
    """An ECS `environment` list."""
    return [{"name": name, "value": str(value)} for name, value in variables.items()]


def register(ecs: Any, family: str = "job", **task_definition: Any) -> str:
    """Register a one-container task definition (256 cpu, 512 MiB by default); its ARN."""
    task_definition.setdefault("cpu", "256")
    task_definition.setdefault("memory", "512")
    task_definition.setdefault(
        "containerDefinitions", [{"name": "app", "image": "busybox", "memory": 128}]
    )
    response = ecs.register_task_definition(family=family, **task_definition)
    return str(response["taskDefinition"]["taskDefinitionArn"])


def describe(ecs: Any, cluster: str, arn: str) -> dict[str, Any]:
    """DescribeTasks for one task that must exist."""
    response = ecs.describe_tasks(cluster=cluster, tasks=[arn])
    assert response["failures"] == [], response["failures"]
    return dict(response["tasks"][0])


def no_retries(sandbox: Sandbox, service: str) -> Any:
    """A client of `sandbox` whose calls botocore never retries: each error is seen as it came."""
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@contextmanager
def serving_sandbox(clock: Clock, **options: Any) -> Iterator[Sandbox]:
    """A running sandbox that in-process gateways find through the environment (put back after)."""
    with Sandbox(clock, **options) as sandbox, pytest.MonkeyPatch.context() as patch:
        for name, value in sandbox.env().items():
            patch.setenv(name, value)
        yield sandbox
