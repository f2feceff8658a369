"""How ledgers write times and JSON: one encoding for every store.

A run key is stored as (name, `RunKey.id_text`): `RUN_ID`, or
`RUN_ID#INDEX` for one index of an indexed run (`RunKey.from_id_text`
reads it back).

Times are fixed-width ISO 8601 UTC text with microseconds (they sort in time
order and round-trip exactly); naive datetimes are refused. JSON is compact
and refuses NaN and infinities, as no AWS API accepts them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime


def to_text(at: datetime) -> str:
    """Encode a datetime as fixed-width ISO 8601 UTC text with microseconds."""
    if at.utcoffset() is None:
        # A naive datetime names no instant; guessing local time would shift
        # deadlines and backoffs by the host's UTC offset.
        raise ValueError(f"the ledger stores timezone-aware datetimes only, got naive {at!r}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def optional_text(at: datetime | None) -> str | None:
    """Encode like `to_text`, passing None through."""
    return None if at is None else to_text(at)


def from_text(text: str) -> datetime:
    """Decode the timezone-aware UTC datetime stored by `to_text`."""
    return datetime.fromisoformat(text)


def optional_datetime(text: str | None) -> datetime | None:
    """Decode like `from_text`, passing None through."""
    return None if text is None else datetime.fromisoformat(text)


def to_json(value: object) -> str:
    """Encode compact JSON; NaN and infinities are refused."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
