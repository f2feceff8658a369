"""Log lines: one per event, JSON or text, with the pass id and the run key."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from controller.runtime.log_format import configure_logging, current_pass


@pytest.fixture
def restore_logger() -> Iterator[None]:
    logger = logging.getLogger("controller")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.usefixtures("restore_logger")
def test_json_lines_carry_time_level_message_pass_and_run() -> None:
    stream = io.StringIO()
    configure_logging("json", stream)
    log = logging.getLogger("controller.test")
    token = current_pass.set("ab12-7")
    try:
        log.info("RunTask nightly/1 attempt 1", extra={"run": "nightly/1"})
        log.warning("multi\nline")
    finally:
        current_pass.reset(token)
    log.info("between passes")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["pass"] == "ab12-7"
    assert first["run"] == "nightly/1"
    assert first["level"] == "info"
    assert first["message"] == "RunTask nightly/1 attempt 1"
    assert first["time"].endswith("Z")
    assert second["message"] == "multi\nline"
    assert third["pass"] == "-"
    assert "run" not in third


@pytest.mark.usefixtures("restore_logger")
def test_text_lines_put_pass_and_run_before_the_message() -> None:
    stream = io.StringIO()
    configure_logging("text", stream)
    token = current_pass.set("ab12-7")
    try:
        logging.getLogger("controller.test").info(
            "did it", extra={"run": "nightly/1", "seconds": 0.5}
        )
    finally:
        current_pass.reset(token)
    [line] = stream.getvalue().splitlines()
    assert line.split(" ", 2)[1:] == ["info", "pass=ab12-7 run=nightly/1 did it seconds=0.5"]
