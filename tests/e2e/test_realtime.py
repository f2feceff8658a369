"""`controller run` in real time: the loop sees finishes, failures and new room when they happen.

Issue 13's reactions, end to end: the real long-running CLI as a subprocess
against a sandbox on the system clock whose ticker moves tasks and instances
on its own (`Sandbox(SystemClock(), tick_seconds=0.1)`), as ECS does. No
CONTROLLER_TEST_NOW: the CLI and the sandbox share real time. Every child
runs with `--resync-seconds 3600` (but the idle-loop test, whose window the
resync is), so whatever happens within a test happened because of the
loop's own triggers (a cheap look, an ECS event, a placement failure, new
room, a CronJob's next occurrence), never the timer.

Each test waits, bounded, on the observable effect — a line from the child
(`Record NAME/1 Succeeded`, `SetDesiredCapacity ...`) or a call arriving at
the sandbox (`Sandbox.wait_for_calls`) — and then asserts state: the ledger
through `controller status -o json`, the sandbox's calls. The bounds are
generous (the machine is shared); no test asserts how long anything took.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.clock import SystemClock
from controller.sandbox import Sandbox
from tests.e2e.child import Child, Line
from tests.e2e.conftest import World, cron_job, fresh_world, job

pytestmark = pytest.mark.e2e

#: The sandbox's ticker period: tasks start and stop within this of their time.
TICK_SECONDS = 0.1
#: The bound on a reaction: generous, since the machine may be busy (a wait
#: that succeeds ends at the awaited line, however long the bound).
BOUND = 30.0
#: A backoff no test waits out: a run that retries within BOUND did so
#: because something other than its backoff said it should.
LONG_BACKOFF = "  backoff: {initialSeconds: 600, maxSeconds: 600}\n"


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SystemClock(), tick_seconds=TICK_SECONDS) as sandbox:
        yield sandbox


@pytest.fixture
def world(module_sandbox: Sandbox, tmp_path: Path) -> World:
    # No fake clock: the CLI and the sandbox share real time.
    return fresh_world(module_sandbox, None, tmp_path, owner="rt")


@pytest.fixture
def start(world: World) -> Iterator[Callable[..., Child]]:
    """Start `controller run` (resync 1 h unless told); killed at teardown if still alive."""
    started: list[Child] = []

    def launch(*args: str, resync: str = "3600") -> Child:
        argv = world.argv("run", "--resync-seconds", resync, "--metrics-addr", "127.0.0.1:0", *args)
        child = Child(argv, world.env())
        started.append(child)
        return child

    yield launch
    for child in started:
        child.kill()


def trigger_of(line: Line) -> str:
    """The trigger a text-format `pass done` line names (`trigger=... seconds=`)."""
    text = line.text
    assert "pass done trigger=" in text, text
    return text.split("pass done trigger=", 1)[1].rsplit(" seconds=", 1)[0]


def pass_of(line: Line) -> str:
    """The pass id a text-format line carries (`pass=1a2b-3`)."""
    found = re.search(r" pass=(\S+) ", line.text)
    assert found, line.text
    return found.group(1)


def pass_done(child: Child, *, since: int, timeout: float = BOUND) -> Line:
    """The first `pass done` line from line `since` on."""
    return child.wait_line("pass done", since=since, timeout=timeout)


def records(child: Child, names: list[str], phase: str) -> Line:
    """Wait for `Record NAME/1 PHASE` of every name; the last of those lines.

    Only the end is awaited: a task may go from PENDING to STOPPED between
    two looks, and then no pass ever records it Running.
    """
    found = [child.wait_line(f"Record {name}/1 {phase}", timeout=BOUND) for name in names]
    return max(found, key=lambda line: line.number)


# -- (a) tasks that stop in ECS are recorded terminal, resync or not ------------------------


def test_stopped_tasks_are_recorded_by_the_active_poll(
    world: World, start: Callable[..., Child]
) -> None:
    names = [f"short-{i}" for i in range(3)]
    for name in names:
        world.write(f"{name}.yaml", job(name, duration=2))
    child = start("--active-poll-seconds", "1")
    last = records(child, names, "Succeeded")
    # A cheap look saw a task stop and ran the pass that recorded it.
    trigger = trigger_of(pass_done(child, since=last.number))
    assert re.fullmatch(r"task \S+ STOPPED", trigger), trigger
    runs = world.runs()
    assert {k: (r["phase"], r["reason"]) for k, r in runs.items()} == {
        f"{name}/1": ("Succeeded", "Completed") for name in names
    }
    assert child.stop() == 0


def queue_depth(sandbox: Sandbox, url: str) -> int:
    """Messages in the queue, visible or received and not yet deleted (an uncounted look)."""
    sqs: Any = sandbox.client("sqs", counted=False)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_drained(sandbox: Sandbox, url: str) -> int:
    """The queue's depth once it is empty, or once no deletion came for BOUND seconds.

    Waits on the controller's deletions (each DeleteMessageBatch the sandbox
    answers), not on time: a message still in the queue must be deleted by
    one, and the wait ends the moment the queue is empty.
    """
    while (depth := queue_depth(sandbox, url)) > 0:
        deletions = sandbox.calls[("sqs", "DeleteMessageBatch")]
        if not sandbox.wait_for_calls("sqs", "DeleteMessageBatch", deletions + 1, timeout=BOUND):
            return queue_depth(sandbox, url)
    return depth


def test_stopped_tasks_are_recorded_on_their_ecs_events(
    world: World, start: Callable[..., Child]
) -> None:
    url = world.sandbox.create_events_queue("ejc-events", ["batch"])
    names = [f"short-{i}" for i in range(3)]
    for name in names:
        world.write(f"{name}.yaml", job(name, duration=2))
    # With the queue answering, polling is only the 60 s safety net: the
    # records below come from events or not at all within BOUND.
    child = start("--events-queue", url)
    child.wait_line("receiving ECS events from ")
    last = records(child, names, "Succeeded")
    trigger = trigger_of(pass_done(child, since=last.number))
    assert re.fullmatch(r"event: task \S+ STOPPED", trigger), trigger
    runs = world.runs()
    assert {k: r["phase"] for k, r in runs.items()} == {f"{n}/1": "Succeeded" for n in names}
    # Every message was deleted once acted on: the pass it triggered finished,
    # or the look it triggered found nothing left to do.
    assert world.sandbox.events_emitted > 0
    assert wait_drained(world.sandbox, url) == 0
    assert world.sandbox.calls[("sqs", "DeleteMessageBatch")] >= 1
    assert child.stop() == 0


# -- deadlines: the requeue wakes the loop at the deadline's instant ------------------------


def test_an_active_deadline_expiring_mid_run_stops_the_task_at_once(
    world: World, start: Callable[..., Child]
) -> None:
    world.write("slow.yaml", job("slow", duration=600, extra="  activeDeadlineSeconds: 3\n"))
    # No look between passes: only the plan's requeue at the deadline can act.
    child = start("--active-poll-seconds", "3600")
    child.wait_line("RunTask slow/1 attempt 1")
    stop = child.wait_line("StopTask slow/1", timeout=BOUND)
    assert trigger_of(pass_done(child, since=stop.number)) == "requeue requested by the plan"
    assert world.sandbox.wait_for_calls("ecs", "StopTask", 1, timeout=BOUND)
    run = world.runs()["slow/1"]
    assert (run["phase"], run["reason"]) == ("Failed", "DeadlineExceeded")
    assert child.stop() == 0


# -- (b), (c) capacity: a placement failure scales out at once; new room starts the rest ---


def asg_job(name: str) -> str:
    """A long job of 1024 cpu that waits for the batch-asg group's room, with a long backoff."""
    extra = "  capacity: {autoScalingGroup: batch-asg, maxPendingSeconds: 900}\n" + LONG_BACKOFF
    text = job(name, duration=600, extra=extra)
    return text.replace("cpu: '256'", "cpu: '1024'").replace("memory: '512'", "memory: '1024'")


def asg_world(world: World, *, registration_delay: float) -> World:
    """A cluster whose only room is one 2048-cpu instance of an Auto Scaling group, and 6 jobs.

    The group's later instances register `registration_delay` seconds after
    they launch (on the sandbox's ticker); its first one is attached already
    registered, so the controller's first pass sees exactly one instance:
    2 jobs fit on it, 4 need 2 more.
    """
    sandbox = world.sandbox
    sandbox.reset()
    sandbox.create_cluster("batch")
    sandbox.create_auto_scaling_group(
        "batch-asg",
        "batch",
        min_size=0,
        max_size=10,
        desired=0,
        instance_cpu=2048,
        instance_memory=4096,
        registration_delay_seconds=registration_delay,
    )
    sandbox.add_container_instances("batch", 1, cpu=2048, memory=4096, asg_name="batch-asg")
    for i in range(6):
        world.write(f"wide-{i}.yaml", asg_job(f"wide-{i}"))
    return world


def desired_capacity(sandbox: Sandbox) -> int:
    asg: Any = sandbox.client("autoscaling", counted=False)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])
    return int(group["AutoScalingGroups"][0]["DesiredCapacity"])


def scaled_out(child: Child) -> tuple[Line, list[str]]:
    """The SetDesiredCapacity line, and the runs its pass recorded as waiting for it."""
    scale = child.wait_line("SetDesiredCapacity batch-asg 1 -> 3", timeout=BOUND)
    done = pass_done(child, since=scale.number)
    lines = child.output().splitlines()[scale.number : done.number]
    waiting = sorted(
        line.split("Record ", 1)[1].split(" ", 1)[0]
        for line in lines
        if " Pending/ScalingOut: " in line
    )
    return done, waiting


def test_a_placement_failure_scales_out_without_waiting_for_the_backoff(
    world: World, start: Callable[..., Child]
) -> None:
    # The new instances never register within the test: what the scale-out
    # pass recorded stays as it was for `status` to show.
    asg_world(world, registration_delay=3600)
    child = start("--active-poll-seconds", "1")
    # The 600 s backoff and the 1 h resync leave one way to a scale-out within
    # BOUND: the pass that follows the failed placement at once.
    assert world.sandbox.wait_for_calls("autoscaling", "SetDesiredCapacity", timeout=BOUND)
    done, waiting = scaled_out(child)
    # The pass right after the start pass, whose RunTask could not place 4.
    assert trigger_of(done) == "requeue requested by the plan"
    assert pass_of(done).endswith("-2"), done.text
    assert desired_capacity(world.sandbox) == 3
    assert len(waiting) == 4, child.output()
    runs = world.runs()
    assert {k: r["reason"] for k, r in runs.items()} == {
        f"wide-{i}/1": "ScalingOut" if f"wide-{i}/1" in waiting else "Running" for i in range(6)
    }
    assert all(len(r["attempts"]) == 1 for r in runs.values())
    assert child.stop() == 0
    assert world.sandbox.calls[("autoscaling", "SetDesiredCapacity")] == 1


def test_registered_instances_start_every_waiting_task_before_their_backoff(
    world: World, start: Callable[..., Child]
) -> None:
    asg_world(world, registration_delay=2)
    child = start("--active-poll-seconds", "1")
    scaled, waiting = scaled_out(child)
    assert len(waiting) == 4, child.output()
    # The instances register 2 s after the scale-out; a look counts them and
    # its pass retries the waiting runs on the new room, long before their
    # 600 s backoff would.
    retried = [
        child.wait_line(f"RunTask {run} attempt 2", since=scaled.number, timeout=BOUND)
        for run in waiting
    ]
    first = min(retried, key=lambda line: line.number)
    trigger = trigger_of(pass_done(child, since=first.number))
    assert trigger.startswith("container instances in batch: 1 -> "), trigger
    for run in waiting:
        child.wait_line(f"Record {run} Running/Running", since=first.number, timeout=BOUND)
    runs = world.runs()
    assert {k: r["phase"] for k, r in runs.items()} == {f"wide-{i}/1": "Running" for i in range(6)}
    assert child.stop() == 0
    assert world.sandbox.calls[("autoscaling", "SetDesiredCapacity")] == 1
    assert desired_capacity(world.sandbox) == 3


# -- (d) issue 9 under `controller run`: Forbid starts the next occurrence once one finished -


def test_forbid_starts_the_next_occurrence_once_the_previous_one_stopped(
    world: World, start: Callable[..., Child]
) -> None:
    """An every-minute Forbid CronJob whose 2 s task stops long before the next minute.

    SLOW: waits for two real minute boundaries (60-120 s of real time).
    `--active-poll-seconds 3600`: no look records the stop, so the pass at
    the next occurrence (the loop wakes at the exact minute) is the one that
    observes the task stopped; it must start that occurrence rather than
    call it Missed because the ledger still said Running (issue 9).
    """
    world.write("c.yaml", cron_job("tick", duration=2))
    child = start("--active-poll-seconds", "3600")
    # The first occurrence is the next minute boundary after the first pass.
    first = child.wait_line(lambda t: "RunTask tick/" in t, timeout=90.0, what="a RunTask tick/")
    second = child.wait_line(
        lambda t: "RunTask tick/" in t, since=first.number + 1, timeout=90.0, what="the next one"
    )
    # The pass that started the second occurrence is the one that saw the first stop.
    earlier = first.text.split("RunTask ", 1)[1].split(" ", 1)[0]
    recorded = child.wait_line(f"Record {earlier} Succeeded/Completed", since=first.number)
    assert pass_of(recorded) == pass_of(second), child.output()
    runs = sorted(world.status()["runs"], key=lambda r: r["runId"])
    assert len(runs) == 2, runs
    assert (runs[0]["phase"], runs[0]["reason"]) == ("Succeeded", "Completed")
    assert runs[1]["attempts"]
    assert not [r for r in runs if r["reason"] == "Missed"]
    assert child.stop() == 0


# -- an idle loop makes no call between passes -------------------------------------------


def test_an_idle_loop_makes_no_call_between_passes(
    world: World, start: Callable[..., Child]
) -> None:
    """Once its run is recorded, the loop looks no more: calls come only from passes.

    The observation window is the loop's own: two resync passes 4 s apart
    (`--resync-seconds 4`, four active-poll periods each). Both windows,
    counted by the sandbox, hold exactly one idle pass's calls and nothing a
    look makes.
    """
    world.write("once.yaml", job("once", duration=1))
    child = start("--active-poll-seconds", "1", resync="4")
    last = records(child, ["once"], "Succeeded")
    done = pass_done(child, since=last.number)
    world.sandbox.reset_calls()
    first = child.wait_line("pass done trigger=resync", since=done.number + 1, timeout=BOUND)
    one_pass = world.sandbox.calls
    child.wait_line("pass done trigger=resync", since=first.number + 1, timeout=BOUND)
    two_passes = world.sandbox.calls
    assert one_pass, "an idle pass still lists the cluster's tasks"
    assert two_passes == one_pass + one_pass, (one_pass, two_passes)
    look_calls = {("ecs", "DescribeTasks"), ("ecs", "ListContainerInstances")}
    assert not look_calls & set(two_passes), two_passes
    assert child.stop() == 0
