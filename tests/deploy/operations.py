"""The AWS operations the product can call, derived from the gateways' code, and their IAM actions.

`deploy/iam-policy.json` must grant exactly what the product calls. Instead
of a hand-kept list (which drifts), this reads every module under
`controller/aws/` with `ast` and collects each method called on a typed
boto3 client: `self._ecs.run_task(...)`, `once.register_task_definition(...)`,
and the operations behind `get_paginator("list_tasks")` and
`get_waiter("table_exists")` (a waiter polls one operation). A receiver is a
client when it is

* a call of one of `AwsSession`'s typed accessors (`self._session.ecs()`),
* a property whose return annotation is a typed client (`-> ECSClient`), or
* a local name assigned from either (`client = self._session.logs()`).

Method names are turned into operation names with botocore's own service
model (its snake_case map), so a misspelt or unknown method fails here.
Operations become IAM actions as `<IAM prefix>:<Operation>`, except where
IAM names the permission differently (`IAM_EXCEPTIONS`, documented case by
case) or where one call needs more than its own action (`IMPLIED_ACTIONS`).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore.model import ServiceModel

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS = ROOT / "controller" / "aws"

#: AwsSession's typed accessors -> boto3 service name.
ACCESSORS = {
    "ecs": "ecs",
    "autoscaling": "autoscaling",
    "ec2": "ec2",
    "s3": "s3",
    "dynamodb": "dynamodb",
    "logs": "logs",
    "sqs": "sqs",
    "sns": "sns",
    "events": "events",
}

#: The stub packages' client classes -> boto3 service name.
CLIENT_TYPES = {
    "ECSClient": "ecs",
    "AutoScalingClient": "autoscaling",
    "EC2Client": "ec2",
    "S3Client": "s3",
    "DynamoDBClient": "dynamodb",
    "CloudWatchLogsClient": "logs",
    "SQSClient": "sqs",
    "SNSClient": "sns",
    "EventBridgeClient": "events",
}

#: boto3 service name -> IAM service prefix (they differ for a few services).
IAM_PREFIX = {
    "ecs": "ecs",
    "autoscaling": "autoscaling",
    "ec2": "ec2",
    "s3": "s3",
    "dynamodb": "dynamodb",
    "logs": "logs",
    "sqs": "sqs",
    "sns": "sns",
    "events": "events",
}

#: Client methods that are not API operations.
NOT_OPERATIONS = frozenset({"get_paginator", "get_waiter", "can_paginate", "close"})

#: Where IAM names the permission differently from the operation.
IAM_EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # S3 authorizes object listing on the bucket: ListObjects(V2) needs s3:ListBucket.
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    # HEAD of an object is authorized as reading it.
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    # SQS has no permissions of its own for batch calls: each entry is
    # authorized as the single call (DeleteMessageBatch -> sqs:DeleteMessage).
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
}

#: Permissions one call needs besides its own action.
IMPLIED_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # Tags given at creation are authorized as ecs:TagResource (ECS's tagging
    # authorization, on by default since 2023), and a task or execution role
    # in the task definition (or in RunTask's overrides) must be passed.
    ("ecs", "RegisterTaskDefinition"): ("ecs:TagResource", "iam:PassRole"),
    ("ecs", "RunTask"): ("ecs:TagResource", "iam:PassRole"),
}


@dataclass(frozen=True, order=True)
class Operation:
    """One API operation the product can call, and where the code calls it."""

    service: str
    name: str
    #: `path:line` of the first call found
    where: str


@functools.cache
def _botocore() -> botocore.session.Session:
    return botocore.session.get_session()


def _service_model(service: str) -> ServiceModel:
    return _botocore().get_service_model(service)


@functools.cache
def _method_to_operation(service: str) -> dict[str, str]:
    """botocore's own snake_case -> OperationName map for `service`."""
    from botocore import xform_name

    model = _service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def _waiter_operation(service: str, waiter: str) -> str:
    from botocore import xform_name

    model = _botocore().get_waiter_model(service)
    names = {xform_name(n): n for n in model.waiter_names}
    return str(model.get_waiter(names[waiter]).operation)


def _annotation_service(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    text = ast.unparse(node).strip("'\"")
    return CLIENT_TYPES.get(text.rsplit(".", 1)[-1])


def _accessor_service(node: ast.expr) -> str | None:
    """`self._session.ecs(...)` / `session.logs()` -> its service."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ACCESSORS
        and "session" in ast.unparse(node.func.value)
    ):
        return ACCESSORS[node.func.attr]
    return None


class _ModuleScan:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        #: properties (and methods) returning a typed client, by name
        self.client_members: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.FunctionDef):
                service = _annotation_service(node.returns)
                if service is not None:
                    self.client_members[node.name] = service

    def receiver_service(self, node: ast.expr, local: dict[str, str]) -> str | None:
        if isinstance(node, ast.Name):
            return local.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in self.client_members:
            return self.client_members[node.attr]
        return _accessor_service(node)

    def calls(self) -> Iterator[tuple[str, str, int]]:
        """(service, snake_case method or 'paginator:x'/'waiter:x', line) of each client call."""
        for function in ast.walk(self.tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if function.name in self.client_members:
                continue  # the accessor property itself
            local: dict[str, str] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        service = self.receiver_service(node.value, local)
                        if service is not None:
                            local[target.id] = service
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                service = self.receiver_service(node.func.value, local)
                if service is None:
                    continue
                method = node.func.attr
                if method in ("get_paginator", "get_waiter"):
                    [argument] = node.args
                    assert isinstance(argument, ast.Constant), ast.unparse(node)
                    kind = "paginator" if method == "get_paginator" else "waiter"
                    yield service, f"{kind}:{argument.value}", node.lineno
                elif method not in NOT_OPERATIONS and method != "meta":
                    yield service, method, node.lineno


def product_operations(root: Path = GATEWAYS) -> list[Operation]:
    """Every (service, OperationName) called under controller/aws/, sorted."""
    found: dict[tuple[str, str], Operation] = {}
    for path in sorted(root.rglob("*.py")):
        scan = _ModuleScan(path)
        shown = path.relative_to(root.parent) if root != GATEWAYS else path.relative_to(ROOT)
        for service, method, line in scan.calls():
            if method.startswith("waiter:"):
                name = _waiter_operation(service, method.removeprefix("waiter:"))
            else:
                snake = method.removeprefix("paginator:")
                operations = _method_to_operation(service)
                if snake not in operations:
                    raise AssertionError(f"{shown}:{line}: {service} has no operation {snake!r}")
                name = operations[snake]
            where = f"{shown}:{line}"
            found.setdefault((service, name), Operation(service, name, where))
    return sorted(found.values())


def iam_actions(operation: Operation) -> tuple[str, ...]:
    """The IAM actions one operation needs (its own, renamed where IAM differs, plus implied)."""
    key = (operation.service, operation.name)
    own = IAM_EXCEPTIONS.get(key, (f"{IAM_PREFIX[operation.service]}:{operation.name}",))
    return own + IMPLIED_ACTIONS.get(key, ())


def required_actions(operations: list[Operation]) -> dict[str, list[Operation]]:
    """IAM action -> the operations that need it."""
    needed: dict[str, list[Operation]] = {}
    for operation in operations:
        for action in iam_actions(operation):
            needed.setdefault(action, []).append(operation)
    return needed
