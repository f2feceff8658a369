"""Fill in deploy/iam-policy.json's placeholders for one account: the policy to attach.

deploy/iam-policy.json is the single source of the controller's IAM policy.
Its placeholders are CloudFormation's `${Name}` syntax, so the stack
(deploy/cloudformation.yaml) substitutes them with `Fn::Sub`; this script
does the same for anyone who attaches the policy by other means:

    python scripts/render_iam_policy.py AWS::Partition=aws AWS::Region=eu-west-1 \
        AWS::AccountId=123456789012 LedgerTable=ejc-ledger SourceBucket=my-manifests \
        SourcePrefix=jobs/ ClusterArns=arn:aws:ecs:eu-west-1:123456789012:cluster/batch \
        PassRoleArns=arn:aws:iam::123456789012:role/task,arn:aws:iam::123456789012:role/exec \
        AutoScalingGroupNamePrefix=batch- Owner=prod LogGroupNamePrefix=/ecs/ \
        EventsQueueName=ejc-events NotifyTopicNamePrefix=ejc-

A value that is a whole placeholder of a list parameter (`LIST_PARAMETERS`,
given comma-separated) becomes a JSON list, as `!Ref` of a
CommaDelimitedList does in the stack; every other placeholder is replaced
inside its string. A placeholder left without a value is an error. With a Git source
(git-sync), pass `--git-source`: the two S3 statements are left out, as the
stack leaves them out.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

POLICY = Path(__file__).resolve().parents[1] / "deploy" / "iam-policy.json"
#: Parameters that hold lists (CommaDelimitedList in the stack).
LIST_PARAMETERS = frozenset({"ClusterArns", "PassRoleArns"})
#: Statements only some deployments need, and the stack's condition for them:
#: with a Git source (git-sync) the controller never reads S3.
CONDITIONAL_STATEMENTS = {"SourceList": "UseS3Source", "SourceRead": "UseS3Source"}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)\}")

Values = Mapping[str, str | list[str]]


def placeholders(document: Any) -> set[str]:
    """Every placeholder name the document uses."""
    return set(_PLACEHOLDER.findall(json.dumps(document)))


def render(document: Any, values: Values, *, s3_source: bool = True) -> Any:
    """The document with every placeholder replaced by its value.

    Without `s3_source` (a Git source) the S3 statements are left out, as
    the stack leaves them out.
    """
    if not s3_source:
        kept = [st for st in document["Statement"] if st.get("Sid") not in CONDITIONAL_STATEMENTS]
        document = {**document, "Statement": kept}
    missing = placeholders(document) - set(values)
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(missing))}")

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        if isinstance(node, str):
            whole = _PLACEHOLDER.fullmatch(node)
            if whole and whole.group(1) in LIST_PARAMETERS:
                return list(values[whole.group(1)])
            return _PLACEHOLDER.sub(lambda m: _scalar(values, m.group(1)), node)
        return node

    return fill(document)


def to_cloudformation(document: Any) -> Any:
    """The document as the stack writes it: `Fn::Sub` strings and `Ref`s of list parameters.

    deploy/cloudformation.yaml holds this inline (a role's policy cannot be
    read from a file at deploy time); tests/deploy/test_cloudformation.py
    asserts the two agree, so the JSON file stays the one source. A
    statement of `CONDITIONAL_STATEMENTS` is wrapped in `Fn::If` on its
    condition.
    """
    if isinstance(document, dict) and "Statement" in document:
        statements = []
        for statement in document["Statement"]:
            converted = to_cloudformation(statement)
            condition = CONDITIONAL_STATEMENTS.get(statement.get("Sid", ""))
            if condition is not None:
                converted = {"Fn::If": [condition, converted, {"Ref": "AWS::NoValue"}]}
            statements.append(converted)
        return {
            **to_cloudformation({k: v for k, v in document.items() if k != "Statement"}),
            "Statement": statements,
        }
    if isinstance(document, dict):
        return {key: to_cloudformation(value) for key, value in document.items()}
    if isinstance(document, list):
        return [to_cloudformation(value) for value in document]
    if isinstance(document, str):
        whole = _PLACEHOLDER.fullmatch(document)
        if whole and whole.group(1) in LIST_PARAMETERS:
            return {"Ref": whole.group(1)}
        if _PLACEHOLDER.search(document):
            return {"Fn::Sub": document}
    return document


def _scalar(values: Values, name: str) -> str:
    value = values[name]
    if isinstance(value, list):
        raise ValueError(f"{name} is a list: it can only stand alone as a value")
    return value


def load() -> Any:
    """deploy/iam-policy.json, parsed."""
    return json.loads(POLICY.read_text())


def main(argv: list[str]) -> int:
    """Print the rendered policy; exit 2 on a missing or malformed value."""
    values: dict[str, str | list[str]] = {}
    s3_source = "--git-source" not in argv
    for argument in (a for a in argv if a != "--git-source"):
        name, sep, value = argument.partition("=")
        if not sep:
            print(f"error: expected NAME=VALUE, got {argument!r}", file=sys.stderr)
            return 2
        values[name] = value.split(",") if name in LIST_PARAMETERS else value
    try:
        rendered = render(load(), values, s3_source=s3_source)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(json.dumps(rendered, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
