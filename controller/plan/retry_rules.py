"""`spec.retryPolicy.rules`: which rule, if any, decides what a failed attempt means.

Kubernetes' podFailurePolicy and AWS Batch's retryStrategy.evaluateOnExit let
how a task failed decide whether it is retried: exit 2 (bad arguments) will
fail every time, a Spot interruption says nothing about the job. This
module is the matching, and only that: a pure function of an attempt's
recorded tasks, the frozen spec's rules and the run's success containers,
so `lifecycle` recomputes every decision each pass from the ledger (no
extra state, no schema change) and a replayed pass decides the same.

Rules apply to attempts that ended as an application or infrastructure
failure, never to a success, a controller stop, a rejected RunTask or a
capacity shortfall (those have their own handling). The rules are read in
order and the first whose conditions all match decides; a rule states at
least one condition (validation refuses one without):

- `onExitCodes` (podFailurePolicy's): the exit codes of the success
  containers (or only `container`), each task of the attempt, leaving out
  containers that exited 0 or have no exit code. `In` matches when one of
  those codes is in `values`; `NotIn` when one is not.
- `onStopCodes`: one of the attempt's tasks has one of these ECS stopCodes.
- `onStoppedReason`: an fnmatch glob (case-sensitive) that one task's
  stoppedReason matches whole.

With no rule matching, the attempt counts as it always did (an application
failure against backoffLimit, an infrastructure failure against its own
budget): no rules means exactly the behaviour without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from controller.model.manifest import ExitCodeCondition, ExitCodeOperator, RetryAction, RetryRule
from controller.model.run import AttemptOutcome, AttemptRecord, TaskRecord

#: The outcomes rules are evaluated for; every other outcome ignores them.
RULED_OUTCOMES = frozenset(
    {AttemptOutcome.APPLICATION_FAILURE, AttemptOutcome.INFRASTRUCTURE_FAILURE}
)


@dataclass(frozen=True)
class RuleMatch:
    """The rule that decided a failed attempt: its index, its action, and what matched."""

    index: int
    action: RetryAction
    #: what matched, e.g. "container app exit code 2, stopCode EssentialContainerExited"
    matched: str

    def describe(self) -> str:
        """`retryPolicy.rules[I] (ACTION) matched WHAT`, for run messages."""
        return f"retryPolicy.rules[{self.index}] ({self.action}) matched {self.matched}"


@dataclass(frozen=True)
class FailureCounts:
    """A run's failed attempts, by the budget each one counts against."""

    #: against backoffLimit: unmatched application failures and every Retry match
    backoff_limit: int = 0
    #: against the infrastructure budget: unmatched infrastructure failures
    infrastructure: int = 0
    #: matched by an Ignore rule: on no budget
    ignored: int = 0


def first_match(
    rules: Sequence[RetryRule], attempt: AttemptRecord, success_containers: Sequence[str]
) -> RuleMatch | None:
    """The first rule matching a failed attempt, or None (no rule, or not a failure rules judge)."""
    if attempt.outcome not in RULED_OUTCOMES:
        return None
    for index, rule in enumerate(rules):
        matched = rule_matches(rule, attempt.tasks, success_containers)
        if matched is not None:
            return RuleMatch(index, rule.action, matched)
    return None


def rule_matches(
    rule: RetryRule, tasks: Sequence[TaskRecord], success_containers: Sequence[str]
) -> str | None:
    """What made every condition of `rule` match the tasks; None if one is unmet or none stated."""
    found: list[str] = []
    if rule.on_exit_codes is not None:
        code = _exit_code_match(rule.on_exit_codes, tasks, success_containers)
        if code is None:
            return None
        found.append(code)
    if rule.on_stop_codes:
        stop = next((t.stop_code for t in tasks if t.stop_code in rule.on_stop_codes), None)
        if stop is None:
            return None
        found.append(f"stopCode {stop}")
    if rule.on_stopped_reason is not None:
        glob = rule.on_stopped_reason
        reason = next(
            (
                t.stopped_reason
                for t in tasks
                if t.stopped_reason is not None and fnmatchcase(t.stopped_reason, glob)
            ),
            None,
        )
        if reason is None:
            return None
        found.append(f"stoppedReason {reason!r}")
    return ", ".join(found) if found else None


def _exit_code_match(
    condition: ExitCodeCondition, tasks: Sequence[TaskRecord], success_containers: Sequence[str]
) -> str | None:
    """`container NAME exit code N` for the first considered code that matches, else None."""
    wanted_in = condition.operator is ExitCodeOperator.IN
    for task in tasks:
        if condition.container is not None:
            names: Sequence[str] = (condition.container,)
        else:
            # As `outcome.attempt_outcome` judges success: the success
            # containers, else every container ECS reported.
            names = success_containers or tuple(sorted(task.exit_codes))
        for name in names:
            code = task.exit_codes.get(name)
            if code is None or code == 0:
                continue  # podFailurePolicy: a 0 (or no) exit code is never checked
            if (code in condition.values) == wanted_in:
                return f"container {name} exit code {code}"
    return None


def failure_counts(
    attempts: Sequence[AttemptRecord], rules: Sequence[RetryRule], success_containers: Sequence[str]
) -> FailureCounts:
    """How many of `attempts` count against each budget, each decided by `rules` as it ended."""
    backoff_limit = infrastructure = ignored = 0
    for attempt in attempts:
        if attempt.outcome not in RULED_OUTCOMES:
            continue
        match = first_match(rules, attempt, success_containers)
        if match is None:
            if attempt.outcome is AttemptOutcome.APPLICATION_FAILURE:
                backoff_limit += 1
            else:
                infrastructure += 1
        elif match.action is RetryAction.IGNORE:
            ignored += 1
        else:
            # Retry; a FailRun match ends the run, so only the last attempt has one.
            backoff_limit += 1
    return FailureCounts(backoff_limit, infrastructure, ignored)
