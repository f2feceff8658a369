"""deploy/cloudformation.yaml: its policy is deploy/iam-policy.json, and moto can create it.

cfn-lint checks the template against CloudFormation's resource schemas
(`make lint`); here moto's CloudFormation creates the stack in-process and
the test reads back what it made: the ledger table's keys and index, the
task role's policy (equal to deploy/iam-policy.json rendered with the same
parameters), the service's desired count and the controller container's
command and environment. moto keeps less of a task definition than ECS does
(roles, cpu, network mode and health check are dropped), so those are
checked in the template itself.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode_str
from moto import mock_aws
from moto.cloudformation import parsing

from scripts.render_iam_policy import CONDITIONAL_STATEMENTS, load, render, to_cloudformation
from tests.deploy.operations import ROOT

TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
DOCKERFILE = ROOT / "Dockerfile"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def template() -> dict[str, Any]:
    """The template as CloudFormation reads it (short-form tags as Fn:: mappings), plain."""
    decoded, problems = decode_str(TEMPLATE.read_text())
    assert not problems, problems
    plain: dict[str, Any] = json.loads(json.dumps(decoded))
    return plain


def test_the_task_roles_inline_policy_is_deploy_iam_policy_json() -> None:
    [policy] = template()["Resources"]["TaskRole"]["Properties"]["Policies"]
    assert policy["PolicyDocument"] == to_cloudformation(load())


def test_the_stack_has_a_parameter_for_every_placeholder_of_the_policy() -> None:
    resources = template()["Resources"]
    parameters = template()["Parameters"]
    document = json.dumps(load())
    for name in ("ClusterArns", "PassRoleArns", "SourceBucket", "SourcePrefix"):
        assert name in parameters
        assert f"${{{name}}}" in document
    # ${LedgerTable} is the table resource: Fn::Sub reads its Ref, the table name.
    assert resources["LedgerTable"]["Type"] == "AWS::DynamoDB::Table"
    assert set(CONDITIONAL_STATEMENTS.values()) <= set(template()["Conditions"])


def test_the_ledger_table_is_kept_safe() -> None:
    table = template()["Resources"]["LedgerTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True


def test_the_controller_container_has_a_health_check_and_the_metrics_port() -> None:
    task = template()["Resources"]["TaskDefinition"]["Properties"]
    assert task["NetworkMode"] == "awsvpc"
    assert template()["Parameters"]["LaunchType"]["Default"] == "FARGATE"
    controller = task["ContainerDefinitions"][0]
    assert controller["Name"] == "controller"
    health = controller["HealthCheck"]["Command"]
    assert health[:3] == ["CMD", "python", "-c"]
    assert "/healthz" in health[3]["Fn::Sub"]
    assert controller["PortMappings"][0]["ContainerPort"] == {"Ref": "MetricsPort"}
    assert template()["Parameters"]["DesiredCount"]["Default"] == 2


# -- moto's CloudFormation creates the stack -------------------------------------------


def drop_no_value_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto drop list elements that are `AWS::NoValue`, as CloudFormation does.

    `- !If [Cond, item, !Ref AWS::NoValue]` in a list leaves the item out
    when Cond is false; moto 5 keeps a None in its place (the git-sync
    sidecar's slot in ContainerDefinitions, the S3 statements' slots in the
    policy), which ECS's model then trips over. A fidelity fix, as the
    sandbox's patches are; dicts are already right in moto (a key whose
    value is NoValue is dropped).
    """
    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)
        if isinstance(resource_json, list):
            return [
                value
                for value, raw in zip(cleaned, resource_json, strict=True)
                if not (value is None and isinstance(raw, dict) and _may_be_no_value(raw))
            ]
        return cleaned

    monkeypatch.setattr(parsing, "clean_json", clean_json)


def _may_be_no_value(raw: dict[str, Any]) -> bool:
    return raw.get("Ref") == "AWS::NoValue" or "Fn::If" in raw


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    drop_no_value_elements(monkeypatch)
    with mock_aws():
        yield


def network() -> tuple[str, str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="ejc", Description="ejc", VpcId=vpc)["GroupId"]
    return subnet, group


def stack_parameters(subnet: str, group: str, **extra: str) -> dict[str, str]:
    return {
        "ClusterArns": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/batch,"
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/nightly",
        "Owner": "prod",
        "PassRoleArns": f"arn:aws:iam::{ACCOUNT}:role/job-task",
        "AutoScalingGroupNamePrefix": "batch-",
        "LogGroupNamePrefix": "/ecs/",
        "SourceBucket": "manifests-bucket",
        "SourcePrefix": "jobs/",
        "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/ecs-job-controller:1.0",
        "ServiceCluster": "controller",
        "Subnets": subnet,
        "SecurityGroups": group,
        **extra,
    }


def create_stack(parameters: dict[str, str]) -> dict[str, str]:
    """Create the stack; its resources' physical ids by logical id."""
    boto3.client("ecs", region_name=REGION).create_cluster(clusterName="controller")
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="ejc",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    [stack] = cloudformation.describe_stacks(StackName="ejc")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    resources = cloudformation.list_stack_resources(StackName="ejc")["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def policy_values(parameters: dict[str, str], table: str) -> dict[str, str | list[str]]:
    return {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "LedgerTable": table,
        "SourceBucket": parameters["SourceBucket"],
        "SourcePrefix": parameters["SourcePrefix"],
        "ClusterArns": parameters["ClusterArns"].split(","),
        "PassRoleArns": parameters["PassRoleArns"].split(","),
        "AutoScalingGroupNamePrefix": parameters["AutoScalingGroupNamePrefix"],
        "Owner": parameters["Owner"],
        "LogGroupNamePrefix": parameters["LogGroupNamePrefix"],
        "EventsQueueName": "ecs-job-controller-events",
        "NotifyTopicNamePrefix": "ecs-job-controller-",
    }


def role_policy(role: str) -> Any:
    """The role's inline policy, as moto's IAM stored it from the stack."""
    iam = boto3.client("iam", region_name=REGION)
    document = iam.get_role_policy(RoleName=role, PolicyName="ecs-job-controller")
    stored = document["PolicyDocument"]
    # moto's CloudFormation stores a stack's inline policy as the Python
    # repr of the dict (single quotes), which botocore hands back as text.
    return ast.literal_eval(stored) if isinstance(stored, str) else stored


def containers(resources: dict[str, str]) -> dict[str, dict[str, Any]]:
    ecs = boto3.client("ecs", region_name=REGION)
    described = ecs.describe_task_definition(taskDefinition=resources["TaskDefinition"])
    return {c["name"]: c for c in described["taskDefinition"]["containerDefinitions"]}


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def dockerfile_cmd() -> list[str]:
    """The Dockerfile's CMD (exec form), which the stack repeats with its metrics port."""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("CMD "):
            command: list[str] = json.loads(line.removeprefix("CMD "))
            return command
    raise AssertionError("the Dockerfile has no CMD")


def test_moto_creates_the_stack_with_an_s3_source(aws: None) -> None:
    parameters = stack_parameters(*network())
    resources = create_stack(parameters)

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = dynamodb.describe_table(TableName="ecs-job-controller-ledger")["Table"]
    assert resources["LedgerTable"] == "ecs-job-controller-ledger"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "events_by_run"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["run_key", "sk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True

    assert role_policy(resources["TaskRole"]) == render(
        load(), policy_values(parameters, "ecs-job-controller-ledger")
    )

    ecs = boto3.client("ecs", region_name=REGION)
    [service] = ecs.describe_services(cluster="controller", services=[resources["Service"]])[
        "services"
    ]
    assert service["desiredCount"] == 2

    [controller] = containers(resources).values()
    assert controller["image"] == parameters["Image"]
    command = controller["command"]
    assert command == ["run", "--metrics-addr", "0.0.0.0:9464", "--log-format", "json"]
    assert command[0] == dockerfile_cmd()[0]
    assert environment(controller) == {
        "CONTROLLER_SOURCE": "s3://manifests-bucket/jobs/",
        "CONTROLLER_STATE": "dynamodb://ecs-job-controller-ledger",
        "CONTROLLER_OWNER": "prod",
        "AWS_REGION": REGION,
    }


def test_moto_creates_the_stack_with_a_git_sync_sidecar(aws: None) -> None:
    parameters = stack_parameters(
        *network(), GitRepository="https://example.com/team/jobs.git", SourceBucket=""
    )
    resources = create_stack(parameters)

    # No S3 source: the two S3 statements are left out, nothing else changes.
    assert role_policy(resources["TaskRole"]) == render(
        load(), policy_values(parameters, "ecs-job-controller-ledger"), s3_source=False
    )
    found = containers(resources)
    assert set(found) == {"controller", "git-sync"}
    assert environment(found["controller"])["CONTROLLER_SOURCE"] == "/git/current/manifests"
    assert environment(found["git-sync"])["GITSYNC_REPO"] == parameters["GitRepository"]
    assert found["controller"]["mountPoints"] == [
        {"sourceVolume": "checkout", "containerPath": "/git", "readOnly": True}
    ]
    assert found["git-sync"]["mountPoints"][0]["readOnly"] is False
