"""Which calls a sandbox knob applies to: `ecs`, `RunTask` or `ecs:RunTask`.

`SANDBOX_LATENCY_MS` and `SANDBOX_THROTTLE` (`latency.py`, `throttle.py`)
name the calls they shape in one grammar, so that one reads like the other:

* `ecs` (lower case: a service, by its SigV4 signing name): every call to it;
* `RunTask` (a capital first: an operation): that operation of any service;
* `ecs:RunTask`: that operation of that service.

A call takes the value of the most specific scope that names it
(`ecs:RunTask`, then `RunTask`, then `ecs`). Names are checked against
botocore's service models when the table is built, so a misspelt one fails
at once instead of never applying.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from botocore.exceptions import UnknownServiceError
from moto.core.utils import get_service_model

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    """A service, an operation, or an operation of one service."""

    service: str | None
    operation: str | None

    def __str__(self) -> str:
        if self.service is None:
            return str(self.operation)
        if self.operation is None:
            return self.service
        return f"{self.service}:{self.operation}"


def parse_scope(text: str, *, service: str | None = None) -> Scope:
    """Read `ecs`, `RunTask` or `ecs:RunTask`; a bare operation takes `service` when given."""
    name, _, operation = text.strip().partition(":")
    if operation:
        return _checked(Scope(name, operation))
    if not name:
        raise ValueError("an empty name where a service or an operation was expected")
    if name[0].isupper():
        return _checked(Scope(service, name))
    return _checked(Scope(name, None))


def _checked(scope: Scope) -> Scope:
    if scope.service is not None:
        try:
            model = get_service_model(scope.service)
        except UnknownServiceError:
            raise ValueError(f"unknown AWS service {scope.service!r}") from None
        if scope.operation is not None and scope.operation not in model.operation_names:
            raise ValueError(f"{scope.service} has no operation {scope.operation!r}")
    elif scope.operation is not None and not scope.operation.isidentifier():
        raise ValueError(f"not an operation name: {scope.operation!r}")
    return scope


class ScopedTable(Generic[T]):
    """Values by scope; a call finds the most specific one that names it."""

    def __init__(self) -> None:
        self._values: dict[Scope, T] = {}

    def set(self, scope: Scope, value: T) -> None:
        """Give `scope` this value (a later setting of the same scope wins)."""
        self._values[scope] = value

    def lookup(self, service: str, operation: str) -> T | None:
        """The value for a call of service/operation, None when no scope names it."""
        for scope in (Scope(service, operation), Scope(None, operation), Scope(service, None)):
            if scope in self._values:
                return self._values[scope]
        return None

    def items(self) -> Iterator[tuple[Scope, T]]:
        """Every scope with its value, in the order they were first set."""
        return iter(self._values.items())

    def __bool__(self) -> bool:
        return bool(self._values)
