"""Whole passes on the sandbox with the pool, the pacer and the budget on (DESIGN.md §4, §7).

Concurrency must not change outcomes: every run starts exactly once, one
revision per spec. Overlap is shown by counting calls in flight at the
sandbox (its latency waits on a barrier that only N concurrent calls pass),
never by timing; pacing and the pass budget run on the sandbox's fake clock,
so the sandbox's ECS-like buckets refill only as the controller's pacer
waits, and no test sleeps.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.apply.executor import Executor
from controller.aws.ecs import EcsGateway
from controller.aws.pacing import Pacer, Rate
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.model.loader import ManifestLoader
from controller.model.run import Phase
from controller.runtime.reconcile_pass import PassContext, PassResult, reconcile_once
from controller.sandbox import Sandbox
from controller.schemas import validators
from controller.sources.snapshot import Snapshot
from controller.state.sqlite import SqliteLedger
from controller.workers import Workers
from tests.e2e.conftest import job
from tests.sandbox.helpers import serving_sandbox

OWNER = "pool"


class StaticSource:
    """A source whose files the test sets directly."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def snapshot(self) -> Snapshot:
        return Snapshot(revision="test", files=dict(self.files))

    def describe(self) -> str:
        return "static"


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with serving_sandbox(clock, latency="", throttle="") as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(module_sandbox: Sandbox) -> Sandbox:
    module_sandbox.reset()
    module_sandbox.create_cluster("batch")
    module_sandbox.add_container_instances("batch", 8, cpu=4096, memory=16384)
    return module_sandbox


def manifests(count: int, specs: int = 2) -> dict[str, bytes]:
    return {
        f"j{i}.yaml": job(f"j{i}", duration=3600, family=f"fam{i % specs}").encode()
        for i in range(count)
    }


class Controller:
    """One in-process controller with the production pool, pacer and budget."""

    def __init__(
        self,
        tmp: Path,
        clock: FakeClock,
        files: dict[str, bytes],
        *,
        concurrency: int,
        rates: dict[str, Rate] | None = None,
        budget: float | None = None,
    ) -> None:
        self.session = AwsSession("us-east-1", pacer=Pacer(rates, timer=clock))
        self.ecs = EcsGateway(self.session)
        self.ledger = SqliteLedger(tmp / "state.db")
        self.workers = Workers(concurrency)
        self.clock = clock
        self.context = PassContext(
            source=StaticSource(files),
            loader=ManifestLoader(validators()),
            ecs=self.ecs,
            ledger=self.ledger,
            revision_cache=self.ledger,
            executor=Executor(
                self.ecs,
                self.ledger,
                OWNER,
                clock,
                workers=self.workers,
                budget_seconds=budget,
                timer=clock,
            ),
            clock=clock,
            owner=OWNER,
            workers=self.workers,
        )

    def reconcile(self) -> PassResult:
        return reconcile_once(self.context)

    def close(self) -> None:
        self.workers.close()
        self.ledger.close()


def tasks_of(sandbox: Sandbox) -> list[str]:
    ecs = sandbox.client("ecs", counted=False)
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        pages = ecs.get_paginator("list_tasks").paginate(
            cluster="batch", startedBy=f"ejc/{OWNER}", desiredStatus=status
        )
        arns += [a for page in pages for a in page["taskArns"]]
    return arns


def test_independent_run_tasks_overlap_up_to_the_bound_and_start_each_run_once(
    sandbox: Sandbox, clock: FakeClock, tmp_path: Path
) -> None:
    # Only four RunTasks in flight at once get past this barrier: a peak of
    # four proves they overlapped, and the bound says they never exceed it.
    barrier = threading.Barrier(4)

    def meet(_seconds: float) -> None:
        # Fewer than four arriving breaks the barrier: the peak below says so.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)

    sandbox.set_latency("ecs:RunTask:1", pause=meet)
    controller = Controller(tmp_path, clock, manifests(24), concurrency=4)
    try:
        result = controller.reconcile()
    finally:
        controller.close()
    assert result.clean, (result.applied.failed, result.observe_errors)
    assert sandbox.in_flight_peak("ecs", "RunTask") == 4
    assert sandbox.calls[("ecs", "RunTask")] == 24
    assert sandbox.calls[("ecs", "RegisterTaskDefinition")] == 2  # one per spec
    assert len(tasks_of(sandbox)) == 24


def test_throttled_starts_are_paced_and_the_budget_splits_the_pass_without_duplicates(
    sandbox: Sandbox, clock: FakeClock, tmp_path: Path
) -> None:
    # ECS-like buckets at the sandbox on its fake clock; the controller paces
    # with the same figures on the same clock, so its waits refill them.
    sandbox.set_throttle("ecs:RunTask+StopTask:5:1")
    rates = {"cluster-modify": Rate(5, 1)}
    controller = Controller(tmp_path, clock, manifests(30), concurrency=4, rates=rates, budget=8)
    passes: list[PassResult] = []
    elapsed: list[float] = []
    try:
        for _ in range(20):
            started = clock.monotonic()
            passes.append(controller.reconcile())
            elapsed.append(clock.monotonic() - started)
            if not passes[-1].applied.deferred:
                break
    finally:
        controller.close()
    view = SqliteLedger(tmp_path / "state.db").view()
    assert len(passes) > 1  # the budget split the work
    assert passes[0].applied.deferred
    # A pass stops starting work at its budget; what it started finishes:
    # one run's start (its token) per worker at most.
    assert max(elapsed) <= 8 + 4 * 1 + 1
    assert sandbox.throttled == {}  # paced below the bucket: never throttled
    assert all(r.phase in (Phase.PENDING, Phase.RUNNING) for r in view.runs.values())
    assert all(len(r.attempts) == 1 and r.attempts[0].task_arns for r in view.runs.values())
    assert len(tasks_of(sandbox)) == 30  # 0 duplicates
