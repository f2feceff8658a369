"""Durable state: the ledger interface and the stores behind it (DESIGN.md §9).

`open_ledger` turns the `--ledger` URL into a store so the CLI and the loop
never name an implementation: `sqlite:PATH` now, `dynamodb://TABLE` when
several replicas need one shared ledger. `ledger_file` names the SQLite file,
next to which `controller run` keeps its lease (`<ledger>.lock`) and its sync
record (`<ledger>.sync.json`).
"""

from __future__ import annotations

from pathlib import Path

from controller.errors import UsageError
from controller.state.ledger import Ledger, LedgerConflict, LedgerView
from controller.state.sqlite import SchemaVersionError, SqliteLedger

__all__ = [
    "Ledger",
    "LedgerConflict",
    "LedgerView",
    "SchemaVersionError",
    "SqliteLedger",
    "ledger_file",
    "open_ledger",
]

_ACCEPTED_FORMS = "sqlite:PATH (e.g. sqlite:.controller/state.db) or dynamodb://TABLE"


def open_ledger(url: str) -> Ledger:
    """Open the ledger a `--ledger` URL names; a malformed URL is a UsageError."""
    path = ledger_file(url)
    if path is not None:
        return SqliteLedger(path)
    raise UsageError("the DynamoDB ledger is not available yet")


def ledger_file(url: str) -> Path | None:
    """The SQLite file a ledger URL names (None for DynamoDB); a malformed URL is a UsageError."""
    scheme, colon, rest = url.partition(":")
    if scheme == "sqlite" and colon:
        if not rest:
            raise UsageError(f"ledger URL {url!r} names no file: expected {_ACCEPTED_FORMS}")
        if rest.startswith("//"):
            # SQLAlchemy-style sqlite:///x counts slashes differently; refuse
            # it rather than guess whether the path was meant to be absolute.
            raise UsageError(
                f"ledger URL {url!r}: write sqlite:PATH with the path as it is,"
                " e.g. sqlite:/var/lib/ejc/state.db or sqlite:.controller/state.db"
            )
        return Path(rest).expanduser()
    if scheme == "dynamodb" and rest.startswith("//"):
        return None
    raise UsageError(f"unknown ledger URL {url!r}: expected {_ACCEPTED_FORMS}")
