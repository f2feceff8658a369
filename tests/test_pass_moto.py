"""Whole passes against moto in-process: gateway, observe, plan and apply together.

These tests exercise AWS behaviour through moto (never a mock of our own
gateway): revisions registered once and reused, RunTask requests carrying the
start protocol's token, tags and startedBy, and the API-call cost of passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.apply.executor import ApplyResult, Executor
from controller.aws.ecs import EcsGateway
from controller.aws.session import AwsSession
from controller.clock import FakeClock
from controller.model.identity import TAG_OWNER, TAG_SPEC_HASH, client_token
from controller.model.loader import ManifestLoader
from controller.model.manifest import Kind, RunKey
from controller.model.run import AttemptOutcome, Phase, Reason, RunRecord
from controller.plan.actions import Plan
from controller.runtime.reconcile_pass import PassContext, PassResult, reconcile_once
from controller.schemas import validators
from controller.sources.snapshot import Snapshot
from controller.state.ledger import PassSummary
from controller.state.sqlite import SqliteLedger
from tests.moto_aws import in_process_aws

OWNER = "team-a"


class StaticSource:
    """A source whose files the test sets directly."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def snapshot(self) -> Snapshot:
        return Snapshot(revision="test", files=dict(self.files))

    def describe(self) -> str:
        return "static"


def job(name: str, family: str, image: str = "busybox:1", run_id: str = "1") -> bytes:
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"  runId: '{run_id}'\n"
        "  launchType: EC2\n"
        "  tags: [{key: team, value: data}]\n"
        "  taskDefinition:\n"
        f"    family: {family}\n"
        "    cpu: 0.25 vCPU\n"
        "    memory: 0.5 GB\n"
        "    containerDefinitions:\n"
        f"      - {{name: app, image: '{image}', memory: 16, cpu: 8}}\n"
    ).encode()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with in_process_aws(monkeypatch):
        boto3.client("ecs").create_cluster(clusterName="batch")
        # Plain moto places EC2 tasks on registered container instances only.
        ec2: Any = boto3.client("ec2")
        for instance in ec2.run_instances(
            ImageId="ami-12345678", MinCount=4, MaxCount=4, InstanceType="m5.4xlarge"
        )["Instances"]:
            boto3.client("ecs").register_container_instance(
                cluster="batch",
                instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]}),
            )
        yield


class Harness:
    """One controller process: its gateway, ledger and clock persist across passes."""

    def __init__(self, tmp: Path, owner: str = OWNER) -> None:
        self.owner = owner
        self.source = StaticSource()
        self.session = AwsSession("us-east-1")
        self.ecs = EcsGateway(self.session)
        self.ledger = SqliteLedger(tmp / "state.db")
        self.clock = FakeClock()
        self.loader = ManifestLoader(validators())

    def reconcile(self) -> PassResult:
        ctx = PassContext(
            source=self.source,
            loader=self.loader,
            ecs=self.ecs,
            ledger=self.ledger,
            revision_cache=self.ledger,
            executor=Executor(self.ecs, self.ledger, self.owner, self.clock),
            clock=self.clock,
            owner=self.owner,
        )
        before = self.session.calls.copy()
        result = reconcile_once(ctx)
        self.last_calls = self.session.calls - before
        return result


@pytest.fixture
def harness(aws: None, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.ledger.close()


def revisions(family: str) -> list[str]:
    arns: list[str] = boto3.client("ecs").list_task_definitions(familyPrefix=family)[
        "taskDefinitionArns"
    ]
    return arns


def test_hundred_runs_sharing_three_specs_register_exactly_three_revisions(
    harness: Harness,
) -> None:
    for i in range(100):
        harness.source.files[f"j{i}.yaml"] = job(f"j{i}", family=f"fam{i % 3}")
    first = harness.reconcile()
    assert first.clean, (first.applied.failed, first.observe_errors)
    assert all(r.attempts[0].task_arns for r in harness.ledger.view().runs.values())
    assert harness.last_calls[("ecs", "RegisterTaskDefinition")] == 3
    assert harness.last_calls[("ecs", "RunTask")] == 100
    assert [len(revisions(f"fam{i}")) for i in range(3)] == [1, 1, 1]

    second = harness.reconcile()
    assert second.clean
    assert harness.last_calls[("ecs", "RegisterTaskDefinition")] == 0
    assert harness.last_calls[("ecs", "DescribeTaskDefinition")] == 0
    assert harness.last_calls[("ecs", "RunTask")] == 0

    # Changing one image for new runs registers exactly one revision.
    harness.source.files["new.yaml"] = job("new", family="fam0", image="busybox:2")
    harness.reconcile()
    assert harness.last_calls[("ecs", "RegisterTaskDefinition")] == 1
    assert len(revisions("fam0")) == 2


def test_registered_revision_is_tagged_and_reused_by_a_fresh_process(
    harness: Harness, tmp_path: Path
) -> None:
    harness.source.files["a.yaml"] = job("a", family="fam")
    harness.reconcile()
    [arn] = revisions("fam")
    tags = boto3.client("ecs").list_tags_for_resource(resourceArn=arn)["tags"]
    tag_map = {t["key"]: t["value"] for t in tags}
    assert tag_map[TAG_OWNER] == OWNER
    assert len(tag_map[TAG_SPEC_HASH]) == 64

    # Another process with an empty ledger (another owner's: an empty ledger of
    # the same owner beside its history is refused, see tests/e2e/test_safety.py):
    # same content -> reuse by the spec-hash tag, no registration.
    other = Harness(tmp_path / "other", owner="team-b")
    other.source.files["b.yaml"] = job("b", family="fam")
    result = other.reconcile()
    assert result.clean
    assert other.last_calls[("ecs", "RegisterTaskDefinition")] == 0
    record = other.ledger.get(next(iter(other.ledger.view().runs)))
    assert record is not None
    assert record.task_definition_arn == arn
    other.ledger.close()


def test_revision_registered_by_hand_is_adopted(harness: Harness) -> None:
    # Registered by someone else, spelled the way the API answers it.
    boto3.client("ecs").register_task_definition(
        family="fam",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": "busybox:1", "memory": 16, "cpu": 8, "essential": True}
        ],
    )
    harness.source.files["a.yaml"] = job("a", family="fam")
    result = harness.reconcile()
    assert result.clean
    assert harness.last_calls[("ecs", "RegisterTaskDefinition")] == 0
    assert len(revisions("fam")) == 1


def test_run_task_carries_token_started_by_and_tags(harness: Harness) -> None:
    harness.source.files["a.yaml"] = job("nightly", family="fam", run_id="7")
    harness.reconcile()
    ecs: Any = boto3.client("ecs")
    arns = ecs.list_tasks(cluster="batch", startedBy=f"ejc/{OWNER}")["taskArns"]
    assert len(arns) == 1
    task = ecs.describe_tasks(cluster="batch", tasks=arns, include=["TAGS"])["tasks"][0]
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags == {
        "ecs-job-controller/owner": OWNER,
        "ecs-job-controller/kind": "JobRun",
        "ecs-job-controller/run": "nightly",
        "ecs-job-controller/run-id": "7",
        "ecs-job-controller/attempt": "1",
        "team": "data",
    }
    assert task["startedBy"] == f"ejc/{OWNER}"
    [record] = harness.ledger.view().runs.values()
    attempt = record.attempts[0]
    assert attempt.client_token == client_token(OWNER, record.key, 1)
    assert attempt.request["clientToken"] == attempt.client_token
    assert attempt.task_arns == tuple(arns)


def test_steady_state_pass_costs_only_the_task_listing(harness: Harness) -> None:
    for i in range(30):
        harness.source.files[f"j{i}.yaml"] = job(f"j{i}", family="fam")
    harness.reconcile()
    # Let ECS finish every task (moto moves tasks one state per read).
    ecs: Any = boto3.client("ecs")
    for arn in ecs.list_tasks(cluster="batch")["taskArns"]:
        ecs.stop_task(cluster="batch", task=arn, reason="done")
    harness.reconcile()
    runs = harness.ledger.view().runs.values()
    assert all(r.phase.terminal for r in runs)
    harness.reconcile()
    assert set(harness.last_calls) == {("ecs", "ListTasks")}
    assert harness.last_calls[("ecs", "ListTasks")] == 1


class InterleavedExecutor:
    """The real executor, after another writer saved `record` between our plan and apply."""

    def __init__(self, inner: Executor, other: SqliteLedger, record: RunRecord) -> None:
        self._inner = inner
        self._other = other
        self._record = record

    def apply(self, plan: Plan, summary: PassSummary | None = None) -> ApplyResult:
        self._other.save(self._record)
        return self._inner.apply(plan, summary)


def test_a_ledger_conflict_left_after_the_pass_is_a_failed_action(
    harness: Harness, tmp_path: Path
) -> None:
    harness.source.files["a.yaml"] = job("a", family="fam")
    other = SqliteLedger(tmp_path / "state.db")  # another writer on the same file
    key = RunKey("a", "1")
    theirs = RunRecord(
        key=key,
        kind=Kind.JOB_RUN,
        phase=Phase.PENDING,
        reason=Reason.WAITING,
        message="saved by someone else",
        created_at=harness.clock.now(),
        updated_at=harness.clock.now(),
        spec_digest="",
    )
    ctx = PassContext(
        source=harness.source,
        loader=harness.loader,
        ecs=harness.ecs,
        ledger=harness.ledger,
        revision_cache=harness.ledger,
        executor=InterleavedExecutor(
            Executor(harness.ecs, harness.ledger, OWNER, harness.clock), other, theirs
        ),
        clock=harness.clock,
        owner=OWNER,
    )

    result = reconcile_once(ctx)

    assert [c.split(":", 1)[0] for c in result.applied.conflicts] == ["RunTask a/1 attempt 1"]
    assert not result.applied.ok
    assert not result.clean  # reconcile --once exits 1
    assert boto3.client("ecs").list_tasks(cluster="batch")["taskArns"] == []
    other.close()


def cron_job(name: str, schedule: str = "30 3 * * *") -> bytes:
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        f"  schedule: '{schedule}'\n"
        "  timeZone: Asia/Tokyo\n"
        "  concurrencyPolicy: Replace\n"
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    taskDefinitionRef: nightly:1\n"
    ).encode()


def test_a_pass_records_what_it_could_not_load_and_the_cron_schedules(harness: Harness) -> None:
    harness.source.files["good.yaml"] = job("good", family="fam")
    harness.source.files["nightly.yaml"] = cron_job("nightly")
    harness.source.files["bad.yaml"] = job("bad", family="fam").replace(b"runId", b"runIdd")
    harness.reconcile()

    summary = harness.ledger.pass_summary()
    assert summary is not None
    assert (summary.at, summary.revision) == (harness.clock.now(), "test")
    assert [(e.path, e.line) for e in summary.invalid] == [("bad.yaml", 6)]
    assert "runIdd" in summary.invalid[0].message
    [nightly] = summary.cron_jobs
    assert (nightly.name, nightly.schedule, nightly.time_zone) == (
        "nightly",
        "30 3 * * *",
        "Asia/Tokyo",
    )
    assert (nightly.suspend, nightly.concurrency_policy) == (False, "Replace")
    assert summary.warnings == ()

    del harness.source.files["bad.yaml"]  # fixed: the next pass forgets it
    harness.reconcile()
    summary = harness.ledger.pass_summary()
    assert summary is not None
    assert summary.invalid == ()


def test_guards_stay_in_the_summary_until_a_pass_is_healthy(harness: Harness) -> None:
    harness.source.files["a.yaml"] = job("a", family="fam")
    harness.reconcile()
    harness.source.files.clear()  # an empty source: the orphan guard holds back
    harness.clock.advance(60)
    harness.reconcile()
    harness.clock.advance(60)
    harness.reconcile()
    summary = harness.ledger.pass_summary()
    assert summary is not None
    # Orphaning and pruning both held back; each guard once, at its newest time.
    assert len(summary.warnings) == 2
    assert all("empty" in guard.message for guard in summary.warnings)
    assert {guard.at for guard in summary.warnings} == {harness.clock.now()}

    harness.source.files["a.yaml"] = job("a", family="fam")
    harness.clock.advance(60)
    harness.reconcile()
    summary = harness.ledger.pass_summary()
    assert summary is not None
    assert summary.warnings == ()


def test_a_dry_run_records_no_summary(harness: Harness) -> None:
    from controller.apply.dry_run import DryRunExecutor
    from controller.state.ledger import RevisionMemory

    harness.source.files["bad.yaml"] = b"apiVersion: ecs-job-controller/v1\nkind: JobRun\n"
    ctx = PassContext(
        source=harness.source,
        loader=harness.loader,
        ecs=harness.ecs,
        ledger=harness.ledger,  # read, never written
        revision_cache=RevisionMemory(),
        executor=DryRunExecutor(lambda _line: None),
        clock=harness.clock,
        owner=OWNER,
    )
    result = reconcile_once(ctx)
    assert result.loaded.errors
    assert harness.ledger.pass_summary() is None


# -- refusals count as failed actions ---------------------------------------------------


def test_a_run_task_ecs_rejects_is_recorded_and_is_a_terminal_failure(harness: Harness) -> None:
    vpc = "{subnets: [subnet-nope], securityGroups: [sg-12345678]}"
    network = f"  networkConfiguration: {{awsvpcConfiguration: {vpc}}}\n"
    text = job("subnet", family="fam").decode().replace("  tags:", network + "  tags:")
    harness.source.files["a.yaml"] = text.replace(
        "cpu: 0.25 vCPU", "networkMode: awsvpc\n    cpu: 0.25 vCPU"
    ).encode()

    result = harness.reconcile()

    [failure] = result.applied.failed
    assert failure.startswith("RunTask subnet/1 attempt 1: ")
    assert "subnet-nope" in failure
    assert result.applied.terminal == [failure]  # the loop does not retry it on its own
    assert not result.clean
    [record] = harness.ledger.view().runs.values()
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.RUN_TASK_ERROR)
    assert record.attempts[0].outcome is AttemptOutcome.REJECTED

    again = harness.reconcile()  # the run has failed for good: nothing more to do
    assert again.clean, again.applied.failed


def test_a_task_definition_ref_aws_does_not_know_is_a_terminal_failure(harness: Harness) -> None:
    text = job("ref", family="fam").decode()
    body = text[: text.index("  taskDefinition:")]
    harness.source.files["a.yaml"] = (body + "  taskDefinitionRef: 'no-such-family:7'\n").encode()

    result = harness.reconcile()

    [failure] = result.applied.failed
    assert failure.startswith("Record ref/1 Failed/TaskDefinitionError: taskDefinitionRef")
    assert result.applied.terminal == [failure]
    [record] = harness.ledger.view().runs.values()
    assert (record.phase, record.reason) == (Phase.FAILED, Reason.TASK_DEFINITION_ERROR)
    assert harness.last_calls[("ecs", "RunTask")] == 0

    again = harness.reconcile()
    assert again.clean, again.applied.failed


def test_a_registration_racing_another_keeps_the_older_revision_and_drops_ours(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two registrars that both saw no revision (a oneshot beside the loop) keep one."""
    harness.source.files["a.yaml"] = job("a", "fam")
    other = EcsGateway(AwsSession("us-east-1"))
    register = harness.ecs.register

    def raced(task_definition: Any, tags: Any) -> Any:
        # The other registrar read the family at the same time and registers first.
        other.register(task_definition, tags)
        return register(task_definition, tags)

    monkeypatch.setattr(harness.ecs, "register", raced)

    result = harness.reconcile()

    assert result.applied.ok, result.applied.failed
    ecs = boto3.client("ecs")
    active = ecs.list_task_definitions(familyPrefix="fam", status="ACTIVE")["taskDefinitionArns"]
    inactive = ecs.list_task_definitions(familyPrefix="fam", status="INACTIVE")
    assert [a.rsplit(":", 1)[1] for a in active] == ["1"]  # the older one, kept
    assert [a.rsplit(":", 1)[1] for a in inactive["taskDefinitionArns"]] == ["2"]
    run = harness.ledger.get(RunKey("a", "1"))
    assert run is not None
    assert run.task_definition_arn == active[0]
    assert run.attempts[0].request["taskDefinition"] == active[0]


def test_a_registration_nobody_raced_costs_one_more_listing(harness: Harness) -> None:
    harness.source.files["a.yaml"] = job("a", "fam")
    harness.reconcile()
    assert harness.last_calls[("ecs", "RegisterTaskDefinition")] == 1
    # The new ledger's history check, observe, then the re-read after registering.
    assert harness.last_calls[("ecs", "ListTaskDefinitions")] == 3
    assert harness.last_calls[("ecs", "DescribeTaskDefinition")] == 0
