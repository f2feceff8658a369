"""`controller oneshot` under CONTROLLER_TEST_NOW: it waits on ECS, not on its clock.

The CLI's clock stands still (the hook); the test moves the sandbox's fake
clock, whose agent then ends the task. A oneshot that waited for its own
clock to pass the task's end would never finish; one that waits on what ECS
shows ends as soon as the task has stopped. The second run of the same
manifest reuses the revision the first one registered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.child import Child
from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def test_oneshot_ends_when_the_sandbox_ends_the_task_and_reuses_the_revision(
    world: World, children: list[Child]
) -> None:
    assert world.clock is not None
    world.write("fixed.yaml", job("fixed", duration=30))
    for number, run_id in enumerate(("first", "second"), start=1):
        argv = world.argv("oneshot", "fixed", "--run-id", run_id, "--poll-seconds", "0.2")
        child = Child(argv, world.env())
        children.append(child)
        child.wait_line(" Running (Running): ")

        world.clock.advance(31)  # the sandbox's agent ends the task at its next request

        assert child.wait() == 0, child.output()
        assert world.runs()[f"fixed/{run_id}"]["phase"] == "Succeeded"
        assert world.sandbox.calls[("ecs", "RunTask")] == number
    # The second oneshot found the revision by its spec hash: registered once.
    assert world.sandbox.calls[("ecs", "RegisterTaskDefinition")] == 1
