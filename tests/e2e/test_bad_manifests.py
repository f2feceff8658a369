"""One bad manifest never blocks another, through `reconcile --once` on the sandbox.

A manifest the schema should have refused must not reach the planner: before
the bounds, a huge duration crashed every pass (OverflowError) and so held
back every valid manifest of the source.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "extra",
    [
        "  activeDeadlineSeconds: 1000000000000\n",
        "  backoff: {initialSeconds: 1000000000000, maxSeconds: 1000000000000}\n",
        "  capacity: {maxPendingSeconds: 1000000000000}\n",
    ],
)
def test_a_huge_duration_is_reported_and_the_other_runs_start(world: World, extra: str) -> None:
    world.write("huge.yaml", job("huge", duration=1, exit_code="3", extra=extra))
    world.write("good.yaml", job("good", duration=1))
    for _ in range(3):  # start, fail, back off: each pass must get through
        done = world.reconcile()
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1, done.stderr
        assert "huge.yaml:" in done.stderr
        assert "is greater than the maximum of 31536000" in done.stderr
        world.clock.advance(5)
    assert world.run("good")["phase"] == "Succeeded"
    assert [r["name"] for r in world.status()["runs"]] == ["good"]


def test_a_symlink_loop_in_the_source_is_reported_and_every_run_starts(world: World) -> None:
    world.write("a.yaml", job("a", duration=1))
    world.write("b.yaml", job("b", duration=1))
    (world.manifests / "loop").symlink_to(".")
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    assert f"{world.manifests}/loop: symlink loop, not followed" in done.stderr.splitlines()
    assert "duplicate" not in done.stderr
    assert sorted(r["name"] for r in world.status()["runs"]) == ["a", "b"]


def test_an_almost_ours_api_version_is_a_warning_of_the_pass(world: World) -> None:
    path = world.write(
        "typo.yaml", job("typo").replace("ecs-job-controller/v1", "ecs-job-controler/v1")
    )
    world.write("good.yaml", job("good", duration=1))
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    assert (
        f"{path}:1: apiVersion 'ecs-job-controler/v1' is not ecs-job-controller/v1: "
        "document ignored"
    ) in done.stderr.splitlines()
    assert [r["name"] for r in world.status()["runs"]] == ["good"]
