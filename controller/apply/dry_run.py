"""The dry run: a plan's executor that writes nothing anywhere.

`diff` and `reconcile --dry-run` pass this executor instead of the real one
(`executor.Executor`), so what they print is the very plan a real pass would
apply, action for action, in the same `ApplyResult` shape.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.apply.executor import ApplyResult, Outcome
from controller.plan.actions import Plan, describe
from controller.state.ledger import PassSummary


class DryRunExecutor:
    """Prints what the plan would do; writes nothing anywhere."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo

    def apply(self, plan: Plan, summary: PassSummary | None = None) -> ApplyResult:
        """Describe each action instead of applying it (the summary is not recorded)."""
        del summary
        result = ApplyResult()
        for action in plan.actions:
            self._echo(f"would {describe(action)}")
            result.add(action, Outcome.APPLIED)
            result.counts[type(action).__name__] += 1
        return result
