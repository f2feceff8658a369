"""`controller demo` runs the examples on the sandbox and checks each file's stated outcome."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def demo(examples: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "demo",
            "--simulated-time",
            "--examples",
            str(examples),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def test_every_example_ends_as_its_file_says() -> None:
    done = demo(ROOT / "manifests" / "examples")
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(verdicts) == len(list((ROOT / "manifests" / "examples").glob("*.yaml")))
    assert all(line.startswith("ok") for line in verdicts)
    assert "sync-crm-contacts: expected Succeeded after 2 attempt(s)" in done.stdout


def test_a_wrong_expectation_fails_the_demo(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "manifests" / "examples", examples)
    path = examples / "backfill-orders.yaml"
    path.write_text(path.read_text().replace("expect: Succeeded", "expect: Failed"))
    done = demo(examples)
    assert done.returncode == 1
    assert "FAIL backfill-orders-2026-11: expected Failed, got Succeeded" in done.stdout
