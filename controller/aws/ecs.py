"""The one narrow door to ECS: typed calls in our words, errors in our kinds.

Nothing outside `controller.aws` sees a boto3 response. Callers get
`ObservedTask`, `RunTaskOutcome` and `DescribedRevision`; they never parse a
`failures` string themselves. Described revisions are cached by ARN for the
process lifetime: revisions are immutable in ECS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from controller.aws.errors import AwsTerminalError, call
from controller.aws.session import AwsSession
from controller.model.identity import TAG_OWNER, TAG_SPEC_HASH
from controller.model.observed import ObservedTask
from controller.model.run import RevisionRecord, TaskRecord
from controller.model.taskdef import spec_hash

#: DescribeTasks takes at most 100 ARNs per call.
DESCRIBE_BATCH = 100

#: RunTask failure reasons that mean "no room now", not "never" (DESIGN.md §6).
CAPACITY_REASONS = ("RESOURCE:", "AGENT")
NO_INSTANCES = "No Container Instances were found"

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

#: the task states ListTasks filters by
DesiredStatus = Literal["PENDING", "RUNNING", "STOPPED"]


class RunTaskResult(StrEnum):
    """What happened to a RunTask call."""

    PLACED = "placed"
    UNPLACEABLE = "unplaceable"
    REJECTED = "rejected"


@dataclass(frozen=True)
class RunTaskOutcome:
    """RunTask's answer, classified: placed / cannot be placed now / refused for good."""

    result: RunTaskResult
    tasks: tuple[ObservedTask, ...] = ()
    #: for UNPLACEABLE: the reasons ECS gave (RESOURCE:CPU, ...)
    reasons: tuple[str, ...] = ()
    #: for REJECTED: the AWS error
    message: str = ""


@dataclass(frozen=True)
class DeleteRefusal:
    """A revision DeleteTaskDefinitions did not delete, and ECS's reason."""

    arn: str
    reason: str

    def __str__(self) -> str:
        return f"{self.arn}: {self.reason}"


@dataclass(frozen=True)
class DescribedRevision:
    """A task-definition revision as described, with its tags."""

    arn: str
    family: str
    revision: int
    status: str
    task_definition: Mapping[str, Any]
    tags: Mapping[str, str]


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def observed_task(raw: Mapping[str, Any]) -> ObservedTask:
    """Our view of one DescribeTasks/RunTask task entry."""
    exit_codes: dict[str, int | None] = {}
    for container in raw.get("containers") or []:
        name = container.get("name")
        if name is not None:
            code = container.get("exitCode")
            exit_codes[str(name)] = int(code) if code is not None else None
    record = TaskRecord(
        arn=str(raw["taskArn"]),
        last_status=str(raw.get("lastStatus") or "PROVISIONING"),
        exit_codes=exit_codes,
        stop_code=raw.get("stopCode"),
        stopped_reason=raw.get("stoppedReason"),
        started_at=_time(raw.get("startedAt")) or _time(raw.get("createdAt")),
        stopped_at=_time(raw.get("stoppedAt")),
    )
    tags = _tag_map(raw.get("tags"))
    cluster = str(raw.get("clusterArn", ""))
    return ObservedTask(
        record=record,
        cluster=cluster,
        task_definition_arn=str(raw.get("taskDefinitionArn", "")),
        started_by=raw.get("startedBy"),
        tags=tags,
    )


def _tag_map(tags: Any) -> dict[str, str]:
    """ECS's [{key, value}] tag list as a dict."""
    return {str(t["key"]): str(t.get("value", "")) for t in tags or [] if "key" in t}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


class EcsGateway:
    """ECS operations the controller needs, and nothing else."""

    def __init__(self, session: AwsSession) -> None:
        self._session = session
        self._revisions: dict[str, DescribedRevision] = {}

    @property
    def _ecs(self) -> ECSClient:
        return self._session.ecs()

    # -- task definitions -------------------------------------------------

    def list_active_revisions(self, family: str) -> list[str]:
        """ARNs of the family's ACTIVE revisions, oldest first (paginated)."""
        arns: list[str] = []
        paginator = self._ecs.get_paginator("list_task_definitions")
        pages = paginator.paginate(familyPrefix=family, status="ACTIVE", sort="ASC")
        for page in call("ListTaskDefinitions", lambda: list(pages)):
            arns.extend(page.get("taskDefinitionArns", []))
        # familyPrefix is a prefix on AWS: keep the family itself only.
        return [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]

    def describe_revision(self, ref: str) -> DescribedRevision:
        """Describe a revision (family, family:revision or ARN) with its tags.

        Results are cached by ARN; a bare family is always asked (it means "latest").
        """
        cached = self._revisions.get(ref)
        if cached is not None:
            return cached
        answer = call(
            "DescribeTaskDefinition",
            lambda: self._ecs.describe_task_definition(taskDefinition=ref, include=["TAGS"]),
        )
        return self._remember(answer["taskDefinition"], _tag_map(answer.get("tags")))

    def _remember(self, td: Mapping[str, Any], tags: Mapping[str, str]) -> DescribedRevision:
        """Cache a described revision by ARN (revisions never change)."""
        described = DescribedRevision(
            arn=str(td["taskDefinitionArn"]),
            family=str(td["family"]),
            revision=int(td["revision"]),
            status=str(td.get("status", "ACTIVE")),
            task_definition=td,
            tags=tags,
        )
        self._revisions[described.arn] = described
        return described

    def register(
        self, task_definition: Mapping[str, Any], tags: Mapping[str, str]
    ) -> DescribedRevision:
        """Register a revision with our tags (user tags kept); returns it described.

        One attempt, never retried by botocore: after a 5xx or a timeout ECS
        may have registered it anyway, and only the caller can look (by the
        spec-hash tag) before trying again. Errors come as AwsTransientError.
        """
        request = dict(task_definition)
        all_tags = {**_tag_map(request.pop("tags", None)), **tags}
        request["tags"] = _tag_list(all_tags)
        once = self._session.ecs(retries=False)
        answer = call("RegisterTaskDefinition", lambda: once.register_task_definition(**request))
        # RegisterTaskDefinition answers with the tags it stored (when it does).
        return self._remember(answer["taskDefinition"], _tag_map(answer.get("tags")) or all_tags)

    def deregister(self, arn: str) -> str:
        """Deregister a revision; returns its status afterwards (INACTIVE)."""
        answer = call(
            "DeregisterTaskDefinition",
            lambda: self._ecs.deregister_task_definition(taskDefinition=arn),
        )
        self._revisions.pop(arn, None)
        return str(answer["taskDefinition"].get("status", "INACTIVE"))

    def delete(self, arns: Sequence[str]) -> list[DeleteRefusal]:
        """Delete INACTIVE revisions (at most 10); returns the ones ECS refused, with why."""
        answer = call(
            "DeleteTaskDefinitions",
            lambda: self._ecs.delete_task_definitions(taskDefinitions=list(arns)),
        )
        for arn in arns:
            self._revisions.pop(arn, None)
        return [
            DeleteRefusal(str(f.get("arn")), str(f.get("reason")))
            for f in answer.get("failures") or []
        ]

    # -- tasks ------------------------------------------------------------

    def run_task(self, request: Mapping[str, Any]) -> RunTaskOutcome:
        """RunTask, classified: placed, unplaceable for lack of capacity, or rejected."""
        try:
            answer = call("RunTask", lambda: self._ecs.run_task(**request))
        except AwsTerminalError as exc:
            if NO_INSTANCES in exc.aws_message:
                return RunTaskOutcome(RunTaskResult.UNPLACEABLE, reasons=(NO_INSTANCES,))
            return RunTaskOutcome(RunTaskResult.REJECTED, message=str(exc))
        tasks = tuple(observed_task(t) for t in answer.get("tasks") or [])
        failures = answer.get("failures") or []
        reasons = tuple(
            str(f.get("reason", "")) + (f" ({f['detail']})" if f.get("detail") else "")
            for f in failures
        )
        if tasks:
            return RunTaskOutcome(RunTaskResult.PLACED, tasks=tasks, reasons=reasons)
        capacity = [r for r in reasons if r.startswith(CAPACITY_REASONS)]
        if capacity or not reasons:
            # No failures and no tasks is what moto answers when nothing fits.
            return RunTaskOutcome(
                RunTaskResult.UNPLACEABLE, reasons=tuple(capacity) or ("no task placed",)
            )
        return RunTaskOutcome(RunTaskResult.REJECTED, message="; ".join(reasons))

    def list_tasks(self, cluster: str, started_by: str, desired_status: DesiredStatus) -> list[str]:
        """ARNs of the cluster's tasks started by us with that desired status (paginated)."""
        paginator = self._ecs.get_paginator("list_tasks")
        pages = paginator.paginate(
            cluster=cluster, startedBy=started_by, desiredStatus=desired_status
        )
        arns: list[str] = []
        for page in call("ListTasks", lambda: list(pages)):
            arns.extend(page.get("taskArns", []))
        return arns

    def describe_tasks(
        self, cluster: str, arns: Sequence[str]
    ) -> tuple[list[ObservedTask], list[str]]:
        """Describe tasks with their tags in batches of 100; returns (found, missing ARNs)."""
        found: list[ObservedTask] = []
        missing: list[str] = []
        for start in range(0, len(arns), DESCRIBE_BATCH):
            batch = list(arns[start : start + DESCRIBE_BATCH])
            answer = call(
                "DescribeTasks",
                lambda b=batch: self._ecs.describe_tasks(
                    cluster=cluster, tasks=b, include=["TAGS"]
                ),  # type: ignore[misc]
            )
            found.extend(observed_task(t) for t in answer.get("tasks") or [])
            missing.extend(
                str(f["arn"])
                for f in answer.get("failures") or []
                if f.get("reason") == "MISSING" and f.get("arn")
            )
        return found, missing

    def stop_task(self, cluster: str, arn: str, reason: str) -> ObservedTask | None:
        """Ask ECS to stop a task; None if ECS no longer knows it."""
        try:
            answer = call(
                "StopTask",
                lambda: self._ecs.stop_task(cluster=cluster, task=arn, reason=reason[:255]),
            )
        except AwsTerminalError as exc:
            if exc.code in ("InvalidParameterException", "ClientException") and "not found" in (
                exc.aws_message.lower()
            ):
                return None
            raise
        return observed_task(answer["task"])


def tasks_by_arn(tasks: Iterable[ObservedTask]) -> dict[str, ObservedTask]:
    """Index observed tasks by ARN."""
    return {t.arn: t for t in tasks}


def revision_record(described: DescribedRevision) -> RevisionRecord:
    """What we remember of a described revision: its hashes and owner."""
    body = dict(described.task_definition)
    user_tags = [{"key": k, "value": v} for k, v in sorted(described.tags.items())]
    if user_tags:
        body["tags"] = user_tags
    return RevisionRecord(
        arn=described.arn,
        family=described.family,
        revision=described.revision,
        spec_hash=spec_hash(body),
        owner=described.tags.get(TAG_OWNER),
        status=described.status,
        tagged_hash=described.tags.get(TAG_SPEC_HASH),
    )
