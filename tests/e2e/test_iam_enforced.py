"""The whole lifecycle under IAM enforcement, as a user holding only deploy/iam-policy.json.

The sandbox enforces IAM here (`Sandbox(enforce_iam=True)`: moto's access
control, `INITIAL_NO_AUTH_ACTION_COUNT` 0). The CLI signs its calls with
the key of an IAM user whose one inline policy is deploy/iam-policy.json,
rendered for the sandbox's account. One test walks the lifecycle: an S3
source, the DynamoDB ledger and its lease, register, reuse, run, observe to
completion, retry, scale out, prune, stop, logs, scale in, and
`run --events-queue`.

Every statement is shown to be needed: just before the step that first
needs it, the user's policy is replaced by the policy without that
statement, the step's command is run and must fail naming one of the
statement's actions ("is not authorized to perform: ecs:RunTask"); then
the whole policy is put back and the step must succeed. Steps are
level-triggered passes, so a refused pass leaves nothing the next one
cannot finish.

What moto does not enforce (deploy/README.md, "What the enforcement test
proves"): resource scopes outside S3 and SQS (moto checks every other
service's calls against resource "*", so the policy the user gets has "*"
there: `moto_view`), conditions (never evaluated), and the permissions one
call needs besides its own (RunTask's iam:PassRole and ecs:TagResource).
The statements that only grant those (`NOT_ENFORCED_BY_MOTO`) are checked
the other way round: the lifecycle's register step passes without them,
so this test fails the day moto starts enforcing them, and they move to
the enforced list.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.model.identity import TAG_SCALE_IN
from controller.plan.scale_in import DEFAULT_IDLE_SECONDS, DRAIN_SETTLE_SECONDS
from controller.sandbox import Sandbox
from controller.sandbox.patches import ACCOUNT_ID
from scripts.render_iam_policy import load, render
from tests.deploy.operations import product_operations, required_actions
from tests.e2e.child import Child
from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
USER = "ejc-controller"
OWNER = "iam"
BUCKET = "ejc-manifests"
PREFIX = "jobs/"
TABLE = "ejc-ledger"
QUEUE = "ejc-events"
LOG_GROUP = "/ecs/batch"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/job-task"
CLUSTERS = ("batch", "scale")

#: Services whose calls moto authorizes against their real resource ARN;
#: every other service's calls are checked against "*".
RESOURCE_CHECKED = frozenset({"s3", "sqs"})
#: moto checks the operation's name where IAM names the permission otherwise.
MOTO_ACTION_NAMES = {"sqs:DeleteMessage": ["sqs:DeleteMessageBatch"]}
#: Statements granting only what moto never checks (see the module docstring).
NOT_ENFORCED_BY_MOTO = ("TagOnCreate", "PassTaskRoles")
#: IAM action -> the operations of the product that need it.
REQUIRED = required_actions(product_operations())


def policy_values() -> dict[str, str | list[str]]:
    """The stack parameters, for the sandbox's account."""
    return {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "LedgerTable": TABLE,
        "SourceBucket": BUCKET,
        "SourcePrefix": PREFIX,
        "ClusterArns": [f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{c}" for c in CLUSTERS],
        "PassRoleArns": [ROLE],
        "AutoScalingGroupNamePrefix": "batch-",
        "Owner": OWNER,
        "LogGroupNamePrefix": "/ecs/",
        "EventsQueueName": QUEUE,
        "NotifyTopicNamePrefix": "ejc-",
    }


def moto_view(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as moto can evaluate it: "*" where it checks no resource, its action names."""
    seen = copy.deepcopy(policy)
    for statement in seen["Statement"]:
        actions = statement["Action"]
        if not {a.split(":", 1)[0] for a in actions} <= RESOURCE_CHECKED:
            statement["Resource"] = "*"
        statement["Action"] = actions + [m for a in actions for m in MOTO_ACTION_NAMES.get(a, [])]
    return seen


def without(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    """The policy minus one statement."""
    kept = [s for s in policy["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(policy["Statement"]) - 1, sid
    return {**policy, "Statement": kept}


def refused(action: str, output: str) -> bool:
    """True when `output` says AWS refused `action`.

    Most services name the action ("... is not authorized to perform:
    ecs:RunTask"); S3 says only "Access Denied", so there the controller's
    message naming the operation that needs the action must do
    ("ListObjectsV2: AccessDenied: Access Denied").
    """
    if f"not authorized to perform: {action}" in output:
        return True
    operations = REQUIRED.get(action, [])
    return any(f"{o.name}: AccessDenied" in output for o in operations)


def actions_of(policy: dict[str, Any], sid: str) -> list[str]:
    [statement] = [s for s in policy["Statement"] if s["Sid"] == sid]
    return list(statement["Action"])


@pytest.fixture(scope="module")
def module_sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(clock, enforce_iam=True) as sandbox:
        yield sandbox


@dataclass
class IamWorld(World):
    """The e2e World on an S3 source and the DynamoDB ledger, as the policy's IAM user."""

    policy: dict[str, Any] = field(default_factory=dict)
    #: statement -> (step, the action the refusal named)
    needed: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return f"dynamodb://{TABLE}"

    def argv(self, *args: str, state: str | None = None) -> list[str]:
        argv = super().argv(*args, state=state)
        argv[argv.index("--source") + 1] = f"s3://{BUCKET}/{PREFIX}"
        return argv

    def write(self, name: str, text: str) -> Path:
        self.sandbox.client("s3", counted=False).put_object(
            Bucket=BUCKET, Key=f"{PREFIX}{name}", Body=text.encode()
        )
        return Path(name)

    def desired_capacity(self, group: str) -> int:
        autoscaling = self.sandbox.client("autoscaling", counted=False)
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        return int(groups["AutoScalingGroups"][0]["DesiredCapacity"])

    def calls(self, service: str, operation: str) -> int:
        return self.sandbox.calls[(service, operation)]

    def refused_without(
        self, sid: str, step: str, command: Callable[[], subprocess.CompletedProcess[str]]
    ) -> None:
        """`command` fails, naming an action of statement `sid`, while the policy lacks it."""
        self.sandbox.set_user_policy(USER, moto_view(without(self.policy, sid)))
        try:
            done = command()
        finally:
            self.sandbox.set_user_policy(USER, moto_view(self.policy))
        output = done.stdout + done.stderr
        named = [a for a in actions_of(self.policy, sid) if refused(a, output)]
        assert done.returncode != 0, f"{step} passed without {sid}:\n{output}"
        assert named, f"{step} without {sid} failed, but not for want of it:\n{output}"
        self.needed[sid] = (step, named[0])

    def ok(self, done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "not authorized" not in done.stdout + done.stderr
        return done


@pytest.fixture
def iam_world(module_sandbox: Sandbox, clock: FakeClock, tmp_path: Path) -> IamWorld:
    sandbox = module_sandbox
    sandbox.reset()
    for cluster in CLUSTERS:
        sandbox.create_cluster(cluster)
    sandbox.add_container_instances("batch", 2, cpu=2048, memory=4096)
    sandbox.create_auto_scaling_group(
        "batch-asg", "scale", min_size=1, max_size=3, desired=1, registration_delay_seconds=30
    )
    clock.advance(31)
    sandbox.tick()
    sandbox.client("s3", counted=False).create_bucket(Bucket=BUCKET)
    sandbox.create_log_group(LOG_GROUP)
    policy = render(load(), policy_values())
    keys = sandbox.create_iam_user(USER, moto_view(policy))
    (tmp_path / "manifests").mkdir()
    return IamWorld(
        sandbox=sandbox,
        clock=clock,
        root=tmp_path,
        owner=OWNER,
        extra_env=keys.env(),
        policy=policy,
    )


AWSLOGS = (
    "        logConfiguration:\n"
    "          logDriver: awslogs\n"
    f"          options: {{awslogs-group: {LOG_GROUP}, awslogs-region: {REGION}, "
    "awslogs-stream-prefix: jobs}\n"
)
ROLES = f"    taskRoleArn: {ROLE}\n    executionRoleArn: {ROLE}\n"


def with_roles(text: str) -> str:
    """A job whose task definition names the task and execution roles (iam:PassRole)."""
    return text.replace("    containerDefinitions:\n", ROLES + "    containerDefinitions:\n")


def wide(name: str) -> str:
    """A job that takes a whole instance of the Auto Scaling group."""
    text = job(name, duration=600, extra="  capacity: {autoScalingGroup: batch-asg}\n")
    return (
        text.replace("cluster: batch", "cluster: scale")
        .replace("cpu: '256'", "cpu: '2048'")
        .replace("memory: '512'", "memory: '4096'")
    )


def test_the_lifecycle_needs_every_statement_of_the_policy_and_nothing_more(
    iam_world: IamWorld,
) -> None:
    world = iam_world
    clock = world.clock
    assert clock is not None

    # -- register: S3 source, DynamoDB ledger + lease, ECS register and run -------------
    world.write("alpha.yaml", with_roles(job("alpha", duration=30)) + AWSLOGS)
    topic, queue = world.sandbox.create_notify_topic("ejc-ops")
    notify = f"  notify: {{snsTopicArn: '{topic}'}}\n"
    world.write(
        "late.yaml", job("late", duration=3600, extra=notify + "  activeDeadlineSeconds: 300\n")
    )
    # Refused before anything is decided: the pass stops at reading.
    for sid in ("LedgerAndLease", "SourceList", "SourceRead", "TaskDefinitionsRead"):
        world.refused_without(sid, "register", world.reconcile)
    world.ok(world.reconcile())
    started = {r["name"]: bool(r["attempts"][-1]["taskArns"]) for r in world.status()["runs"]}
    assert started == {"alpha": True, "late": True}
    # A refused RegisterTaskDefinition or RunTask fails its run for good (access
    # denied is terminal), so each is shown on a run of its own.
    for sid in ("TaskDefinitionsRegister", "RunAndStopTasks"):
        name = f"refused-{sid.lower()}"
        world.write(f"{name}.yaml", job(name))
        world.refused_without(sid, "register", world.reconcile)
    registered = world.calls("ecs", "RegisterTaskDefinition")

    # -- reuse: the same task definition again registers nothing ------------------------
    world.write("beta.yaml", with_roles(job("beta", duration=30, family="alpha")) + AWSLOGS)
    world.ok(world.reconcile())
    assert world.calls("ecs", "RegisterTaskDefinition") == registered
    assert world.run("beta")["taskDefinitionArn"] == world.run("alpha")["taskDefinitionArn"]

    # -- observe to completion -----------------------------------------------------------
    clock.advance(31)
    world.refused_without("ObserveTasks", "observe", world.reconcile)
    world.ok(world.reconcile())
    assert world.run("alpha")["phase"] == "Succeeded"

    # -- retry: exit 3, then 0 -----------------------------------------------------------
    retry = "  backoffLimit: 1\n  backoff: {initialSeconds: 1, maxSeconds: 1}\n"
    world.write("gamma.yaml", job("gamma", exit_code="3,0", duration=5, extra=retry))
    for advance in (0, 6, 2, 6):
        clock.advance(advance)
        world.ok(world.reconcile())
    gamma = world.run("gamma")
    assert (gamma["phase"], len(gamma["attempts"])) == ("Succeeded", 2)

    # -- scale out: the group's one instance holds one task of two ----------------------
    world.write("wide-1.yaml", wide("wide-1"))
    world.write("wide-2.yaml", wide("wide-2"))
    world.ok(world.reconcile())
    clock.advance(15)
    for sid in ("ListContainerInstances", "DescribeContainerInstances", "CapacityRead", "ScaleOut"):
        world.refused_without(sid, "scale out", world.reconcile)
    assert world.desired_capacity("batch-asg") == 1  # every refused pass left it alone
    world.ok(world.reconcile())
    assert world.desired_capacity("batch-asg") == 2

    # -- prune: a new revision; the old one is deregistered, then deleted ---------------
    world.write("pruned.yaml", job("pruned", duration=1))
    world.ok(world.reconcile())
    clock.advance(2)
    world.ok(world.reconcile())
    world.write("pruned.yaml", job("pruned", duration=1, run_id="2").replace("busybox", "b:2"))

    def prune() -> subprocess.CompletedProcess[str]:
        return world.cli("reconcile", "--once", "--keep-revisions", "1", "--delete-inactive")

    world.ok(world.cli("reconcile", "--once", "--no-prune"))  # registers revision 2
    world.refused_without("TaskDefinitionsPrune", "prune", prune)
    for _ in range(2):  # deregistered in one pass, deleted in the next
        world.ok(prune())
    assert world.calls("ecs", "DeregisterTaskDefinition") >= 1
    assert world.calls("ecs", "DeleteTaskDefinitions") >= 1

    # -- stop: past its deadline, late's task is stopped; its notification is published --
    clock.advance(300)
    # The refused Publish leaves the notification to the next pass.
    world.refused_without("Notify", "notify", world.reconcile)
    late = world.run("late")
    assert (late["phase"], late["reason"]) == ("Failed", "DeadlineExceeded")
    assert world.sandbox.received(queue) == []
    world.ok(world.reconcile())
    [envelope] = world.sandbox.received(queue)
    assert json.loads(envelope["Message"])["reason"] == "DeadlineExceeded"

    # -- logs ----------------------------------------------------------------------------
    world.refused_without("RunLogs", "logs", lambda: world.cli("logs", "alpha"))
    logs = world.ok(world.cli("logs", "alpha"))
    assert "app exited with code 0 (sandbox)" in logs.stdout

    # -- scale in: the group, now opted in, gives its idle second instance back --------
    world.sandbox.client("autoscaling", counted=False).create_or_update_tags(
        Tags=[
            {
                "ResourceId": "batch-asg",
                "ResourceType": "auto-scaling-group",
                "Key": TAG_SCALE_IN,
                "Value": OWNER,
                "PropagateAtLaunch": False,
            }
        ]
    )
    clock.advance(600)  # wide-1 and wide-2 end
    world.ok(world.reconcile())  # both instances are idle: their idle clocks start
    assert {world.run(n)["phase"] for n in ("wide-1", "wide-2")} == {"Succeeded"}
    clock.advance(DEFAULT_IDLE_SECONDS)
    world.refused_without("DrainContainerInstances", "scale in", world.reconcile)
    drains = world.calls("ecs", "UpdateContainerInstancesState")  # the refused one counts
    world.ok(world.reconcile())
    assert world.calls("ecs", "UpdateContainerInstancesState") == drains + 1
    clock.advance(DRAIN_SETTLE_SECONDS)
    world.refused_without("ScaleIn", "scale in", world.reconcile)
    assert world.desired_capacity("batch-asg") == 2  # the refused pass terminated nothing
    terminations = world.calls("autoscaling", "TerminateInstanceInAutoScalingGroup")
    world.ok(world.reconcile())
    assert world.calls("autoscaling", "TerminateInstanceInAutoScalingGroup") == terminations + 1
    assert world.desired_capacity("batch-asg") == 1

    # -- run --events-queue: the loop reads the queue and deletes what it acted on ------
    url = world.sandbox.create_events_queue(QUEUE, ["batch"])
    run = [*world.argv("run", "--metrics-addr", "127.0.0.1:0", "--events-queue", url)]
    run += ["--resync-seconds", "3600"]

    def events_run() -> subprocess.CompletedProcess[str]:
        child = Child(run, world.env())
        status = child.wait()
        return subprocess.CompletedProcess(run, status, child.output(), "")

    world.refused_without("EventsQueue", "run --events-queue", events_run)
    world.write("ping.yaml", job("ping", duration=5))
    child = Child(run, world.env())
    try:
        child.wait_line("receiving ECS events from ")
        child.wait_line("RunTask ping/1")
        clock.advance(6)
        world.sandbox.tick()  # ping stops: its STOPPED event goes to the queue
        assert world.sandbox.wait_for_calls("sqs", "DeleteMessageBatch", timeout=60)
        assert child.stop() == 0
    finally:
        child.kill()
    assert "not authorized" not in child.output()

    # -- every statement was needed, or is one moto cannot check ------------------------
    sids = {s["Sid"] for s in world.policy["Statement"]}
    assert set(world.needed) == sids - set(NOT_ENFORCED_BY_MOTO), world.needed
    lax = world.policy
    for sid in NOT_ENFORCED_BY_MOTO:
        lax = without(lax, sid)
    world.sandbox.set_user_policy(USER, moto_view(lax))
    world.write("delta.yaml", with_roles(job("delta", duration=30)).replace("busybox", "b:d"))
    world.ok(world.reconcile())  # registers and runs with roles and tags: moto never asks
    assert world.run("delta")["attempts"][-1]["taskArns"]
