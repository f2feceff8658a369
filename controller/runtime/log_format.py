"""One log line per event, as text or JSON (`controller run --log-format`).

DESIGN.md §10: every line carries the pass id, and the run key when the
event is about a run, so `jq 'select(.run == "nightly/20261128T0330Z")'`
finds a run's whole story. The stdlib's logging does the work; this module
only adds the pass id (from a context variable the loop sets around each
pass) and the two formatters. No dependency beyond the standard library.

A call site attaches a run key with `extra={"run": str(key)}`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: The id of the pass in flight, set by the loop; "-" between passes.
current_pass: contextvars.ContextVar[str] = contextvars.ContextVar("current_pass", default="-")

#: LogRecord attributes that are not `extra` fields a caller added.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class PassIdFilter(logging.Filter):
    """Stamps each record with the pass in flight (unless the caller named one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `pass_id`; never drops a record."""
        if not hasattr(record, "pass_id"):
            record.pass_id = current_pass.get()
        return True


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRIBUTES and key != "pass_id"
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, pass, run and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single-line JSON object."""
        document: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pass": getattr(record, "pass_id", current_pass.get()),
        }
        document.update(_extras(record))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`TIME LEVEL pass=ID [run=KEY] message [key=value…]`, one line per event."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line (a traceback, if any, follows it)."""
        extras = _extras(record)
        fields = [
            _time(record),
            record.levelname.lower(),
            f"pass={getattr(record, 'pass_id', current_pass.get())}",
        ]
        if "run" in extras:
            fields.append(f"run={extras.pop('run')}")
        fields.append(record.getMessage())
        fields += [f"{key}={value}" for key, value in extras.items()]
        line = " ".join(fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """Send the `controller` loggers' INFO and above to `stream` (stderr) in `log_format`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(PassIdFilter())
    logger = logging.getLogger("controller")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
