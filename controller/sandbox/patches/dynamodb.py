"""DynamoDB: a conditional write is checked and applied as one step.

The DynamoDB ledger and leader lease rely on conditional writes being
atomic, as they are in DynamoDB; moto's are not (see
`patch_atomic_dynamodb_writes`). One process-wide lock serialises every
write method of moto's DynamoDB backend class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from controller.sandbox.patches.stack import PatchStack

#: One lock for every DynamoDB write of every moto backend in this process.
_DYNAMODB_WRITES = threading.RLock()  # re-entrant: moto's batch and transact writes call put_item
DYNAMODB_WRITE_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
)


def patch_atomic_dynamodb_writes(stack: PatchStack, backend_cls: Any) -> None:
    """DynamoDB checks a write's condition and applies it as one step; moto does not.

    moto evaluates `ConditionExpression` and then stores the item without a
    lock, so two threads (the moto server's request threads, or in-process
    callers) can both pass `attribute_not_exists(pk)` and both "win" — a race
    real DynamoDB never loses. The ledger's exactly-once claim rests on that
    atomicity, so every write method of the backend class is serialised.
    Patched on the class: it applies to in-process moto in this process too.
    """
    for name in DYNAMODB_WRITE_METHODS:
        stack.wrap(backend_cls, name, _serialised)


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    def write(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITES:
            return method(*args, **kwargs)

    return write
