"""Build: turn a schema-valid manifest document into the frozen model (DESIGN.md §3).

The third stage of loading, after decode (`decode`: bytes to our documents
with line numbers) and validate (`validate`: the JSON Schema and the
semantic checks); `loader` runs the three. It is pure and knows no YAML and
no schema, so the planner can rebuild a run's frozen spec
(`job_spec_from_raw`) and expand a CronJob's schedule (`cron_expression`)
without the loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.model.manifest import (
    RUN_TASK_PASS_THROUGH,
    Backoff,
    Capacity,
    ConcurrencyPolicy,
    CronJob,
    ExitCodeCondition,
    ExitCodeOperator,
    JobRun,
    JobSpec,
    Kind,
    Manifest,
    Metadata,
    RetryAction,
    RetryRule,
    SourceLocation,
)

#: cron macros mapped to the five-field expressions they abbreviate.
CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: The model's own defaults, applied to absent fields (the schema's `default`s
#: state the same values; tests/test_schema.py checks).
JOB_DEFAULTS = JobSpec(cluster="")


def cron_expression(schedule: str) -> str:
    """The five-field form of a schedule (macros expanded)."""
    text = schedule.strip()
    return CRON_MACROS.get(text.lower(), text)


def build_manifest(kind: Kind, value: Mapping[str, Any], location: SourceLocation) -> Manifest:
    """The frozen manifest of a schema-valid document of `kind`."""
    meta = value["metadata"]
    metadata = Metadata(
        name=meta["name"],
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
    )
    spec = value["spec"]
    if kind is Kind.JOB_RUN:
        return JobRun(
            metadata=metadata,
            spec=job_spec_from_raw(spec),
            run_id=str(spec.get("runId", "1")),
            source=location,
        )
    return CronJob(
        metadata=metadata,
        schedule=spec["schedule"],
        time_zone=spec.get("timeZone", "UTC"),
        concurrency_policy=ConcurrencyPolicy(spec.get("concurrencyPolicy", "Forbid")),
        starting_deadline_seconds=spec.get("startingDeadlineSeconds"),
        suspend=bool(spec.get("suspend", False)),
        successful_runs_history_limit=int(spec.get("successfulRunsHistoryLimit", 3)),
        failed_runs_history_limit=int(spec.get("failedRunsHistoryLimit", 3)),
        job_template=job_spec_from_raw(spec["jobTemplate"]),
        source=location,
    )


def job_spec_from_raw(spec: Mapping[str, Any]) -> JobSpec:
    """Build a JobSpec from a schema-valid spec mapping (also used for frozen specs)."""
    backoff = spec.get("backoff") or {}
    capacity = spec.get("capacity") or {}
    run_task = {k: spec[k] for k in RUN_TASK_PASS_THROUGH if spec.get(k) is not None}
    raw = {k: v for k, v in spec.items() if k not in ("runId", "suspend")}
    return JobSpec(
        cluster=spec["cluster"],
        task_definition=spec.get("taskDefinition"),
        task_definition_ref=spec.get("taskDefinitionRef"),
        run_task=run_task,
        count=int(spec.get("count", JOB_DEFAULTS.count)),
        backoff_limit=int(spec.get("backoffLimit", JOB_DEFAULTS.backoff_limit)),
        backoff=Backoff(
            initial_seconds=int(
                backoff.get("initialSeconds", JOB_DEFAULTS.backoff.initial_seconds)
            ),
            max_seconds=int(backoff.get("maxSeconds", JOB_DEFAULTS.backoff.max_seconds)),
        ),
        active_deadline_seconds=spec.get("activeDeadlineSeconds"),
        success_containers=tuple(spec.get("successContainers") or ()),
        capacity=Capacity(
            auto_scaling_group=capacity.get("autoScalingGroup"),
            max_pending_seconds=int(
                capacity.get("maxPendingSeconds", JOB_DEFAULTS.capacity.max_pending_seconds)
            ),
        ),
        suspend=bool(spec.get("suspend", False)),
        completions=_optional_int(spec.get("completions")),
        parallelism=_optional_int(spec.get("parallelism")),
        max_failed_indexes=_optional_int(spec.get("maxFailedIndexes")),
        retry_rules=retry_rules_from_raw((spec.get("retryPolicy") or {}).get("rules") or ()),
        raw=raw,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def retry_rules_from_raw(rules: Iterable[Mapping[str, Any]]) -> tuple[RetryRule, ...]:
    """The `retryPolicy.rules` of a schema-valid spec (or a frozen one), in order."""
    built: list[RetryRule] = []
    for rule in rules:
        exit_codes = rule.get("onExitCodes")
        condition = (
            None
            if exit_codes is None
            else ExitCodeCondition(
                operator=ExitCodeOperator(exit_codes["operator"]),
                values=frozenset(int(v) for v in exit_codes["values"]),
                container=exit_codes.get("container"),
            )
        )
        built.append(
            RetryRule(
                action=RetryAction(rule["action"]),
                on_exit_codes=condition,
                on_stop_codes=frozenset(rule.get("onStopCodes") or ()),
                on_stopped_reason=rule.get("onStoppedReason"),
            )
        )
    return tuple(built)
