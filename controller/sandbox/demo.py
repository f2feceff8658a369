"""`controller demo`: the whole loop against the local sandbox, no AWS account needed.

Starts the sandbox (moto's server with the ECS fidelity patches), seeds what
the examples expect — cluster `batch`, Auto Scaling group `batch-asg` with one
registered instance, log group `/ecs/batch`, and the subnet and security
group the FARGATE example names — and runs real passes over the examples
(`manifests/examples`, which the wheel carries as package data, or the
directory `--examples` names) with a throw-away ledger until every example
run has ended (at most `timeout` seconds), then prints the status table.

Each example states how it must end in the annotation
`demo.ecs-job-controller/expect` (`Succeeded`, `Failed/DeadlineExceeded`,
`Scheduled` for CronJobs) and optionally `.../expect-attempts` (attempts that
ran a task, as `status` counts them). The demo exits 0 only when every
example ended that way.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from controller.apply.executor import Executor
from controller.aws.autoscaling import AutoScalingGateway
from controller.aws.ecs import EcsGateway
from controller.aws.ecs_instances import EcsInstanceGateway
from controller.aws.session import AwsSession
from controller.cli.report import cron_lines, index_table, ran_attempts, status_table
from controller.clock import Clock, FakeClock, SystemClock
from controller.model.loader import ManifestLoader
from controller.model.manifest import DesiredSet
from controller.model.run import LedgerView, RunRecord
from controller.packaged import bundled_directory
from controller.plan.schedule import next_occurrence
from controller.runtime.reconcile_pass import PassContext, PassResult, reconcile_once
from controller.schemas import validators
from controller.sources.directory import DirectorySource
from controller.state.sqlite import SqliteLedger

EXPECT = "demo.ecs-job-controller/expect"
EXPECT_ATTEMPTS = "demo.ecs-job-controller/expect-attempts"
PASS_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class Verdict:
    """Whether one example ended as its file says."""

    name: str
    expected: str
    actual: str

    @property
    def ok(self) -> bool:
        """True when the outcome matches."""
        return self.expected == self.actual


def _expectations(desired: DesiredSet) -> dict[str, tuple[str, str | None]]:
    expectations: dict[str, tuple[str, str | None]] = {}
    for manifest in desired.manifests():
        expected = manifest.metadata.annotations.get(EXPECT)
        if expected is not None:
            attempts = manifest.metadata.annotations.get(EXPECT_ATTEMPTS)
            expectations[manifest.name] = (expected, attempts)
    return expectations


def _outcome(record: RunRecord | None, expected: str, attempts: str | None) -> str:
    if record is None:
        return "not started"
    text = str(record.phase) if "/" not in expected else f"{record.phase}/{record.reason}"
    if attempts is not None:
        text += f" after {ran_attempts(record)} attempt(s)"
    return text


def _scheduled(name: str, result: PassResult, view: LedgerView, clock: Clock) -> str:
    """The verdict on a CronJob: Scheduled only if a pass took it in and it has a next time."""
    cron = result.loaded.desired.cron_jobs.get(name)
    if cron is None:
        return "not loaded"
    if name not in view.cron_last_scheduled:
        return "loaded, but no pass scheduled it"
    upcoming = next_occurrence(cron, clock.now())
    return "Scheduled" if upcoming is not None else "scheduled, but it has no next time"


def _wanted(expected: str, attempts: str | None) -> str:
    return expected + (f" after {attempts} attempt(s)" if attempts is not None else "")


def run_demo(
    examples: Path,
    echo: Callable[[str], None],
    timeout: float = 60.0,
    *,
    simulated_time: bool = False,
) -> bool:
    """Run the examples in the sandbox; True when each ended as its file says.

    With `simulated_time` the sandbox and the controller share a fake clock
    that each pause between passes advances instantly: the same demo, without
    waiting (what the test suite runs).
    """
    from controller.sandbox.server import Sandbox  # moto is only needed here

    # moto warns about error codes its service models lack; not the user's concern.
    warnings.filterwarnings("ignore", category=UserWarning, module="moto")
    clock: Clock = FakeClock(datetime.now(UTC)) if simulated_time else SystemClock()
    sandbox = Sandbox(clock).start()
    saved_env = dict(os.environ)
    try:
        os.environ.update(sandbox.env())
        sandbox.create_cluster("batch")
        sandbox.create_auto_scaling_group(
            "batch-asg",
            "batch",
            min_size=1,
            max_size=4,
            desired=1,
            instance_cpu=2048,
            instance_memory=4096,
            registration_delay_seconds=0,
        )
        sandbox.create_log_group("/ecs/batch")
        # The placeholder IDs of manifests/examples/fargate-export.yaml.
        sandbox.create_network("subnet-0a1b2c3d", "sg-0a1b2c3d")
        sandbox.tick()
        with tempfile.TemporaryDirectory(prefix="ejc-demo-") as tmp:
            return _passes(examples, Path(tmp), clock, echo, timeout)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sandbox.stop()


def _passes(
    examples: Path,
    state_dir: Path,
    clock: Clock,
    echo: Callable[[str], None],
    timeout: float,
) -> bool:
    ledger = SqliteLedger(state_dir / "state.db")
    session = AwsSession()
    ecs = EcsGateway(session)
    autoscaling = AutoScalingGateway(session)
    ecs_instances = EcsInstanceGateway(session)
    ctx = PassContext(
        source=DirectorySource(examples),
        loader=ManifestLoader(validators()),
        ecs=ecs,
        ledger=ledger,
        revision_cache=ledger,
        executor=Executor(
            ecs, ledger, "demo", clock, autoscaling=autoscaling, ecs_instances=ecs_instances
        ),
        clock=clock,
        owner="demo",
        autoscaling=autoscaling,
        ecs_instances=ecs_instances,
    )
    started = clock.now()
    passes = 0
    try:
        while True:
            result = reconcile_once(ctx)
            passes += 1
            for line in result.applied.applied:
                echo(f"  pass {passes}: {line}")
            for line in [*result.applied.failed, *result.observe_errors]:
                echo(f"  pass {passes}: FAILED {line}")
            for error in result.loaded.errors if passes == 1 else ():
                echo(f"  {error}")
            expectations = _expectations(result.loaded.desired)
            view = ledger.view()
            runs = {key.name: record for key, record in view.runs.items() if key.index is None}
            pending = [
                name
                for name, (expected, _) in expectations.items()
                if expected != "Scheduled" and not (name in runs and runs[name].phase.terminal)
            ]
            if not pending or (clock.now() - started).total_seconds() > timeout:
                break
            clock.sleep(PASS_INTERVAL_SECONDS)
        echo("")
        whole_runs = [r for k, r in sorted(view.runs.items()) if k.index is None]
        echo(status_table(whole_runs, clock.now()))
        for record in whole_runs:
            indexes = view.indexes_of(record.key)
            if indexes:
                echo(f"indexes of {record.key}:")
                echo(index_table(indexes, clock.now()))
        for line in cron_lines(result.loaded.desired.cron_jobs, clock.now(), None):
            echo(line)
        echo("")
        verdicts = []
        for name, (expected, attempts) in sorted(expectations.items()):
            if expected == "Scheduled":
                verdicts.append(Verdict(name, expected, _scheduled(name, result, view, clock)))
                continue
            actual = _outcome(runs.get(name), expected, attempts)
            verdicts.append(Verdict(name, _wanted(expected, attempts), actual))
        for verdict in verdicts:
            mark = "ok  " if verdict.ok else "FAIL"
            echo(f"{mark} {verdict.name}: expected {verdict.expected}, got {verdict.actual}")
        elapsed = (clock.now() - started).total_seconds()
        echo(f"{passes} passes in {elapsed:.1f}s; AWS calls: {sum(session.calls.values())}")
        return all(v.ok for v in verdicts) and not pending
    finally:
        ledger.close()


@click.command(name="controller demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--examples",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Directory of manifests to run [default: the examples shipped with the controller].",
)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds at most.")
@click.option(
    "--simulated-time",
    is_flag=True,
    help="Advance a fake clock between passes instead of waiting (same outcome, no wait).",
)
def main(examples: str | None, timeout: float, simulated_time: bool) -> None:
    """`controller demo`: the examples against a fresh sandbox; 0 when each ended as it says."""
    given = None if examples is None else nullcontext(Path(examples))
    with given or bundled_directory("manifests/examples") as path:
        click.echo(f"sandbox: running {path} (ledger in a temporary directory)")
        ok = run_demo(path, click.echo, timeout, simulated_time=simulated_time)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        main(prog_name="controller demo", standalone_mode=False)
    except click.ClickException as exc:  # one line, like every error of the controller
        click.echo(f"error: {exc.format_message()} (see `controller demo --help`)", err=True)
        sys.exit(2)
