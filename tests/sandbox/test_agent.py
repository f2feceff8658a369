"""Patch d: the simulated agent drives tasks on the sandbox clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.ecs.models import ecs_backends

from controller.clock import FakeClock
from controller.sandbox import Sandbox
from controller.sandbox.patches import ACCOUNT_ID
from tests.sandbox.helpers import describe, environment, register


@pytest.fixture
def cluster(sandbox: Sandbox) -> str:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1, cpu=4096, memory=16384)
    return "batch"


def containers(**sandbox_variables: object) -> list[dict[str, Any]]:
    return [{"name": "app", "image": "x", "environment": environment(**sandbox_variables)}]


def run(ecs: Any, cluster: str, **request: Any) -> dict[str, Any]:
    [task] = ecs.run_task(cluster=cluster, taskDefinition="job", **request)["tasks"]
    return dict(task)


def test_a_task_runs_for_its_duration_and_exits_with_its_code(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(ecs, containerDefinitions=containers(SANDBOX_EXIT_CODE=3, SANDBOX_DURATION_SECONDS=10))
    started = clock.now()
    task = run(ecs, cluster)
    assert (task["lastStatus"], task["desiredStatus"]) == ("PENDING", "RUNNING")
    assert "exitCode" not in task["containers"][0]

    clock.advance(5)
    task = describe(ecs, cluster, task["taskArn"])
    assert task["lastStatus"] == "RUNNING"
    assert task["containers"][0]["lastStatus"] == "RUNNING"
    assert "exitCode" not in task["containers"][0]

    clock.advance(6)
    task = describe(ecs, cluster, task["taskArn"])
    assert (task["lastStatus"], task["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["stoppedAt"] == started + timedelta(seconds=10)
    assert task["startedAt"] == task["createdAt"] == started
    [container] = task["containers"]
    assert (container["name"], container["lastStatus"], container["exitCode"]) == (
        "app",
        "STOPPED",
        3,
    )


def test_defaults_are_one_second_and_exit_code_zero(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(ecs)
    task = run(ecs, cluster)
    clock.advance(1)
    task = describe(ecs, cluster, task["taskArn"])
    assert task["lastStatus"] == "STOPPED"
    assert task["containers"][0]["exitCode"] == 0


def test_every_container_is_described_with_its_own_exit_code(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    definitions = [
        {
            "name": "app",
            "image": "a",
            "environment": environment(SANDBOX_DURATION_SECONDS=20, SANDBOX_EXIT_CODE=1),
        },
        {
            "name": "sidecar",
            "image": "b",
            "essential": False,
            "environment": environment(SANDBOX_EXIT_CODE=2),
        },
        {
            "name": "log-router",
            "image": "c",
            "environment": environment(SANDBOX_DURATION_SECONDS=30),
        },
    ]
    register(ecs, containerDefinitions=definitions)
    task = run(ecs, cluster)
    assert [c["name"] for c in task["containers"]] == ["app", "sidecar", "log-router"]
    assert {c["taskArn"] for c in task["containers"]} == {task["taskArn"]}
    assert len({c["containerArn"] for c in task["containers"]}) == 3
    clock.advance(19)
    assert describe(ecs, cluster, task["taskArn"])["lastStatus"] == "RUNNING"
    clock.advance(1)  # the first essential container ends the task
    task = describe(ecs, cluster, task["taskArn"])
    assert task["lastStatus"] == "STOPPED"
    assert {c["name"]: c["exitCode"] for c in task["containers"]} == {
        "app": 1,
        "sidecar": 2,
        "log-router": 0,
    }


def test_run_task_overrides_apply_on_top_of_the_definition(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(
        ecs, containerDefinitions=containers(SANDBOX_EXIT_CODE=0, SANDBOX_DURATION_SECONDS=100)
    )
    overrides = {
        "containerOverrides": [{"name": "app", "environment": environment(SANDBOX_EXIT_CODE=7)}]
    }
    task = run(ecs, cluster, overrides=overrides)
    clock.advance(100)
    assert describe(ecs, cluster, task["taskArn"])["containers"][0]["exitCode"] == 7


def test_stop_task_kills_running_containers(ecs: Any, cluster: str, clock: FakeClock) -> None:
    register(ecs, containerDefinitions=containers(SANDBOX_DURATION_SECONDS=600))
    task = run(ecs, cluster)
    clock.advance(30)
    stopped = ecs.stop_task(cluster=cluster, task=task["taskArn"], reason="deadline exceeded")[
        "task"
    ]
    assert (stopped["lastStatus"], stopped["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "deadline exceeded"
    assert stopped["stoppedAt"] == clock.now()
    assert stopped["containers"][0]["exitCode"] == 137


def test_stopping_a_stopped_task_changes_nothing(ecs: Any, cluster: str, clock: FakeClock) -> None:
    register(ecs, cpu="1024", containerDefinitions=containers(SANDBOX_EXIT_CODE=4))
    task = run(ecs, cluster)
    clock.advance(2)
    again = ecs.stop_task(cluster=cluster, task=task["taskArn"], reason="too late")["task"]
    assert (again["stopCode"], again["containers"][0]["exitCode"]) == (
        "EssentialContainerExited",
        4,
    )
    instance = ecs.describe_container_instances(
        cluster=cluster, containerInstances=[task["containerInstanceArn"]]
    )["containerInstances"][0]
    cpu = next(r for r in instance["remainingResources"] if r["name"] == "CPU")
    assert cpu["integerValue"] == 4096  # released once, not twice


def test_stopping_an_unknown_task_is_an_invalid_parameter(ecs: Any, cluster: str) -> None:
    with pytest.raises(ClientError) as raised:
        ecs.stop_task(cluster=cluster, task="0123456789abcdef")
    assert raised.value.response["Error"]["Code"] == "InvalidParameterException"


def test_a_task_that_fails_to_start_never_runs(ecs: Any, cluster: str, clock: FakeClock) -> None:
    register(
        ecs,
        containerDefinitions=containers(
            SANDBOX_STOP_CODE="TaskFailedToStart", SANDBOX_DURATION_SECONDS=5
        ),
    )
    task = run(ecs, cluster)
    clock.advance(1)
    assert describe(ecs, cluster, task["taskArn"])["lastStatus"] == "PENDING"
    clock.advance(4)
    task = describe(ecs, cluster, task["taskArn"])
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "TaskFailedToStart")
    assert task["stoppedReason"].startswith("CannotPullContainerError")
    assert "startedAt" not in task
    assert "exitCode" not in task["containers"][0]


def test_a_spot_interruption_stops_a_running_task_without_exit_codes(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(
        ecs,
        containerDefinitions=containers(
            SANDBOX_STOP_CODE="SpotInterruption", SANDBOX_DURATION_SECONDS=5
        ),
    )
    task = run(ecs, cluster)
    clock.advance(1)
    assert describe(ecs, cluster, task["taskArn"])["lastStatus"] == "RUNNING"
    clock.advance(4)
    task = describe(ecs, cluster, task["taskArn"])
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "SpotInterruption")
    assert "exitCode" not in task["containers"][0]


@pytest.mark.parametrize(
    "variables",
    [
        {"SANDBOX_EXIT_CODE": "one"},
        {"SANDBOX_DURATION_SECONDS": "-1"},
        {"SANDBOX_STOP_CODE": "Oops"},
    ],
)
def test_malformed_sandbox_variables_are_rejected_before_placement(
    ecs: Any, cluster: str, variables: dict[str, str]
) -> None:
    register(ecs, containerDefinitions=containers(**variables))
    with pytest.raises(ClientError, match="sandbox: SANDBOX_"):
        run(ecs, cluster)
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []


def test_stopped_tasks_are_forgotten_after_an_hour(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(ecs, containerDefinitions=containers(SANDBOX_DURATION_SECONDS=10))
    arn = run(ecs, cluster)["taskArn"]
    clock.advance(10 + 3599)
    assert ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"] == [arn]
    assert describe(ecs, cluster, arn)["lastStatus"] == "STOPPED"
    clock.advance(1)
    assert ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"] == []
    response = ecs.describe_tasks(cluster=cluster, tasks=[arn])
    assert response["tasks"] == []
    assert response["failures"] == [{"arn": arn, "reason": "MISSING"}]


def test_tick_advances_tasks_without_any_request(
    sandbox: Sandbox, ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(ecs, containerDefinitions=containers(SANDBOX_DURATION_SECONDS=10))
    arn = run(ecs, cluster)["taskArn"]
    clock.advance(10)
    backend_task = ecs_backends[ACCOUNT_ID]["us-east-1"].tasks["batch"][arn]
    assert backend_task.status == "PENDING"  # nobody asked yet
    sandbox.tick()
    assert backend_task.status == "STOPPED"


def test_list_tasks_lists_running_tasks_unless_asked_for_stopped_ones(
    ecs: Any, cluster: str, clock: FakeClock
) -> None:
    register(ecs, containerDefinitions=containers(SANDBOX_DURATION_SECONDS=5))
    short = run(ecs, cluster, startedBy="ejc/a")["taskArn"]
    register(ecs, containerDefinitions=containers(SANDBOX_DURATION_SECONDS=50))
    long = run(ecs, cluster, startedBy="ejc/b")["taskArn"]
    clock.advance(5)
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == [long]
    assert ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"] == [short]
    assert ecs.list_tasks(cluster=cluster, startedBy="ejc/b")["taskArns"] == [long]
    assert ecs.list_tasks(cluster=cluster, startedBy="ejc/a")["taskArns"] == []
    assert ecs.list_tasks(cluster=cluster, startedBy="ejc/a", desiredStatus="STOPPED")[
        "taskArns"
    ] == [short]


def test_list_tasks_matches_the_cluster_exactly_and_paginates(
    sandbox: Sandbox, ecs: Any, cluster: str
) -> None:
    sandbox.create_cluster("batch-2")
    sandbox.add_container_instances("batch-2", 1)
    register(
        ecs, cpu="16", memory="16", containerDefinitions=containers(SANDBOX_DURATION_SECONDS=60)
    )
    for _ in range(15):
        ecs.run_task(cluster=cluster, taskDefinition="job", count=10)
    ecs.run_task(cluster="batch-2", taskDefinition="job")
    first = ecs.list_tasks(cluster=cluster)
    assert len(first["taskArns"]) == 100
    assert "nextToken" in first
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, PaginationConfig={"PageSize": 40}
    )
    arns = [arn for page in pages for arn in page["taskArns"]]
    assert len(arns) == len(set(arns)) == 150
    assert all("/batch/" in arn for arn in arns)


def test_describe_tasks_only_looks_in_the_given_cluster(
    sandbox: Sandbox, ecs: Any, cluster: str
) -> None:
    sandbox.create_cluster("other")
    register(ecs)
    arn = run(ecs, cluster)["taskArn"]
    response = ecs.describe_tasks(cluster="other", tasks=[arn])
    assert response["failures"] == [{"arn": arn, "reason": "MISSING"}]
    with pytest.raises(ClientError, match="100"):
        ecs.describe_tasks(cluster=cluster, tasks=[arn] * 101)


def test_tags_are_described_when_asked_for(ecs: Any, cluster: str) -> None:
    register(
        ecs, tags=[{"key": "team", "value": "data"}, {"key": "run", "value": "from-definition"}]
    )
    arn = run(
        ecs,
        cluster,
        tags=[
            {"key": "ecs-job-controller/run", "value": "nightly"},
            {"key": "run", "value": "from-request"},
        ],
        propagateTags="TASK_DEFINITION",
    )["taskArn"]
    tagged = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]
    assert {t["key"]: t["value"] for t in tagged["tags"]} == {
        "ecs-job-controller/run": "nightly",
        "run": "from-request",
        "team": "data",
    }
    assert "tags" not in ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


@pytest.mark.parametrize(("attempt", "want"), [("1", 3), ("2", 0), ("5", 0)])
def test_a_list_of_exit_codes_gives_one_per_attempt(
    ecs: Any, cluster: str, clock: FakeClock, attempt: str, want: int
) -> None:
    register(ecs, containerDefinitions=containers(SANDBOX_EXIT_CODE="3,0"))
    tags = [{"key": "ecs-job-controller/attempt", "value": attempt}]
    task = run(ecs, cluster, tags=tags)
    clock.advance(2)
    assert describe(ecs, cluster, task["taskArn"])["containers"][0]["exitCode"] == want


@pytest.mark.parametrize(
    ("attempt", "stop_code", "exit_code"),
    [
        ("1", "SpotInterruption", None),
        ("2", "EssentialContainerExited", 2),
        ("3", "EssentialContainerExited", 2),
    ],
)
def test_a_list_of_stop_codes_gives_one_per_attempt_and_empty_runs_normally(
    ecs: Any, cluster: str, clock: FakeClock, attempt: str, stop_code: str, exit_code: int | None
) -> None:
    register(
        ecs,
        containerDefinitions=containers(SANDBOX_STOP_CODE="SpotInterruption,", SANDBOX_EXIT_CODE=2),
    )
    tags = [{"key": "ecs-job-controller/attempt", "value": attempt}]
    task = run(ecs, cluster, tags=tags)
    clock.advance(2)
    task = describe(ecs, cluster, task["taskArn"])
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", stop_code)
    assert task["containers"][0].get("exitCode") == exit_code
