"""Validation of indexed runs' fields (issue 17): each mistake at its PATH:LINE.

completions, parallelism and maxFailedIndexes go together, within bounds,
and JOB_COMPLETION_INDEX is the controller's to set.
"""

from __future__ import annotations

import pytest

from controller.model.loader import ManifestLoader
from controller.schemas import validators
from tests.model.test_loader import job, messages


def test_an_indexed_job_run_builds_with_its_fields() -> None:
    text = job("shards", "  completions: 12\n  parallelism: 3\n  maxFailedIndexes: 2\n")
    result = ManifestLoader(validators()).load({"s.yaml": text.encode()})
    assert result.errors == ()
    spec = result.desired.job_runs["shards"].spec
    assert (spec.completions, spec.parallelism, spec.max_failed_indexes) == (12, 3, 2)
    assert spec.indexed
    assert spec.effective_parallelism == 3


def test_a_plain_job_run_is_not_indexed() -> None:
    result = ManifestLoader(validators()).load({"p.yaml": job("plain").encode()})
    spec = result.desired.job_runs["plain"].spec
    assert not spec.indexed
    assert spec.completions is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  parallelism: 3\n", "s.yaml:6: /spec/parallelism: parallelism needs completions"),
        (
            "  maxFailedIndexes: 1\n",
            "s.yaml:6: /spec/maxFailedIndexes: maxFailedIndexes needs completions",
        ),
        (
            "  completions: 3\n  maxFailedIndexes: 3\n",
            "s.yaml:7: /spec/maxFailedIndexes: maxFailedIndexes 3 must be below completions 3",
        ),
        ("  completions: 0\n", "s.yaml:6: /spec/completions: "),
        ("  completions: 10001\n", "s.yaml:6: /spec/completions: "),
        ("  completions: 2\n  parallelism: 1001\n", "s.yaml:7: /spec/parallelism: "),
        (
            "  completions: 2\n  overrides:\n    containerOverrides:\n"
            "      - name: app\n        environment: [{name: JOB_COMPLETION_INDEX, value: '1'}]\n",
            "s.yaml:10: /spec/overrides/containerOverrides/0/environment/0/name:"
            " JOB_COMPLETION_INDEX is set by the controller",
        ),
    ],
)
def test_indexed_fields_are_checked(extra: str, expected: str) -> None:
    errors = messages({"s.yaml": job("shards", extra)})
    assert any(e.startswith(expected) for e in errors), errors
