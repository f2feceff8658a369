"""`controller oneshot`'s exit status as a function of the finished run (a table, no AWS)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.cli.oneshot import exit_status
from controller.model.run import Phase, Reason, RunRecord
from tests.plan.builders import after_pass, at, desired_run, ending, running


def finished(how: str, **fields: object) -> RunRecord:
    """A run whose only attempt ended `how` (see `tests.plan.builders.ending`)."""
    run = desired_run("job", **fields)
    record = running(run)
    return after_pass(run, record, ending(record, how, at(30)), at(30))


@pytest.mark.parametrize(
    ("how", "want", "says"),
    [
        ("exit 0", 0, "every success container exited 0"),
        ("exit 3", 3, "container app: exit code 3"),
        ("exit 137", 137, "exit code 137"),
    ],
)
def test_the_container_exit_code_decides(how: str, want: int, says: str) -> None:
    status, why = exit_status(finished(how))
    assert status == want
    assert says in why


@pytest.mark.parametrize("stop_code", ["TaskFailedToStart", "SpotInterruption"])
def test_an_infrastructure_end_is_1_with_the_stop_code_and_reason(stop_code: str) -> None:
    # The last attempt of a run that spent its infrastructure budget.
    record = replace(finished(stop_code), phase=Phase.FAILED, reason=Reason.INFRASTRUCTURE_FAILURES)
    status, why = exit_status(record)
    assert status == 1
    assert why.startswith(f"{stop_code}: ")
