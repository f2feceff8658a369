"""`spec.notify` as written in YAML: loaded into the rule the planner reads, or refused."""

from __future__ import annotations

import json
from pathlib import Path

from controller.model.loader import LoadResult, ManifestLoader
from controller.model.notify import TOPIC_ARN_PATTERN, NotifyOn, rule_of_spec
from controller.schemas import validators

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ejc-team"


def load(notify: str, *, cron: bool = False) -> LoadResult:
    indent = "    " if cron else "  "
    body = f"{indent}cluster: batch\n{indent}taskDefinitionRef: etl\n" + "".join(
        f"{indent}{line}\n" for line in notify.splitlines()
    )
    if cron:
        text = (
            "apiVersion: ecs-job-controller/v1\nkind: CronJob\nmetadata: {name: etl}\n"
            "spec:\n  schedule: '@daily'\n  jobTemplate:\n" + body
        )
    else:
        text = "apiVersion: ecs-job-controller/v1\nkind: JobRun\nmetadata: {name: etl}\nspec:\n"
        text += body
    return ManifestLoader(validators()).load({"m.yaml": text.encode()})


def test_an_unquoted_on_key_is_the_field_on_not_yaml_true() -> None:
    result = load(f"notify:\n  snsTopicArn: {TOPIC}\n  on: [Succeeded, Missed]")
    assert result.errors == ()
    rule = rule_of_spec("etl", result.desired.job_runs["etl"].spec.raw)
    assert rule is not None
    assert rule.on == frozenset({NotifyOn.SUCCEEDED, NotifyOn.MISSED})


def test_a_cron_jobs_notify_lives_in_its_job_template() -> None:
    result = load(f"notify: {{snsTopicArn: '{TOPIC}', on: [Missed]}}", cron=True)
    assert result.errors == ()
    rule = rule_of_spec("etl", result.desired.cron_jobs["etl"].job_template.raw)
    assert rule is not None
    assert rule.on == frozenset({NotifyOn.MISSED})


def test_unknown_outcomes_bad_arns_and_a_missing_topic_are_refused() -> None:
    for notify in (
        f"notify: {{snsTopicArn: '{TOPIC}', on: [Stopped]}}",
        "notify: {snsTopicArn: 'arn:aws:sqs:eu-west-1:123456789012:q'}",
        "notify: {on: [Failed]}",
        f"notify: {{snsTopicArn: '{TOPIC}', on: []}}",
    ):
        result = load(notify)
        assert result.errors, notify
        assert "notify" in str(result.errors[0]), result.errors


def test_the_schema_and_the_cli_check_topic_arns_alike() -> None:
    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schema" / "jobrun.schema.json").read_text())
    found = json.dumps(schema)
    assert json.dumps(TOPIC_ARN_PATTERN) in found
