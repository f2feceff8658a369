"""Every example manifest validates and says how the demo must see it end."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.model.loader import ManifestLoader
from controller.schemas import validators
from controller.sources.directory import DirectorySource

EXAMPLES = Path(__file__).resolve().parents[1] / "manifests" / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_at_least_four_examples() -> None:
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_validates_and_states_its_expected_outcome(path: Path) -> None:
    result = ManifestLoader(validators()).load({str(path): path.read_bytes()})
    assert result.errors == ()
    [manifest] = result.desired.manifests()
    assert "demo.ecs-job-controller/expect" in manifest.metadata.annotations


def test_the_examples_cover_ec2_fargate_retries_deadline_retry_rules_and_a_time_zone() -> None:
    snapshot = DirectorySource(EXAMPLES).snapshot()
    desired = ManifestLoader(validators()).load(snapshot.files).desired
    specs = [j.spec for j in desired.job_runs.values()]
    assert any(
        s.run_task.get("launchType") == "EC2" and s.capacity.auto_scaling_group for s in specs
    )
    assert any(s.run_task.get("launchType") == "FARGATE" for s in specs)
    assert any(s.backoff_limit > 0 and s.active_deadline_seconds for s in specs)
    assert any({r.action for r in s.retry_rules} >= {"Ignore", "FailRun"} for s in specs)
    assert any(c.time_zone != "UTC" for c in desired.cron_jobs.values())
