"""Desired job runs as frozen dataclasses (DESIGN.md §3).

These are what the planner reasons about. They are built only by
`controller.model.build` from documents the JSON Schema already accepted
(the loader validates them first), so they carry no validation of their
own beyond what the types say. ECS-shaped parts (taskDefinition, RunTask
pass-through fields) stay as JSON-like mappings in the API's own field
names: they are handed to ECS as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, total_ordering
from typing import Any

from controller.model.taskdef import spec_hash

API_VERSION = "ecs-job-controller/v1"

JsonObject = Mapping[str, Any]

#: RunTask request members a manifest passes through unchanged (DESIGN.md §3).
RUN_TASK_PASS_THROUGH = (
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "networkConfiguration",
    "placementConstraints",
    "placementStrategy",
    "overrides",
    "propagateTags",
    "enableExecuteCommand",
    "enableECSManagedTags",
    "group",
    "tags",
)


class Kind(StrEnum):
    """The manifest kinds of our apiVersion."""

    JOB_RUN = "JobRun"
    CRON_JOB = "CronJob"


class ConcurrencyPolicy(StrEnum):
    """What a CronJob does when an occurrence is due while another runs."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


#: Separates a run id from an index in `NAME/RUN_ID#INDEX`; a run id never
#: contains it (the schema's runId pattern), so the text splits one way only.
INDEX_SEPARATOR = "#"


@total_ordering
@dataclass(frozen=True)
class RunKey:
    """Identity of one desired run, `NAME/RUN_ID`, or of one index of it, `NAME/RUN_ID#INDEX`.

    An indexed run (`spec.completions`) is one run key (index None: the run
    as a whole) and one key per index (0..completions-1), each with its own
    attempts in the ledger. The ledgers store a key as (name, `id_text`), so
    every table keyed by (name, run id) holds an index's rows as it holds a
    run's; a run id never contains `#`, so the text splits back one way only.
    """

    name: str
    run_id: str
    index: int | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.id_text}"

    def __lt__(self, other: RunKey) -> bool:
        return self._order < other._order

    @property
    def _order(self) -> tuple[str, str, int]:
        # A run sorts before its indexes, which sort by number (not as text).
        return (self.name, self.run_id, -1 if self.index is None else self.index)

    @property
    def id_text(self) -> str:
        """`RUN_ID`, or `RUN_ID#INDEX` for one index of a run."""
        return self.run_id if self.index is None else f"{self.run_id}{INDEX_SEPARATOR}{self.index}"

    @property
    def run(self) -> RunKey:
        """The key of the whole run (itself for a run that is not an index)."""
        return self if self.index is None else RunKey(self.name, self.run_id)

    def of_index(self, index: int) -> RunKey:
        """The key of one index of this run."""
        return RunKey(self.name, self.run_id, index)

    @classmethod
    def from_id_text(cls, name: str, text: str) -> RunKey:
        """The key of `name` and `id_text` (`RUN_ID` or `RUN_ID#INDEX`)."""
        run_id, separator, index = text.partition(INDEX_SEPARATOR)
        if separator and index.isdigit():
            return cls(name, run_id, int(index))
        return cls(name, text)

    @classmethod
    def parse(cls, text: str) -> RunKey:
        """Parse `NAME/RUN_ID` or `NAME/RUN_ID#INDEX` (the run id contains no slash)."""
        name, _, id_text = text.partition("/")
        return cls.from_id_text(name, id_text)


@dataclass(frozen=True)
class SourceLocation:
    """Where a document came from, for `PATH:LINE:` messages."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Metadata:
    """A manifest's `metadata`."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def prune_protected(self) -> bool:
        """True when `ecs-job-controller/prune: "false"` protects the family."""
        return self.annotations.get("ecs-job-controller/prune", "true").lower() == "false"


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n+1: initial * 2^(n-1), capped at max."""

    initial_seconds: int = 10
    max_seconds: int = 600

    def delay(self, failed_attempts: int) -> int:
        """Seconds to wait after the `failed_attempts`-th failure (1-based)."""
        if failed_attempts < 1:
            return 0
        exponent = min(failed_attempts - 1, 32)
        return int(min(self.max_seconds, self.initial_seconds * (2**exponent)))


@dataclass(frozen=True)
class Capacity:
    """Where to add capacity when tasks cannot be placed."""

    auto_scaling_group: str | None = None
    max_pending_seconds: int = 900


class RetryAction(StrEnum):
    """What a matching retry rule does with a failed attempt (`spec.retryPolicy.rules`)."""

    #: retried, and counted against backoffLimit (even an infrastructure failure)
    RETRY = "Retry"
    #: the run ends Failed at once (FailedByRetryRule)
    FAIL_RUN = "FailRun"
    #: retried without counting against backoffLimit or the infrastructure budget
    IGNORE = "Ignore"


class ExitCodeOperator(StrEnum):
    """How `onExitCodes.values` are read, as in Kubernetes podFailurePolicy."""

    IN = "In"
    NOT_IN = "NotIn"


#: ECS's task stopCodes (the Task API reference), which `onStopCodes` may name.
ECS_STOP_CODES = (
    "TaskFailedToStart",
    "EssentialContainerExited",
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "SpotInterruption",
    "TerminationNotice",
)


@dataclass(frozen=True)
class ExitCodeCondition:
    """`onExitCodes`: the non-zero exit codes a rule matches (podFailurePolicy's onExitCodes)."""

    operator: ExitCodeOperator
    values: frozenset[int]
    #: only this container is considered; None: every success container
    container: str | None = None


@dataclass(frozen=True)
class RetryRule:
    """One rule of `spec.retryPolicy.rules`: an action and the conditions that must all match.

    Matching is `controller.plan.retry_rules`; validation guarantees at least
    one condition, so a rule with none never matches.
    """

    action: RetryAction
    on_exit_codes: ExitCodeCondition | None = None
    on_stop_codes: frozenset[str] = frozenset()
    #: an fnmatch glob against any task's stoppedReason
    on_stopped_reason: str | None = None


@dataclass(frozen=True)
class JobSpec:
    """What one run executes: a JobRun's spec, or a CronJob's jobTemplate."""

    cluster: str
    task_definition: JsonObject | None = None
    task_definition_ref: str | None = None
    run_task: JsonObject = field(default_factory=dict)
    count: int = 1
    backoff_limit: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    active_deadline_seconds: int | None = None
    success_containers: tuple[str, ...] = ()
    capacity: Capacity = field(default_factory=Capacity)
    suspend: bool = False
    #: an indexed run: indexes 0..completions-1, each run to success once;
    #: None is a plain run (one task set, no JOB_COMPLETION_INDEX)
    completions: int | None = None
    #: at most this many indexes have an attempt in flight (default: completions)
    parallelism: int | None = None
    #: the run fails as soon as more indexes than this failed (None: the
    #: first failed index fails the run)
    max_failed_indexes: int | None = None
    #: `retryPolicy.rules`, in order: the first that matches a failed attempt decides
    retry_rules: tuple[RetryRule, ...] = ()
    #: The spec exactly as written (minus runId/suspend): frozen into the ledger
    #: when the first attempt starts, and hashed to detect drift afterwards.
    raw: JsonObject = field(default_factory=dict, compare=False)

    @property
    def indexed(self) -> bool:
        """True for an indexed run (`spec.completions` given)."""
        return self.completions is not None

    @property
    def effective_parallelism(self) -> int:
        """How many indexes may have an attempt in flight at once."""
        completions = self.completions or 1
        return min(self.parallelism or completions, completions)

    @property
    def family(self) -> str | None:
        """The task-definition family this spec registers into, if any."""
        if self.task_definition is None:
            return None
        family = self.task_definition.get("family")
        return str(family) if family is not None else None

    # Cached: a loaded manifest lives across passes in the loader's parse
    # cache, and hashing every spec on every pass was most of a warm pass.
    @cached_property
    def digest(self) -> str:
        """A stable hash of the spec as written, used to report drift."""
        return spec_digest(self.raw)

    @cached_property
    def task_definition_hash(self) -> str | None:
        """The spec hash of the inline taskDefinition (`taskdef.spec_hash`); None without one."""
        return None if self.task_definition is None else spec_hash(self.task_definition)


def spec_digest(raw: JsonObject) -> str:
    """SHA-256 over the sorted-key JSON of a spec as written."""
    import json  # local: keeps module import light for the hot loader path

    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class JobRun:
    """A one-off desired run."""

    metadata: Metadata
    spec: JobSpec
    run_id: str
    source: SourceLocation

    kind = Kind.JOB_RUN

    @property
    def name(self) -> str:
        """The manifest's metadata.name."""
        return self.metadata.name

    @property
    def key(self) -> RunKey:
        """The run key NAME/RUN_ID."""
        return RunKey(self.metadata.name, self.run_id)


@dataclass(frozen=True)
class CronJob:
    """A schedule of runs; each occurrence is the run NAME/YYYYMMDDTHHMMZ."""

    metadata: Metadata
    schedule: str
    time_zone: str
    concurrency_policy: ConcurrencyPolicy
    starting_deadline_seconds: int | None
    suspend: bool
    successful_runs_history_limit: int
    failed_runs_history_limit: int
    job_template: JobSpec
    source: SourceLocation

    kind = Kind.CRON_JOB

    @property
    def name(self) -> str:
        """The manifest's metadata.name."""
        return self.metadata.name


Manifest = JobRun | CronJob


@dataclass(frozen=True)
class DesiredSet:
    """Every valid manifest of one source snapshot, by kind and name."""

    job_runs: Mapping[str, JobRun] = field(default_factory=dict)
    cron_jobs: Mapping[str, CronJob] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.job_runs) + len(self.cron_jobs)

    def manifests(self) -> list[Manifest]:
        """All manifests, JobRuns first, each kind sorted by name."""
        runs: list[Manifest] = [self.job_runs[n] for n in sorted(self.job_runs)]
        crons: list[Manifest] = [self.cron_jobs[n] for n in sorted(self.cron_jobs)]
        return runs + crons
