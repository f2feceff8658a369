"""`spec.retryPolicy.rules` load into the model, and rules that could never match are refused.

Each refusal is `PATH:LINE: /json/pointer: message`, at the line of the
field it is about, for a JobRun spec and a CronJob jobTemplate alike.
"""

from __future__ import annotations

import pytest

from controller.model.loader import ManifestLoader
from controller.model.manifest import (
    ECS_STOP_CODES,
    ExitCodeCondition,
    ExitCodeOperator,
    RetryAction,
    RetryRule,
)
from controller.schemas import validators
from tests.model.test_loader import job, messages


def rules(*lines: str) -> str:
    """spec_extra for `job`: a retryPolicy whose rules are `lines` (indented under rules:)."""
    return "  retryPolicy:\n    rules:\n" + "".join(f"      {line}\n" for line in lines)


def test_rules_are_built_in_order_with_their_conditions() -> None:
    text = job(
        "r",
        rules(
            "- action: Ignore",
            "  onStopCodes: [SpotInterruption, TerminationNotice]",
            "- action: FailRun",
            "  onExitCodes: {container: app, operator: In, values: [2, 64]}",
            "- action: Retry",
            "  onExitCodes: {operator: NotIn, values: [1]}",
            "  onStoppedReason: 'OutOfMemory*'",
        ),
    )
    result = ManifestLoader(validators()).load({"r.yaml": text.encode()})
    assert result.errors == ()
    assert result.desired.job_runs["r"].spec.retry_rules == (
        RetryRule(
            RetryAction.IGNORE, on_stop_codes=frozenset({"SpotInterruption", "TerminationNotice"})
        ),
        RetryRule(
            RetryAction.FAIL_RUN,
            on_exit_codes=ExitCodeCondition(ExitCodeOperator.IN, frozenset({2, 64}), "app"),
        ),
        RetryRule(
            RetryAction.RETRY,
            on_exit_codes=ExitCodeCondition(ExitCodeOperator.NOT_IN, frozenset({1})),
            on_stopped_reason="OutOfMemory*",
        ),
    )


def test_without_a_retry_policy_there_are_no_rules() -> None:
    result = ManifestLoader(validators()).load({"r.yaml": job("r").encode()})
    assert result.desired.job_runs["r"].spec.retry_rules == ()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["- action: Retry"],
            "r.yaml:8: /spec/retryPolicy/rules/0: a rule needs a condition: "
            "onExitCodes, onStopCodes or onStoppedReason",
        ),
        (
            ["- action: FailRun", "  onExitCodes: {operator: In, values: []}"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onExitCodes/values: [] should be non-empty",
        ),
        (
            ["- action: FailRun", "  onExitCodes: {operator: In, values: [2, 0]}"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onExitCodes/values/1: operator In cannot list 0: "
            "a container that exited 0 is never checked",
        ),
        (
            ["- action: FailRun", "  onExitCodes: {container: main, operator: In, values: [2]}"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onExitCodes/container: no container named 'main'",
        ),
        (
            ["- action: Ignore", "  onStopCodes: [SpotInterupption]"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onStopCodes/0: 'SpotInterupption' is not one of",
        ),
        (
            ["- action: Ignore", "  onStopCodes: []"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onStopCodes: [] should be non-empty",
        ),
        (
            ["- action: Ignore", "  onStoppedReason: ''"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onStoppedReason: '' should be non-empty",
        ),
        (
            ["- action: Skip", "  onStopCodes: [SpotInterruption]"],
            "r.yaml:8: /spec/retryPolicy/rules/0/action: 'Skip' is not one of",
        ),
        (
            ["- action: Ignore", "  onStopCode: [SpotInterruption]"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onStopCode: unknown field(s) 'onStopCode' "
            "(not allowed here; did you mean 'onStopCodes'?)",
        ),
        (
            ["- action: Ignore", "  onExitCodes: {operator: In, values: [3], containr: app}"],
            "r.yaml:9: /spec/retryPolicy/rules/0/onExitCodes/containr: unknown field(s)",
        ),
    ],
    ids=[
        "no-condition",
        "empty-values",
        "in-lists-0",
        "unknown-container",
        "unknown-stop-code",
        "empty-stop-codes",
        "empty-glob",
        "unknown-action",
        "unknown-rule-key",
        "unknown-exit-codes-key",
    ],
)
def test_rules_that_can_never_match_are_refused_at_their_line(
    lines: list[str], expected: str
) -> None:
    errs = messages({"r.yaml": job("r", rules(*lines))})
    assert len(errs) == 1, errs
    assert errs[0].startswith(expected), errs


def test_each_bad_rule_is_reported_and_a_shadowed_rule_is_allowed() -> None:
    errs = messages(
        {
            "r.yaml": job(
                "r",
                rules(
                    "- action: Retry",
                    "  onExitCodes: {operator: NotIn, values: [0]}",  # NotIn may list 0
                    "- action: FailRun",  # shadowed by the rule above: allowed
                    "  onExitCodes: {operator: In, values: [2]}",
                    "- action: Ignore",
                    "- action: FailRun",
                    "  onExitCodes: {operator: In, values: [0]}",
                ),
            )
        }
    )
    assert [e.split(": ", 2)[:2] for e in errs] == [
        ["r.yaml:12", "/spec/retryPolicy/rules/2"],
        ["r.yaml:14", "/spec/retryPolicy/rules/3/onExitCodes/values/0"],
    ]


def test_a_container_is_not_checked_against_a_task_definition_ref() -> None:
    text = job(
        "r",
        rules("- action: FailRun", "  onExitCodes: {container: main, operator: In, values: [2]}"),
    )
    text = text.split("  taskDefinition:\n")[0] + "  taskDefinitionRef: shared-job:3\n"
    assert messages({"r.yaml": text}) == []


def test_a_cron_job_template_rule_is_judged_at_its_own_pointer() -> None:
    text = (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        "metadata: {name: c}\n"
        "spec:\n"
        "  schedule: '@daily'\n"
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    retryPolicy:\n"
        "      rules:\n"
        "        - action: FailRun\n"
        "          onExitCodes: {operator: In, values: [0, 2]}\n"
        "    taskDefinition:\n"
        "      family: c\n"
        "      containerDefinitions:\n"
        "        - {name: app, image: busybox, memory: 128}\n"
    )
    assert messages({"c.yaml": text}) == [
        "c.yaml:11: /spec/jobTemplate/retryPolicy/rules/0/onExitCodes/values/0: "
        "operator In cannot list 0: a container that exited 0 is never checked"
    ]


def test_every_ecs_stop_code_is_accepted() -> None:
    codes = ", ".join(ECS_STOP_CODES)
    assert (
        messages({"r.yaml": job("r", rules("- action: Retry", f"  onStopCodes: [{codes}]"))}) == []
    )
