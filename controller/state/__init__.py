"""Durable state: the ledger interface and the stores behind it (DESIGN.md §9).

`open_ledger` turns the `--state` URL into a store so the CLI and the loop
never name an implementation: `sqlite:PATH` by default, `dynamodb://TABLE`
when several replicas need one shared ledger. The DynamoDB table's region is
the one of the session passed in, else `CONTROLLER_REGION` (the environment
form of `--region`), else boto3's own configuration (`AWS_REGION`, the
profile); the endpoint, as for every AWS call, comes from boto3's configuration.
`ledger_file` names the SQLite file, next to which `controller run` keeps its
lease (`<ledger>.lock`) and its sync record (`<ledger>.sync.json`); with
DynamoDB the lease is an item of the table (`controller.state.leader_lease`).

`read_only=True` is how the commands that write nothing (`status`, `diff`,
`logs`, dry runs) open the ledger: no file, directory or table is created,
nothing is migrated, writes are refused, and a ledger that does not exist
reads as empty with `missing` set (`status` says `no ledger at PATH`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from controller.aws.session import AwsSession
from controller.errors import UsageError
from controller.state.dynamodb import DynamoDbLedger
from controller.state.ledger import Ledger, LedgerConflict, LedgerView
from controller.state.sqlite import LedgerDamaged, SchemaVersionError, SqliteLedger

__all__ = [
    "DynamoDbLedger",
    "Ledger",
    "LedgerConflict",
    "LedgerDamaged",
    "LedgerView",
    "SchemaVersionError",
    "SqliteLedger",
    "dynamodb_table",
    "ledger_file",
    "open_ledger",
]

_ACCEPTED_FORMS = "sqlite:PATH (e.g. sqlite:.controller/state.db) or dynamodb://TABLE"
#: DynamoDB's rule for table names.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


def open_ledger(
    url: str, *, session: AwsSession | None = None, read_only: bool = False
) -> SqliteLedger | DynamoDbLedger:
    """Open the ledger a `--state` URL names (`read_only`: see above); bad URLs are UsageErrors."""
    path = ledger_file(url)
    if path is not None:
        return SqliteLedger(path, read_only=read_only)
    table = dynamodb_table(url)
    assert table is not None  # ledger_file accepts nothing else
    if session is None:
        # No region at all is a UsageError from AwsSession itself.
        session = AwsSession(os.environ.get("CONTROLLER_REGION") or None)
    return DynamoDbLedger(table, session, read_only=read_only)


def dynamodb_table(url: str) -> str | None:
    """The DynamoDB table a ledger URL names (None for SQLite); a malformed URL is a UsageError."""
    if ledger_file(url) is not None:
        return None
    table = url.removeprefix("dynamodb://")
    if not _TABLE_NAME.fullmatch(table):
        raise UsageError(
            f"ledger URL {url!r}: {table!r} is not a DynamoDB table name"
            " (3-255 letters, digits, '_', '-' or '.')"
        )
    return table


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
