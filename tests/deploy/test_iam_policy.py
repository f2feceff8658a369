"""deploy/iam-policy.json grants exactly what the gateways call: no more, no less.

The operations come from the code (`tests/deploy/operations.py` parses
controller/aws/), so a new boto3 call without a policy change fails here,
and so does a policy action that no code uses any more.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.render_iam_policy import LIST_PARAMETERS, load, placeholders, render
from tests.deploy.operations import GATEWAYS, product_operations, required_actions


def granted(document: dict[str, object]) -> dict[str, list[str]]:
    """IAM action -> the Sids of the statements that allow it."""
    found: dict[str, list[str]] = {}
    for statement in document["Statement"]:  # type: ignore[attr-defined]
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            found.setdefault(action, []).append(statement["Sid"])
    return found


def test_the_policy_grants_exactly_the_actions_the_gateways_call() -> None:
    needed = required_actions(product_operations())
    allowed = granted(load())

    missing = {a: [o.where for o in ops] for a, ops in needed.items() if a not in allowed}
    unused = sorted(set(allowed) - set(needed))
    assert not missing, f"called by the code but not in deploy/iam-policy.json: {missing}"
    assert not unused, f"in deploy/iam-policy.json but called by no code: {unused}"


def test_each_action_is_allowed_by_one_statement_and_no_wildcards() -> None:
    allowed = granted(load())
    assert {a: s for a, s in allowed.items() if len(s) > 1} == {}
    assert [a for a in allowed if "*" in a] == []
    sids = [s["Sid"] for s in load()["Statement"]]
    assert len(sids) == len(set(sids))


def test_the_derivation_finds_a_new_call(tmp_path: Path) -> None:
    copy = tmp_path / "aws"
    shutil.copytree(GATEWAYS, copy)
    ecs = copy / "ecs.py"
    ecs.write_text(
        ecs.read_text() + "\n\nclass Extra(EcsGateway):\n"
        "    def clusters(self) -> object:\n"
        "        pages = self._ecs.get_paginator('list_clusters')\n"
        "        return self._ecs.describe_clusters(clusters=['x']), pages\n"
    )
    names = {(o.service, o.name) for o in product_operations(copy)}
    assert {("ecs", "ListClusters"), ("ecs", "DescribeClusters")} <= names
    assert {(o.service, o.name) for o in product_operations()} < names


def test_a_method_that_is_no_operation_fails_the_derivation(tmp_path: Path) -> None:
    copy = tmp_path / "aws"
    shutil.copytree(GATEWAYS, copy)
    sqs = copy / "sqs.py"
    sqs.write_text(
        sqs.read_text() + "\n\ndef odd(g: SqsGateway) -> None:\n    g._sqs.recieve_message()\n"
    )
    with pytest.raises(AssertionError, match="sqs has no operation 'recieve_message'"):
        product_operations(copy)


def values() -> dict[str, str | list[str]]:
    return {
        "AWS::Partition": "aws",
        "AWS::Region": "eu-west-1",
        "AWS::AccountId": "123456789012",
        "LedgerTable": "ledger",
        "SourceBucket": "manifests",
        "SourcePrefix": "jobs/",
        "ClusterArns": ["arn:aws:ecs:eu-west-1:123456789012:cluster/batch"],
        "PassRoleArns": ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"],
        "AutoScalingGroupNamePrefix": "batch-",
        "Owner": "prod",
        "LogGroupNamePrefix": "/ecs/",
        "EventsQueueName": "events",
        "NotifyTopicNamePrefix": "ejc-",
    }


def test_rendering_fills_every_placeholder_and_expands_lists() -> None:
    rendered = render(load(), values())
    assert placeholders(rendered) == set()
    by_sid = {s["Sid"]: s for s in rendered["Statement"]}
    assert by_sid["PassTaskRoles"]["Resource"] == values()["PassRoleArns"]
    assert by_sid["RunAndStopTasks"]["Condition"]["ArnEquals"]["ecs:cluster"] == [
        "arn:aws:ecs:eu-west-1:123456789012:cluster/batch"
    ]
    assert by_sid["SourceRead"]["Resource"] == "arn:aws:s3:::manifests/jobs/*"
    assert placeholders(load()) >= LIST_PARAMETERS


def test_rendering_without_a_value_names_it() -> None:
    partial = values()
    del partial["LedgerTable"]
    with pytest.raises(KeyError, match="LedgerTable"):
        render(load(), partial)
