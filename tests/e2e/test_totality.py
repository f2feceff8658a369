"""One manifest's numbers, or one run the planner fails on, never blocks the others.

Through the real CLI: a manifest with `activeDeadlineSeconds: 1000000000000`
(or such a backoff, maxPendingSeconds or startingDeadlineSeconds) beside a
normal one used to crash every `reconcile --once` with `OverflowError: date
value out of range`, and `controller run` repeated it forever while nothing
else started. Whether the schema accepts such a number or bounds it, the
normal manifest runs; a run the planner still fails on is named in one
`error:` line and fails the pass (exit 1), and every other run goes on.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest

from tests.e2e.conftest import World, job
from tests.e2e.test_cron import at_minute, cron

pytestmark = pytest.mark.e2e

HUGE = 10**12  # seconds: past the year 9999 from any start


def _huge_cron() -> str:
    text = cron("huge", duration=5, extra=f"  startingDeadlineSeconds: {HUGE}\n")
    return text.replace(
        "    cluster: batch\n", f"    cluster: batch\n    activeDeadlineSeconds: {HUGE}\n"
    )


CASES = {
    "activeDeadlineSeconds": (
        job("huge", extra=f"  activeDeadlineSeconds: {HUGE}\n"),
        ("Succeeded", "Completed"),
    ),
    "backoff": (
        job(
            "huge",
            exit_code="1",
            extra=f"  backoffLimit: 2\n  backoff: {{initialSeconds: {HUGE}, maxSeconds: {HUGE}}}\n",
        ),
        ("Pending", "Backoff"),  # the retry is due in the year 9000
    ),
    "maxPendingSeconds": (
        # Larger than any instance of the cluster: never placed, waits for room.
        job("huge", extra=f"  capacity: {{maxPendingSeconds: {HUGE}}}\n").replace(
            "cpu: '256'", "cpu: '4096'"
        ),
        ("Pending", "Unschedulable"),
    ),
    "startingDeadlineSeconds": (_huge_cron(), ("Succeeded", "Completed")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_huge_durations_never_block_the_other_manifests(world: World, case: str) -> None:
    text, want = CASES[case]
    world.write("huge.yaml", text)
    world.write("normal.yaml", job("normal", duration=30))
    accepted = world.cli("validate", str(world.manifests / "huge.yaml")).returncode == 0
    at_minute(world, 30)
    passes = []
    for _ in range(3):
        passes.append(world.reconcile())
        at_minute(world, 2)
    for done in passes:
        assert "Traceback" not in done.stderr, done.stderr
        # Bounded by the schema: the manifest is invalid (exit 1), said in one line.
        assert done.returncode == (0 if accepted else 1), done.stderr
        if not accepted:
            assert "huge.yaml:" in done.stderr
    assert (world.run("normal")["phase"], world.run("normal")["reason"]) == (
        "Succeeded",
        "Completed",
    )
    if accepted:
        huge = [r for r in world.status()["runs"] if r["name"] == "huge"]
        assert huge, "the huge manifest was accepted, so it runs too"
        assert (huge[0]["phase"], huge[0]["reason"]) == want


def test_a_run_the_planner_fails_on_fails_the_pass_and_nothing_else(world: World) -> None:
    world.write("bad.yaml", job("bad", duration=600))
    world.write("normal.yaml", job("normal", duration=30))
    assert world.reconcile().returncode == 0
    before = world.run("bad")
    # A ledger row the planner cannot read (written by another version, or by hand).
    with closing(sqlite3.connect(world.state.removeprefix("sqlite:"))) as db, db:
        db.execute(
            "UPDATE runs SET frozen_spec = json_set(frozen_spec, '$.activeDeadlineSeconds', 'soon')"
            " WHERE name = 'bad'"
        )
    world.write("late.yaml", job("late", duration=30))
    world.clock.advance(60)
    done = world.reconcile()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("error: bad/1:")]
    assert "cannot plan" in line
    assert world.run("normal")["phase"] == "Succeeded"
    assert world.run("late")["attempts"]  # a manifest added meanwhile starts
    assert world.run("bad") == before  # left as it was
    document = json.loads(world.cli("reconcile", "--once", "-o", "json").stdout)
    assert [e for e in document["errors"] if e.startswith("bad/1: cannot plan: ")]
    # diff reports what it cannot plan as an error (2), not as "changes pending" (1).
    diff = world.cli("diff")
    assert diff.returncode == 2, diff.stderr
    assert "bad/1: cannot plan" in diff.stderr
