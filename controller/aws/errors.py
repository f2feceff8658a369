"""AWS errors turned into ours: TerminalError or TransientError.

By the time an error reaches us botocore has already retried what it
considers retryable (throttling, 5xx and connection errors, six attempts in
"standard" mode). What is left is classified deliberately, because a
transient error makes the loop retry with backoff and a terminal one is
reported once and left for the next change or resync:

* **AWS answered (ClientError):** throttling codes, "Too many concurrent
  attempts" and HTTP 5xx are transient; everything the caller got wrong —
  bad parameters, a missing cluster, access denied — is terminal.
* **Nothing usable came back (BotoCoreError), transient:** the connection
  failed or broke (EndpointConnectionError, connect and read timeouts, a
  closed connection, an incomplete or corrupted response); a remote
  credential provider did not answer (CredentialRetrievalError,
  MetadataRetrievalError: the instance or container metadata endpoint);
  botocore's retry quota ran out (CapacityNotAvailableError). Networks and
  those endpoints come back. A wrong `AWS_ENDPOINT_URL` cannot be told from
  an outage: each pass reports it in one line (`ListTasks:
  EndpointConnectionError: Could not connect to the endpoint URL: "..."`).
* **Terminal, credentials:** none found, partial ones, an SSO token that
  expired or cannot be loaded; the message says how to configure them.
  `AwsSession` looks for credentials when it is made, so a command started
  without any exits 2 before its first call.
* **Terminal, everything else:** parameter validation (ParamValidationError:
  the request does not fit the API, and retrying sends the same request),
  unknown regions and endpoints, configuration and profile errors, and any
  kind of error not listed above as transient.

Messages are one line: botocore's multi-line ParamValidationError becomes
`Parameter validation failed: first problem; second problem`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    CapacityNotAvailableError,
    ChecksumError,
    ClientError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    MetadataRetrievalError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    RefreshWithMFAUnsupportedError,
    SSOError,
    TokenRetrievalError,
    UnknownCredentialError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

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


#: botocore errors worth another pass: the network or a metadata endpoint comes back.
TRANSIENT_BOTOCORE: Final = (
    BotoConnectionError,  # EndpointConnectionError, ConnectTimeoutError, proxy, TLS
    HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
    CredentialRetrievalError,
    MetadataRetrievalError,
    CapacityNotAvailableError,
)
#: botocore errors that mean "no usable credentials": terminal, with CREDENTIALS_HINT.
CREDENTIAL_BOTOCORE: Final = (
    NoCredentialsError,
    PartialCredentialsError,
    UnknownCredentialError,
    NoAuthTokenError,
    SSOError,
    TokenRetrievalError,
    RefreshWithMFAUnsupportedError,
)
CREDENTIALS_HINT: Final = (
    "configure them as boto3 reads them: AWS_PROFILE, AWS_ACCESS_KEY_ID and"
    " AWS_SECRET_ACCESS_KEY, SSO (aws sso login), or an instance or task role"
)


def one_line(text: str) -> str:
    """`text` on one line: botocore's multi-line messages joined with '; '."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return lines[0] if lines else ""
    head, *rest = lines
    if head.endswith(":"):
        return f"{head} {'; '.join(rest)}"
    return "; ".join(lines)


class AwsTerminalError(TerminalError):
    """An AWS error retrying cannot fix; keeps the code for callers that care."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {one_line(message)}")
        self.code = code
        self.aws_message = message
        self.operation = operation


class AwsTransientError(TransientError):
    """An AWS error worth retrying later."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {one_line(message)}")
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


def classify_botocore(exc: BotoCoreError, operation: str) -> AwsTerminalError | AwsTransientError:
    """Terminal or transient, from the kind of botocore error (see the module docstring)."""
    code, message = type(exc).__name__, str(exc)
    if isinstance(exc, TRANSIENT_BOTOCORE):
        return AwsTransientError(code, message, operation)
    if isinstance(exc, CREDENTIAL_BOTOCORE):
        return AwsTerminalError(code, f"{message}; {CREDENTIALS_HINT}", operation)
    return AwsTerminalError(code, message, operation)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Raise our error kinds instead of botocore's inside the block."""
    try:
        yield
    except ClientError as exc:
        raise classify(exc, operation) from exc
    except BotoCoreError as exc:
        raise classify_botocore(exc, operation) from exc


def call(operation: str, fn: Callable[[], T]) -> T:
    """Run `fn` with AWS errors translated."""
    with translated(operation):
        return fn()
