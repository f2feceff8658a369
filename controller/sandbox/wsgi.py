"""The sandbox's front door: every request to the moto server passes here.

A WSGI middleware around moto's application that, per request:

* names it `(service, operation)` (e.g. `("ecs", "RunTask")`) and counts it,
  so tests and benchmarks can read how many AWS calls the controller made
  (and, when asked, notes when each arrived on the sandbox clock, so a
  real-time benchmark can time one call against another);
* answers it with an injected AWS error instead, when a test asked for one
  (`FaultInjector`), serialized by moto for the service's protocol so that
  botocore sees a real AWS error (and retries throttling by itself); an
  *executed* fault runs the request first and then answers with the error,
  as when AWS did the work but its answer was lost (a 500 after the write,
  a dropped connection) — the case a non-idempotent call must survive. A
  fault meets every call of its operation, or only the calls to one URL
  path: for a REST service that names one resource, e.g. one S3 object;
* counts it as in flight while it is served (`latency.InFlight`) and
  spends its latency (`SANDBOX_LATENCY_MS`, `latency.py`) first, *outside*
  the lock, so that calls in flight overlap as they do against AWS;
* answers it with the service's throttling error when its token bucket
  (`SANDBOX_THROTTLE`, `throttle.py`) is empty;
* runs it under the sandbox lock with the simulation hooks around it: the
  agent and fleet catch up with the clock before moto reads any state, and
  note Auto Scaling launches right after;
* turns moto's `POST /moto-api/reset` into a sandbox reset, which keeps the
  patches in place;
* gives moto's IAM refusals (when the sandbox enforces IAM) the shape AWS
  gives them: moto answers every service with its XML `AccessDenied` and
  status 403, which botocore cannot parse for a JSON service (ECS,
  DynamoDB, Logs, SQS) and reports as error code "403" with the XML as
  its message; AWS answers those with `AccessDeniedException` in JSON,
  status 400, and that is what the controller must meet.

Requests the sandbox makes itself (setup helpers) carry `INTERNAL_MARKER` in
their User-Agent and are neither counted, delayed, throttled nor faulted.
"""

from __future__ import annotations

import html
import io
import re
import threading
import urllib.parse
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from http import HTTPStatus
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.request import Request, determine_request_protocol
from moto.core.routing import get_service_router
from moto.core.serialize import get_serializer_class
from moto.core.utils import get_service_model

from controller.sandbox.latency import InFlight
from controller.sandbox.throttle import throttling_error

#: In the User-Agent of the sandbox's own setup requests.
INTERNAL_MARKER = "ejc-sandbox-internal"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Call:
    """One request, as AWS names it."""

    service: str
    operation: str
    internal: bool
    #: the URL path, decoded: what a REST request is about (S3: /BUCKET/KEY)
    path: str = "/"


def identify(environ: dict[str, Any]) -> Call:
    """Name a request by its signing service and API operation ("?" when unknown)."""
    return replace(_operation(environ), path=_path(environ))


def _path(environ: dict[str, Any]) -> str:
    # WSGI hands over the path's bytes as latin-1 (PEP 3333); keys are UTF-8.
    raw: str = environ.get("PATH_INFO", "") or "/"
    return raw.encode("latin-1").decode("utf-8", "replace")


def _operation(environ: dict[str, Any]) -> Call:
    internal = INTERNAL_MARKER in environ.get("HTTP_USER_AGENT", "")
    if environ.get("PATH_INFO", "").startswith("/moto-api"):
        return Call("moto-api", environ.get("PATH_INFO", ""), internal=True)
    service = _signing_service(environ.get("HTTP_AUTHORIZATION", ""))
    if service == "?":
        # A SigV4 presigned URL has the scope in its query; anything else
        # unsigned or SigV2 (S3's presigned URLs) moto routes to S3 too.
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        credential = query.get("X-Amz-Credential")
        service = _signing_service(f"Credential={credential[0]}") if credential else "s3"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocols: ECS, CloudWatch Logs, DynamoDB, ...
        return Call(service, target.rsplit(".", 1)[-1], internal)
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        # Query protocols (Auto Scaling, EC2, STS): Action in the form body.
        body = _buffer_body(environ)
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return Call(service, action[0], internal)
    return Call(service, _rest_operation(service, environ), internal)


def _signing_service(authorization: str) -> str:
    # "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ..."
    try:
        return authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        return "?"


def _buffer_body(environ: dict[str, Any]) -> bytes:
    # Read the body once and leave a fresh stream for moto.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _rest_operation(service: str, environ: dict[str, Any]) -> str:
    # REST protocols (S3): moto's own router matches path, method and query.
    try:
        operation, _ = get_service_router(service).match(Request(environ))
        return str(operation.name)
    except Exception:  # an unknown request is counted as "?", it never fails here
        return "?"


@dataclass(frozen=True)
class TimedCall:
    """A counted request and when it arrived, on the sandbox clock."""

    at: datetime
    service: str
    operation: str


class InjectedFault(ServiceException):
    """An AWS error a test asked for; serialized like the service's own errors."""


@dataclass
class _Fault:
    code: str
    message: str
    status: int
    remaining: int
    #: run the call, then answer with the error (the answer was "lost")
    executed: bool = False
    #: only calls to this URL path meet the fault (None: every call)
    path: str | None = None

    def applies_to(self, call: Call) -> bool:
        """True when `call` must meet this fault."""
        return self.path is None or self.path == call.path


class FaultInjector:
    """Errors to answer instead of running the next calls of an operation."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str], deque[_Fault]] = {}

    def add(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        times: int,
        message: str,
        status: int,
        executed: bool = False,
        path: str | None = None,
    ) -> None:
        """Fail the next `times` calls of service/operation (to `path`, if given) with `code`."""
        if times > 0:
            self._faults.setdefault((service, operation), deque()).append(
                _Fault(code, message, status, times, executed, path)
            )

    def take(self, call: Call) -> _Fault | None:
        """Return the fault this call must answer with, if any (uses it up once)."""
        queue = self._faults.get((call.service, call.operation), deque())
        # The oldest fault that applies: one for another path waits for its own calls.
        for index, fault in enumerate(queue):
            if fault.applies_to(call):
                fault.remaining -= 1
                if fault.remaining == 0:
                    del queue[index]
                return fault
        return None

    def clear(self) -> None:
        """Forget every pending fault."""
        self._faults.clear()


def error_response(
    call: Call, fault: _Fault, content_type: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of `fault` in the wire format of `call`'s service."""
    service_model = get_service_model(call.service)
    operation_model = service_model.operation_model(call.operation)
    protocol = determine_request_protocol(service_model, content_type)
    serializer = get_serializer_class(service_model.service_name, protocol)(
        operation_model=operation_model
    )
    with warnings.catch_warnings():
        # moto warns when a code is not in the service's error model; an
        # injected ThrottlingException is meant to be exactly that.
        warnings.simplefilter("ignore", UserWarning)
        serialized = serializer.serialize(InjectedFault(fault.code, fault.message))
    body = serialized["body"]
    return (
        fault.status,
        dict(serialized["headers"]),
        body.encode("utf-8") if isinstance(body, str) else body,
    )


@dataclass
class Hooks:
    """What the middleware calls around each request, and the state it shares."""

    lock: threading.RLock
    calls: Counter[tuple[str, str]]
    #: on `lock`: notified after each counted call
    counted: threading.Condition
    faults: FaultInjector
    before: Callable[[], None]
    after: Callable[[], None]
    #: what POST /moto-api/reset does instead of moto's own reset, which
    #: would drop the sandbox's patches with the backends
    reset: Callable[[], None]
    #: spends a call's latency; called without `lock`
    delay: Callable[[Call], None]
    #: on `lock`: False when the call's token bucket is empty (throttle it)
    admit: Callable[[Call], bool]
    #: the calls being served, counted without `lock`
    in_flight: InFlight
    #: on `lock`: every counted call with its arrival time (None: not kept)
    timeline: list[TimedCall] | None = None
    #: the sandbox clock, for `timeline`
    now: Callable[[], datetime] = field(default=datetime.now)

    def count(self, call: Call) -> None:
        """Count a request the caller made (under `lock`), and note its time if asked."""
        self.calls[(call.service, call.operation)] += 1
        if self.timeline is not None:
            self.timeline.append(TimedCall(self.now(), call.service, call.operation))
        self.counted.notify_all()  # its waiters wake once the lock is free


class SandboxMiddleware:
    """Counts, delays, throttles, fault-injects and serializes requests to moto's WSGI app."""

    def __init__(self, app: WsgiApp, hooks: Hooks) -> None:
        self._app = app
        self._hooks = hooks

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request."""
        call = identify(environ)
        hooks = self._hooks
        if call.operation == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            hooks.reset()
            body = b'{"status": "ok"}'
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if call.internal:
            return self._serve(call, environ, start_response)
        with hooks.in_flight.track((call.service, call.operation)):
            # Before the lock, never under it: one call's latency must not
            # hold up the calls in flight beside it.
            hooks.delay(call)
            return self._serve(call, environ, start_response)

    def _serve(
        self, call: Call, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes]:
        """Count, throttle or fault the call, or let moto answer it under the lock."""
        hooks = self._hooks
        if (call.service, call.operation) in _WAITING_CALLS:
            return self._unserialised(call, environ, start_response)
        with hooks.lock:
            fault: _Fault | None = None
            if not call.internal:
                hooks.count(call)
                if not hooks.admit(call):
                    return _answer_with(_throttled(call), call, environ, start_response)
                fault = hooks.faults.take(call)
                if fault is not None and not fault.executed:
                    return _answer_with(fault, call, environ, start_response)
            hooks.before()
            captured: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured[:] = [status, headers, exc_info]
                return lambda data: None

            try:
                # Produce the whole body while the lock is held: moto reads
                # (and the serializer walks) backend state until the end.
                result = self._app(environ, capture)
                try:
                    body_parts = list(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            finally:
                hooks.after()
            if fault is not None:
                # Executed: moto did the work; its answer is what gets lost.
                return _answer_with(fault, call, environ, start_response)
        status_line, headers, exc_info = captured
        if status_line.startswith("403") and _JSON_PROTOCOLS & _protocols(call, environ):
            denied = _access_denied(call, environ, b"".join(body_parts))
            if denied is not None:
                return denied(start_response)
        start_response(status_line, headers, exc_info)
        return body_parts

    def _unserialised(
        self, call: Call, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes]:
        """A long poll: counted and faulted under the lock, served outside it.

        SQS ReceiveMessage may wait up to 20 s for a message; under the one
        lock every other request would wait with it. moto's SQS queues are
        made for this (a Condition per queue that SendMessage notifies), so
        the wait happens unlocked, as it does in moto's own threaded server.
        """
        hooks = self._hooks
        with hooks.lock:
            if not call.internal:
                hooks.count(call)
                if not hooks.admit(call):
                    return _answer_with(_throttled(call), call, environ, start_response)
                fault = hooks.faults.take(call)
                if fault is not None:
                    return _answer_with(fault, call, environ, start_response)
            hooks.before()
        result = self._app(environ, start_response)
        try:
            return list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


#: Protocols whose errors are JSON: moto's XML refusal must be re-serialized for them.
_JSON_PROTOCOLS = frozenset({"json", "rest-json"})
_DENIED_MESSAGE = re.compile(rb"<Code>AccessDenied</Code><Message>(.*?)</Message>", re.DOTALL)


def _protocols(call: Call, environ: dict[str, Any]) -> set[str]:
    try:
        model = get_service_model(call.service)
    except Exception:  # not a service botocore knows (moto's own API): leave it alone
        return set()
    return {determine_request_protocol(model, environ.get("CONTENT_TYPE", ""))}


def _access_denied(
    call: Call, environ: dict[str, Any], body: bytes
) -> Callable[[StartResponse], list[bytes]] | None:
    """The JSON AccessDeniedException AWS answers for moto's XML AccessDenied (None: not one)."""
    found = _DENIED_MESSAGE.search(body)
    if found is None:
        return None
    message = html.unescape(found.group(1).decode("utf-8", "replace"))
    fault = _Fault("AccessDeniedException", message, 400, remaining=0)

    def answer(start_response: StartResponse) -> list[bytes]:
        return _answer_with(fault, call, environ, start_response)

    return answer


#: Calls that may block waiting for something to happen: never under the lock.
_WAITING_CALLS = frozenset({("sqs", "ReceiveMessage")})


def _throttled(call: Call) -> _Fault:
    """The error with which the call's service answers a throttled call."""
    code, message, status = throttling_error(call.service)
    return _Fault(code, message, status, remaining=0)


def _answer_with(
    fault: _Fault, call: Call, environ: dict[str, Any], start_response: StartResponse
) -> list[bytes]:
    """Answer the request with the injected error."""
    status, headers, body = error_response(call, fault, environ.get("CONTENT_TYPE", ""))
    headers["Content-Length"] = str(len(body))
    start_response(_status_line(status), list(headers.items()))
    return [body]


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"
