"""How botocore's own errors are classified, and what a session checks when it is made.

The errors are produced for real where botocore can produce them without
AWS (no credentials, a parameter the API refuses, a refused connection, a
profile that does not exist); the table of kinds pins the rest of the
classification documented in `controller.aws.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import (
    BotoCoreError,
    CapacityNotAvailableError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    UnknownServiceError,
)
from moto import mock_aws

from controller.aws.ecs import EcsGateway, RunTaskResult
from controller.aws.errors import AwsTerminalError, AwsTransientError, call, classify_botocore
from controller.aws.session import AwsSession
from controller.errors import UsageError

REGION = "eu-west-1"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """An environment with fake credentials and nothing from the developer's ~/.aws."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return monkeypatch


@pytest.fixture
def aws(env: pytest.MonkeyPatch) -> Iterator[None]:
    with mock_aws():
        yield


# -- at start-up: the session ----------------------------------------------------------


def test_a_session_without_credentials_is_a_usage_error(env: pytest.MonkeyPatch) -> None:
    env.delenv("AWS_ACCESS_KEY_ID")
    env.delenv("AWS_SECRET_ACCESS_KEY")
    # No container credentials either (ECS, EKS pod identity).
    env.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    env.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)

    with pytest.raises(UsageError, match=r"^no AWS credentials: configure them") as refused:
        AwsSession(REGION)
    assert "\n" not in str(refused.value)


def test_a_profile_that_does_not_exist_is_a_usage_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_PROFILE", "no-such-profile")

    with pytest.raises(UsageError, match=r"AWS configuration: .*no-such-profile"):
        AwsSession(REGION)


def test_an_endpoint_that_is_not_a_url_is_terminal(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_ENDPOINT_URL", "not a url")
    session = AwsSession(REGION)

    with pytest.raises(AwsTerminalError, match=r"^ecs client: ValueError: Invalid endpoint"):
        EcsGateway(session).list_tasks("batch", "ejc/default", "RUNNING")


# -- during a pass: real botocore errors ----------------------------------------------------


def test_a_request_the_api_refuses_is_terminal_and_one_line(aws: None) -> None:
    ecs = AwsSession(REGION).client("ecs")

    with pytest.raises(AwsTerminalError) as refused:
        call("RunTask", lambda: ecs.run_task(taskDefinition=3, cpu="256"))

    message = str(refused.value)
    assert message.startswith("RunTask: ParamValidationError: Parameter validation failed: ")
    assert "\n" not in message
    assert 'Unknown parameter in input: "cpu"' in message
    assert "Invalid type for parameter taskDefinition" in message


def test_run_task_with_refused_parameters_is_rejected_not_retried(aws: None) -> None:
    outcome = EcsGateway(AwsSession(REGION)).run_task({"taskDefinition": 3})

    assert outcome.result is RunTaskResult.REJECTED
    assert "ParamValidationError" in outcome.message


def test_a_refused_connection_is_transient_and_one_line(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard: nothing listens
    gateway = EcsGateway(AwsSession(REGION))

    with pytest.raises(AwsTransientError) as failed:
        gateway.list_tasks("batch", "ejc/default", "RUNNING")

    assert str(failed.value) == (
        'ListTasks: EndpointConnectionError: Could not connect to the endpoint URL: "'
        'http://127.0.0.1:9/"'
    )


# -- the classification, kind by kind ----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (EndpointConnectionError(endpoint_url="https://ecs.example"), AwsTransientError),
        (ConnectTimeoutError(endpoint_url="https://ecs.example"), AwsTransientError),
        (ReadTimeoutError(endpoint_url="https://ecs.example"), AwsTransientError),
        (CredentialRetrievalError(provider="container-role", error_msg="503"), AwsTransientError),
        (CapacityNotAvailableError(), AwsTransientError),
        (NoCredentialsError(), AwsTerminalError),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            AwsTerminalError,
        ),
        (SSOTokenLoadError(error_msg="token expired"), AwsTerminalError),
        (ParamValidationError(report="Missing required parameter"), AwsTerminalError),
        (NoRegionError(), AwsTerminalError),
        (ProfileNotFound(profile="prod"), AwsTerminalError),
        (UnknownServiceError(service_name="ecz", known_service_names="ecs"), AwsTerminalError),
        (BotoCoreError(), AwsTerminalError),  # a kind nobody listed: retrying is no cure
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BotoCoreError) else "",
)
def test_botocore_errors_are_classified_deliberately(
    error: BotoCoreError, kind: type[Exception]
) -> None:
    classified = classify_botocore(error, "RunTask")

    assert type(classified) is kind
    assert classified.code == type(error).__name__
    assert str(classified).startswith(f"RunTask: {type(error).__name__}: ")


def test_missing_credentials_say_how_to_configure_them() -> None:
    classified = classify_botocore(NoCredentialsError(), "ListTasks")

    assert str(classified) == (
        "ListTasks: NoCredentialsError: Unable to locate credentials; configure them as boto3"
        " reads them: AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, SSO"
        " (aws sso login), or an instance or task role"
    )
