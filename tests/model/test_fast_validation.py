"""The fast validation path (jsonschema-rs) never accepts what `jsonschema` rejects.

`SchemaValidator` trusts the fast check's "valid" and asks `jsonschema` only
otherwise, so correctness rests on one property: fast-valid implies
precise-valid. These tests check it on generated documents — every example
manifest and the benchmark's generated ones, mutated at random places with
values of every JSON type (and strings with a final newline, big integers,
YAML's non-JSON values) — and check that the fallback reports `jsonschema`'s
errors whenever the fast check says no or cannot judge.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.load_manifests import manifest as generated_manifest
from controller.model.loader import parse_file
from controller.model.manifest import Kind
from controller.model.validate import SchemaValidator
from controller.schemas import validators

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
    docs.extend(yaml.safe_load(generated_manifest(i)) for i in range(6))
    return docs


DOCUMENTS = _documents()

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["", "app", "app\n", "EC2", "FARGATE", "awsvpc", "256", "0.5 vCPU", "aws:x", "a" * 300]
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["name", "image", "x", "cpu"]), inner, max_size=3),
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a document (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found.extend(_paths(child, (*prefix, index)))
    return found


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "nmae", "cpu", "runId"]))] = draw(_values)
        else:
            parent[path[-1]] = draw(_values)
    return doc


def _kind(doc: dict[str, Any]) -> Kind:
    return Kind.CRON_JOB if doc.get("kind") == "CronJob" else Kind.JOB_RUN


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_fast_valid_implies_precise_valid(doc: dict[str, Any]) -> None:
    checker = validators()[_kind(doc)]
    assert checker.fast is not None
    try:
        fast_valid = checker.fast.is_valid(doc)
    except ValueError:
        return  # the fast check cannot judge it: the precise one does (tested below)
    if fast_valid:
        assert [e.message for e in checker.precise.iter_errors(doc)] == []


def test_every_unmutated_document_takes_the_fast_path() -> None:
    for doc in DOCUMENTS:
        checker = validators()[_kind(doc)]
        assert checker.fast is not None
        assert checker.fast.is_valid(doc), doc["metadata"]


def test_the_fallback_reports_the_precise_errors() -> None:
    doc = copy.deepcopy(DOCUMENTS[0])
    doc["spec"]["unknownField"] = 1
    checker = validators()[_kind(doc)]
    errors = checker.errors(doc)
    assert errors
    assert [e.message for e in errors] == sorted(
        e.message for e in checker.precise.iter_errors(doc)
    )


def test_values_json_cannot_hold_are_judged_by_the_precise_validator() -> None:
    # YAML reads an unquoted date as a date, which the fast check refuses to take.
    doc = copy.deepcopy(DOCUMENTS[0])
    doc["metadata"]["name"] = date(2026, 1, 1)
    checker = validators()[_kind(doc)]
    assert checker.fast is not None
    errors = checker.errors(doc)
    assert any("is not of type 'string'" in e.message for e in errors)


def test_without_a_fast_check_the_loader_reports_the_same() -> None:
    slow = {kind: SchemaValidator(v.precise) for kind, v in validators().items()}
    text = generated_manifest(1).replace("backoffLimit: 2", "backoffLimit: many")
    text += "---\n" + generated_manifest(2)
    fast_result = parse_file("f.yaml", text.encode(), validators())
    slow_result = parse_file("f.yaml", text.encode(), slow)
    assert fast_result == slow_result
    assert len(fast_result.manifests) == 1
    assert len(fast_result.errors) == 1
