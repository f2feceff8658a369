"""Retry rules: the pure matcher, and what the lifecycle does with its verdict.

The matcher is a table: (rules, attempt's tasks, success containers) -> the
first matching rule or none. The lifecycle rows drive a run through the
planner (`through`: one attempt per ending) and read the phase, reason and
budgets that result, with and without rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from controller.model.build import retry_rules_from_raw
from controller.model.manifest import RetryAction, RetryRule
from controller.model.run import AttemptOutcome, AttemptRecord, Phase, Reason, TaskRecord
from controller.plan.lifecycle import MAX_IGNORED_ATTEMPTS, MAX_INFRASTRUCTURE_RETRIES
from controller.plan.retry_rules import FailureCounts, failure_counts, first_match
from tests.plan.builders import NOW, desired_run, kinds, task_arn
from tests.plan.test_runs import through


def rules(*raw: Mapping[str, Any]) -> tuple[RetryRule, ...]:
    """Rules in manifest spelling."""
    return retry_rules_from_raw(raw)


def ended(
    outcome: AttemptOutcome = AttemptOutcome.APPLICATION_FAILURE,
    *tasks: TaskRecord,
    number: int = 1,
) -> AttemptRecord:
    """A finished attempt with `tasks` (default: one task whose app exited 1)."""
    return AttemptRecord(
        number=number,
        client_token=f"token-{number}",
        task_definition_arn="arn",
        request={},
        intent_at=NOW,
        tasks=tasks or (stopped_task({"app": 1}),),
        submitted=True,
        outcome=outcome,
        finished_at=NOW,
    )


def stopped_task(
    exit_codes: Mapping[str, int | None],
    stop_code: str = "EssentialContainerExited",
    reason: str = "Essential container in task exited",
    short: str = "t1",
) -> TaskRecord:
    return TaskRecord(
        task_arn(short), "STOPPED", dict(exit_codes), stop_code, reason, stopped_at=NOW
    )


APP = AttemptOutcome.APPLICATION_FAILURE
INFRA = AttemptOutcome.INFRASTRUCTURE_FAILURE
SPOT = stopped_task({}, "SpotInterruption", "Your Spot Task was interrupted.")
IN_2 = {"action": "FailRun", "onExitCodes": {"operator": "In", "values": [2]}}


# -- the matcher ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "attempt", "success", "want"),
    [
        # In: some considered code is in values.
        ([IN_2], ended(APP, stopped_task({"app": 2})), ("app",), (0, "container app exit code 2")),
        ([IN_2], ended(APP, stopped_task({"app": 3})), ("app",), None),
        # NotIn: some considered non-zero code is not in values; 0 and None never count.
        (
            [{"action": "Retry", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}],
            ended(APP, stopped_task({"app": 3})),
            ("app",),
            (0, "container app exit code 3"),
        ),
        (
            [{"action": "Retry", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}],
            ended(APP, stopped_task({"app": 2})),
            ("app",),
            None,
        ),
        (
            [{"action": "Retry", "onExitCodes": {"operator": "NotIn", "values": [1]}}],
            ended(APP, stopped_task({"app": 1, "sidecar": 0})),
            ("app", "sidecar"),
            None,
        ),
        (
            [{"action": "Retry", "onExitCodes": {"operator": "NotIn", "values": [1]}}],
            ended(INFRA, SPOT),
            ("app",),
            None,
        ),
        # Without `container`: the success containers only, not every container.
        ([IN_2], ended(APP, stopped_task({"app": 1, "sidecar": 2})), ("app",), None),
        (
            [IN_2],
            ended(APP, stopped_task({"app": 1, "sidecar": 2})),
            ("app", "sidecar"),
            (0, "container sidecar exit code 2"),
        ),
        # No success containers known: every container ECS reported.
        (
            [IN_2],
            ended(APP, stopped_task({"app": 1, "sidecar": 2})),
            (),
            (0, "container sidecar exit code 2"),
        ),
        # With `container`: that one only, success container or not.
        (
            [
                {
                    "action": "FailRun",
                    "onExitCodes": {"container": "sidecar", "operator": "In", "values": [2]},
                }
            ],
            ended(APP, stopped_task({"app": 2, "sidecar": 1})),
            ("app",),
            None,
        ),
        (
            [
                {
                    "action": "FailRun",
                    "onExitCodes": {"container": "sidecar", "operator": "In", "values": [2]},
                }
            ],
            ended(APP, stopped_task({"app": 1, "sidecar": 2})),
            ("app",),
            (0, "container sidecar exit code 2"),
        ),
        # Any task of the attempt (count > 1).
        (
            [IN_2],
            ended(APP, stopped_task({"app": 0}), stopped_task({"app": 2}, short="t2")),
            ("app",),
            (0, "container app exit code 2"),
        ),
        # Stop codes.
        (
            [{"action": "Ignore", "onStopCodes": ["SpotInterruption", "TerminationNotice"]}],
            ended(INFRA, SPOT),
            ("app",),
            (0, "stopCode SpotInterruption"),
        ),
        (
            [{"action": "Ignore", "onStopCodes": ["SpotInterruption"]}],
            ended(INFRA, stopped_task({}, "TaskFailedToStart", "CannotPullContainerError: x")),
            ("app",),
            None,
        ),
        # The glob matches the whole stoppedReason, case-sensitively.
        (
            [{"action": "Retry", "onStoppedReason": "CannotPull*"}],
            ended(INFRA, stopped_task({}, "TaskFailedToStart", "CannotPullContainerError: x")),
            ("app",),
            (0, "stoppedReason 'CannotPullContainerError: x'"),
        ),
        (
            [{"action": "Retry", "onStoppedReason": "cannotpull*"}],
            ended(INFRA, stopped_task({}, "TaskFailedToStart", "CannotPullContainerError: x")),
            ("app",),
            None,
        ),
        (
            [{"action": "Retry", "onStoppedReason": "Pull*"}],
            ended(INFRA, stopped_task({}, "TaskFailedToStart", "CannotPullContainerError: x")),
            ("app",),
            None,
        ),
        # Every stated condition must match.
        (
            [
                {
                    "action": "FailRun",
                    "onExitCodes": {"operator": "In", "values": [137]},
                    "onStoppedReason": "OutOfMemory*",
                }
            ],
            ended(APP, stopped_task({"app": 137}, reason="Essential container in task exited")),
            ("app",),
            None,
        ),
        (
            [
                {
                    "action": "FailRun",
                    "onExitCodes": {"operator": "In", "values": [137]},
                    "onStoppedReason": "OutOfMemory*",
                }
            ],
            ended(APP, stopped_task({"app": 137}, reason="OutOfMemoryError: killed")),
            ("app",),
            (0, "container app exit code 137, stoppedReason 'OutOfMemoryError: killed'"),
        ),
        # First match wins.
        (
            [
                {"action": "Ignore", "onStopCodes": ["EssentialContainerExited"]},
                IN_2,
            ],
            ended(APP, stopped_task({"app": 2})),
            ("app",),
            (0, "stopCode EssentialContainerExited"),
        ),
        (
            [{"action": "Ignore", "onStopCodes": ["SpotInterruption"]}, IN_2],
            ended(APP, stopped_task({"app": 2})),
            ("app",),
            (1, "container app exit code 2"),
        ),
        # A vanished task (no stop code, no reason, no exit code) matches nothing.
        (
            [
                {"action": "Retry", "onStoppedReason": "*"},
                {"action": "Retry", "onExitCodes": {"operator": "NotIn", "values": [1]}},
            ],
            ended(INFRA, TaskRecord(task_arn("t1"), "RUNNING", missing=True)),
            ("app",),
            None,
        ),
    ],
)
def test_first_match(
    raw: list[Mapping[str, Any]],
    attempt: AttemptRecord,
    success: tuple[str, ...],
    want: tuple[int, str] | None,
) -> None:
    match = first_match(rules(*raw), attempt, success)
    assert (None if match is None else (match.index, match.matched)) == want


@pytest.mark.parametrize(
    "outcome",
    [
        AttemptOutcome.SUCCEEDED,
        AttemptOutcome.STOPPED,
        AttemptOutcome.REJECTED,
        AttemptOutcome.UNPLACEABLE,
    ],
)
def test_rules_judge_only_application_and_infrastructure_failures(
    outcome: AttemptOutcome,
) -> None:
    catch_all = rules(
        {"action": "FailRun", "onStoppedReason": "*"},
        {"action": "FailRun", "onExitCodes": {"operator": "NotIn", "values": [1]}},
    )
    attempt = ended(outcome, stopped_task({"app": 137}, "UserInitiated", "stopped"))
    assert first_match(catch_all, attempt, ("app",)) is None


def test_a_rule_without_conditions_never_matches() -> None:
    bare = (RetryRule(RetryAction.FAIL_RUN),)
    assert first_match(bare, ended(APP, stopped_task({"app": 2})), ("app",)) is None


def test_failure_counts_put_each_attempt_on_one_budget() -> None:
    policy = rules(
        {"action": "Ignore", "onStopCodes": ["SpotInterruption"]},
        {"action": "Retry", "onStopCodes": ["TaskFailedToStart"]},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [75]}},
    )
    attempts = [
        ended(INFRA, SPOT, number=1),  # ignored
        ended(INFRA, stopped_task({}, "TaskFailedToStart", "x"), number=2),  # Retry: backoffLimit
        ended(APP, stopped_task({"app": 75}), number=3),  # ignored
        ended(APP, stopped_task({"app": 1}), number=4),  # no rule: backoffLimit
        ended(INFRA, TaskRecord(task_arn("t1"), "RUNNING", missing=True), number=5),  # infra
        ended(AttemptOutcome.UNPLACEABLE, number=6),  # on no failure budget
    ]
    assert failure_counts(attempts, policy, ("app",)) == FailureCounts(2, 1, 2)
    assert failure_counts(attempts, (), ("app",)) == FailureCounts(2, 3, 0)


# -- the lifecycle ---------------------------------------------------------------

IGNORE_SPOT = {"action": "Ignore", "onStopCodes": ["SpotInterruption"]}
FAIL_ON_2 = {"action": "FailRun", "onExitCodes": {"operator": "In", "values": [2]}}


def policy(*raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"rules": list(raw)}


@pytest.mark.parametrize(
    ("backoff_limit", "raw", "endings", "want"),
    [
        # FailRun ends the run at the first match, whatever backoffLimit allows.
        (5, [FAIL_ON_2], ["exit 2"], (Phase.FAILED, Reason.FAILED_BY_RETRY_RULE)),
        (5, [FAIL_ON_2], ["exit 1", "exit 2"], (Phase.FAILED, Reason.FAILED_BY_RETRY_RULE)),
        # Other exits still count against backoffLimit.
        (1, [FAIL_ON_2], ["exit 1"], (Phase.PENDING, Reason.BACKOFF)),
        (1, [FAIL_ON_2], ["exit 1", "exit 3"], (Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED)),
        # Ignore: Spot interruptions beyond the infrastructure budget, with backoffLimit 0.
        (
            0,
            [IGNORE_SPOT],
            ["SpotInterruption"] * (MAX_INFRASTRUCTURE_RETRIES + 3),
            (Phase.PENDING, Reason.BACKOFF),
        ),
        (
            0,
            [IGNORE_SPOT],
            ["SpotInterruption"] * 5 + ["exit 0"],
            (Phase.SUCCEEDED, Reason.COMPLETED),
        ),
        # ... and not against backoffLimit either: the one allowed failure is still there.
        (1, [IGNORE_SPOT], ["SpotInterruption", "exit 1"], (Phase.PENDING, Reason.BACKOFF)),
        (
            1,
            [IGNORE_SPOT],
            ["SpotInterruption", "exit 1", "SpotInterruption", "exit 1"],
            (Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
        ),
        # Retry on an infrastructure stop counts against backoffLimit, not its own budget.
        (
            0,
            [{"action": "Retry", "onStopCodes": ["TaskFailedToStart"]}],
            ["TaskFailedToStart"],
            (Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED),
        ),
        (
            1,
            [{"action": "Retry", "onStopCodes": ["TaskFailedToStart"]}],
            ["TaskFailedToStart", "SpotInterruption", "SpotInterruption"],
            (Phase.PENDING, Reason.BACKOFF),
        ),
        # No rule matching: today's budgets.
        (
            0,
            [FAIL_ON_2],
            ["SpotInterruption"] * (MAX_INFRASTRUCTURE_RETRIES + 1),
            (Phase.FAILED, Reason.INFRASTRUCTURE_FAILURES),
        ),
        # First match wins: the Ignore before the FailRun takes exit 2.
        (
            0,
            [
                {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [2]}},
                FAIL_ON_2,
            ],
            ["exit 2", "exit 2"],
            (Phase.PENDING, Reason.BACKOFF),
        ),
    ],
    ids=[
        "failrun-first-attempt",
        "failrun-after-a-retry",
        "unmatched-exit-retried",
        "unmatched-exits-exceed-limit",
        "ignore-beyond-infra-budget",
        "ignore-then-success",
        "ignore-keeps-backoff-limit",
        "ignore-then-limit-by-exits",
        "retry-infra-counts-against-limit",
        "retry-infra-uses-limit-not-infra-budget",
        "unmatched-infra-budget",
        "first-match-wins",
    ],
)
def test_rules_decide_the_run(
    backoff_limit: int,
    raw: list[Mapping[str, Any]],
    endings: list[str],
    want: tuple[Phase, Reason],
) -> None:
    run = desired_run(backoffLimit=backoff_limit, retryPolicy=policy(*raw))
    actions, record, _ = through(run, endings)
    assert kinds(actions) == ["RecordRun"]
    assert (record.phase, record.reason) == want
    assert len(record.attempts) == len(endings)


def test_fail_run_names_the_rule_and_what_matched() -> None:
    run = desired_run(backoffLimit=5, retryPolicy=policy(IGNORE_SPOT, FAIL_ON_2))
    _, record, _ = through(run, ["SpotInterruption", "exit 2"])
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.FAILED_BY_RETRY_RULE)
    assert record.message.startswith(
        "retryPolicy.rules[1] (FailRun) matched container app exit code 2: "
        "container app: exit code 2"
    )
    assert record.not_before is None
    assert record.finished_at is not None


def test_an_ignored_attempt_still_waits_its_backoff_and_says_why() -> None:
    run = desired_run(
        retryPolicy=policy(IGNORE_SPOT), backoff={"initialSeconds": 10, "maxSeconds": 600}
    )
    _, record, ended_at = through(run, ["SpotInterruption"] * 3)
    assert (record.phase, record.reason) == (Phase.PENDING, Reason.BACKOFF)
    assert record.not_before == ended_at + timedelta(seconds=40)  # 3rd ignored: 10 * 2^2
    assert "retryPolicy.rules[0] (Ignore) matched stopCode SpotInterruption" in record.message


def test_ignore_has_a_hard_cap() -> None:
    run = desired_run(
        retryPolicy=policy(IGNORE_SPOT), backoff={"initialSeconds": 1, "maxSeconds": 1}
    )
    _, record, _ = through(run, ["SpotInterruption"] * (MAX_IGNORED_ATTEMPTS + 1), gap=1)
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED)
    assert f"{MAX_IGNORED_ATTEMPTS + 1} ignored attempts" in record.message


@pytest.mark.parametrize(
    "endings",
    [
        ["exit 1", "exit 1", "exit 1"],
        ["SpotInterruption", "exit 3", "vanished", "exit 0"],
        ["TaskFailedToStart"] * (MAX_INFRASTRUCTURE_RETRIES + 1),
        ["exit 2", "SpotInterruption", "exit 2"],
    ],
)
def test_rules_that_never_match_change_nothing(endings: Sequence[str]) -> None:
    """A run whose rules match none of its attempts ends exactly as one without rules."""
    never = policy({"action": "FailRun", "onExitCodes": {"operator": "In", "values": [99]}})
    _, plain, _ = through(desired_run(backoffLimit=2), endings)
    _, ruled, _ = through(desired_run(backoffLimit=2, retryPolicy=never), endings)
    assert (ruled.phase, ruled.reason, ruled.message, ruled.not_before) == (
        plain.phase,
        plain.reason,
        plain.message,
        plain.not_before,
    )
