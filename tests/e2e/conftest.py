"""End-to-end fixtures: the real `controller` CLI as a subprocess against the sandbox.

One sandbox (moto's server on 127.0.0.1 plus our ECS patches) per module,
wiped before each test. Time is a FakeClock shared by the sandbox (which
decides when simulated tasks stop) and the CLI (through the
CONTROLLER_TEST_NOW hook), so no test ever sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.sandbox import Sandbox


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(clock) as sandbox:
        yield sandbox


@dataclass
class World:
    """A sandbox seeded with a cluster, a manifest directory and a ledger path."""

    sandbox: Sandbox
    #: the sandbox's fake clock, which the CLI follows (CONTROLLER_TEST_NOW);
    #: None in real time: the CLI and the sandbox read the system clock
    clock: FakeClock | None
    root: Path
    owner: str = "e2e"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def state(self) -> str:
        return f"sqlite:{self.root / 'state.db'}"

    def write(self, name: str, text: str) -> Path:
        path = self.manifests / name
        path.write_text(text)
        return path

    def argv(self, *args: str, state: str | None = None) -> list[str]:
        """`python -m controller` with this world's global options, then `args`."""
        return [
            sys.executable,
            "-m",
            "controller",
            "--source",
            str(self.manifests),
            "--state",
            state or self.state,
            "--owner",
            self.owner,
            *args,
        ]

    def env(self) -> dict[str, str]:
        """The CLI's environment: the sandbox's, the fake time (if any), `extra_env`."""
        environment = self.sandbox.subprocess_env()
        environment.pop("CONTROLLER_TEST_NOW", None)
        if self.clock is not None:
            environment["CONTROLLER_TEST_NOW"] = self.clock.now().isoformat()
        environment.update(self.extra_env)
        return environment

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m controller` with the global options and the fake time."""
        environment = self.env()
        environment.update(env or {})
        argv = self.argv(*args)
        return subprocess.run(
            argv, env=environment, capture_output=True, text=True, timeout=120, check=False
        )

    def reconcile(self, **env: str) -> subprocess.CompletedProcess[str]:
        """One `reconcile --once` pass."""
        return self.cli("reconcile", "--once", env=env or None)

    def status(self, name: str | None = None) -> dict[str, Any]:
        """`status -o json`, parsed."""
        done = self.cli("status", *([name] if name else []), "-o", "json")
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def runs(self) -> dict[str, dict[str, Any]]:
        """The ledger's runs by `name/runId`."""
        return {f"{r['name']}/{r['runId']}": r for r in self.status()["runs"]}

    def run(self, name: str) -> dict[str, Any]:
        """The one run of a manifest in `status -o json`."""
        runs = [r for r in self.status()["runs"] if r["name"] == name]
        assert len(runs) == 1, runs
        return runs[0]

    def tasks(self, desired_status: str = "RUNNING") -> list[str]:
        """Task ARNs the sandbox has for this owner (uncounted helper)."""
        ecs = self.sandbox.client("ecs")
        arns: list[str] = ecs.list_tasks(
            cluster="batch", startedBy=f"ejc/{self.owner}", desiredStatus=desired_status
        )["taskArns"]
        return arns

    def all_tasks(self) -> list[str]:
        return self.tasks("RUNNING") + self.tasks("STOPPED")


def fresh_world(sandbox: Sandbox, clock: FakeClock | None, root: Path, owner: str = "e2e") -> World:
    """A reset sandbox with the cluster `batch` of two instances, and an empty source.

    `clock` None: real time (the CLI and the sandbox's ticker share it).
    """
    sandbox.reset()
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 2, cpu=2048, memory=4096)
    (root / "manifests").mkdir()
    return World(sandbox=sandbox, clock=clock, root=root, owner=owner)


@pytest.fixture
def world(module_sandbox: Sandbox, clock: FakeClock, tmp_path: Path) -> World:
    return fresh_world(module_sandbox, clock, tmp_path)


def job(
    name: str,
    *,
    exit_code: str = "0",
    duration: int = 30,
    extra: str = "",
    run_id: str = "1",
    family: str | None = None,
) -> str:
    """An EC2 JobRun whose sandbox task exits `exit_code` after `duration` seconds."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"  runId: '{run_id}'\n"
        "  launchType: EC2\n"
        f"{extra}"
        "  taskDefinition:\n"
        f"    family: {family or name}\n"
        "    cpu: '256'\n"
        "    memory: '512'\n"
        "    containerDefinitions:\n"
        "      - name: app\n"
        "        image: busybox\n"
        "        environment:\n"
        f"          - {{name: SANDBOX_EXIT_CODE, value: '{exit_code}'}}\n"
        f"          - {{name: SANDBOX_DURATION_SECONDS, value: '{duration}'}}\n"
    )


def cron_job(
    name: str, *, schedule: str = "* * * * *", extra: str = "", duration: int = 600
) -> str:
    """A CronJob whose occurrences run a simulated task of `duration` seconds."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        f"  schedule: '{schedule}'\n"
        f"{extra}"
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    launchType: EC2\n"
        "    taskDefinition:\n"
        f"      family: {name}\n"
        "      cpu: '128'\n"
        "      memory: '128'\n"
        "      containerDefinitions:\n"
        "        - name: app\n"
        "          image: busybox\n"
        f"          environment: [{{name: SANDBOX_DURATION_SECONDS, value: '{duration}'}}]\n"
    )


def scaling_world(world: World, *, max_size: int) -> World:
    """A fresh cluster whose only capacity is an Auto Scaling group of one registered instance."""
    world.sandbox.reset()
    world.sandbox.create_cluster("batch")
    world.sandbox.create_auto_scaling_group(
        "batch-asg",
        "batch",
        min_size=1,
        max_size=max_size,
        desired=1,
        instance_cpu=2048,
        instance_memory=4096,
        registration_delay_seconds=30,
    )
    world.clock.advance(31)
    world.sandbox.tick()
    return world
