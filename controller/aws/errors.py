"""AWS errors turned into ours: TerminalError or TransientError.

By the time an error reaches us botocore has already retried what it
considers retryable; we still classify throttling and server faults as
transient (the loop backs off and tries again next pass) and everything the
caller got wrong — bad parameters, a missing cluster, access denied — as
terminal: retrying cannot help.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from controller.errors import TerminalError, TransientError

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
    }
)


class AwsTerminalError(TerminalError):
    """An AWS error retrying cannot fix; keeps the code for callers that care."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.aws_message = message
        self.operation = operation


class AwsTransientError(TransientError):
    """An AWS error worth retrying later."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.aws_message = message
        self.operation = operation


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def error_message(exc: ClientError) -> str:
    """The AWS error message of a ClientError."""
    return str(exc.response.get("Error", {}).get("Message", str(exc)))


def classify(exc: ClientError, operation: str) -> AwsTerminalError | AwsTransientError:
    """Terminal or transient, from the code and HTTP status."""
    code = error_code(exc)
    message = error_message(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
    too_many = code == "ClientException" and "Too many concurrent attempts" in message
    if code in TRANSIENT_CODES or status >= 500 or too_many:
        return AwsTransientError(code, message, operation)
    return AwsTerminalError(code, message, operation)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Raise our error kinds instead of botocore's inside the block."""
    try:
        yield
    except ClientError as exc:
        raise classify(exc, operation) from exc
    except BotoCoreError as exc:
        # Connection errors, read timeouts, credential refreshes: transient.
        raise AwsTransientError(type(exc).__name__, str(exc), operation) from exc


def call(operation: str, fn: Callable[[], T]) -> T:
    """Run `fn` with AWS errors translated."""
    with translated(operation):
        return fn()
