"""Validate: judge one decoded document, each problem a `ManifestError` at PATH:LINE.

The second stage of loading (DESIGN.md §3), between decode (`decode`: bytes
to our documents, with line numbers) and build (`build`: the frozen
models). A document is checked against its kind's JSON Schema first; only a
schema-valid one gets the semantic checks the schema cannot express (a
known time zone and a five-field schedule, exactly one task definition,
what RegisterTaskDefinition and RunTask would refuse, Fargate's task
sizes). Every problem is located to the line of the field it is about,
found through the document's YAML nodes, and named by its JSON pointer.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator

from controller.model.build import JOB_DEFAULTS, cron_expression
from controller.model.identity import COMPLETION_INDEX_VARIABLE
from controller.model.manifest import Kind
from controller.model.problems import ManifestError
from controller.model.taskdef import task_cpu_units, task_memory_mib
from controller.model.yamldoc import YamlDocument

_FARGATE_PROVIDERS = {"FARGATE", "FARGATE_SPOT"}

#: Task-level cpu ECS accepts, in CPU units (the API reference: 0.125 to 192 vCPUs).
TASK_CPU_MIN = 128
TASK_CPU_MAX = 196608

#: FARGATE's task sizes, CPU units -> the memory (MiB) each allows (the API
#: reference of RegisterTaskDefinition's memory; 8192 and 16384 need Linux
#: platform 1.4.0 or later).
FARGATE_TASK_SIZES: dict[int, Sequence[int]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}
#: Windows containers on Fargate: at least 1 vCPU, and the larger sizes are Linux only.
FARGATE_WINDOWS_CPU = (1024, 2048, 4096)


class FastCheck(Protocol):
    """A compiled schema that only answers valid or not, quickly (jsonschema-rs)."""

    def is_valid(self, instance: Any) -> bool:
        """True when `instance` satisfies the schema; ValueError for values JSON cannot hold."""
        ...


@dataclass(frozen=True)
class SchemaValidator:
    """One kind's schema, compiled twice: a fast yes/no check and the precise validator.

    Nearly every document of a pass is valid, and for those a yes is all that
    is needed: the fast check (jsonschema-rs, compiled Rust) answers it over
    200 times faster than `jsonschema`. Only a document it does not accept
    goes through `precise` (`jsonschema`), which alone produces the messages,
    line numbers and hints users read, and whose verdict is the one that
    counts. So a disagreement can cost time, never correctness, provided the
    fast check accepts nothing the precise one rejects: the property
    `tests/model/test_fast_validation.py` checks on generated documents.
    (It rejects some documents the precise one accepts — Python's `$`
    matches before a final newline — and those simply take the slow path.)
    """

    precise: Validator
    fast: FastCheck | None = None

    def errors(self, value: Any) -> list[ValidationError]:
        """The schema errors of `value`, sorted by location; [] when valid."""
        if self.fast is not None:
            try:
                if self.fast.is_valid(value):
                    return []
            except ValueError:
                pass  # a YAML date, a non-string key...: the precise validator judges
        return sorted(self.precise.iter_errors(value), key=_error_sort_key)


def validate_document(
    path: str, doc: YamlDocument, kind: Kind, validator: SchemaValidator
) -> list[ManifestError]:
    """The problems of one document of `kind`: its schema errors, else its semantic ones."""
    value = doc.value
    schema_errors = validator.errors(value)
    if schema_errors:
        schema = validator.precise.schema
        root = schema if isinstance(schema, Mapping) else {}
        return [_schema_error(path, doc, e, root) for e in schema_errors]
    return [
        ManifestError(path, doc.line_of(pointer), f"{_pointer(pointer)}: {message}")
        for pointer, message in _semantic_errors(kind, value)
    ]


def _error_sort_key(error: ValidationError) -> tuple[str, str]:
    return ("/".join(str(p) for p in error.absolute_path), error.message)


def _pointer(parts: Iterable[str | int]) -> str:
    """A JSON pointer (RFC 6901) for a path."""
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "/" + "/".join(escaped) if escaped else "/"


def _deepest(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf errors, the sub-error that names the real field.

    Optional members accept null (`anyOf: [X, {type: null}]`); the null
    branch's complaint is never the useful one, so it is set aside.
    """
    while error.context:
        useful = [e for e in error.context if e.schema != {"type": "null"}]
        best = best_match(useful or error.context)
        if best is None:
            break
        error = best
    return error


def _property_names(root: Mapping[str, Any], schema: Any, seen: frozenset[str]) -> set[str]:
    """The property names a subschema declares, through its local `$ref`s."""
    if not isinstance(schema, Mapping):
        return set()
    names = set(schema.get("properties") or {})
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref not in seen:
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
        names |= _property_names(root, target, seen | {ref})
    return names


def _did_you_mean(extra: list[str], error: ValidationError, root: Mapping[str, Any]) -> str:
    """The "did you mean" hint for unknown keys close to a field of the schema, or ""."""
    # Only on an error, so a valid document pays nothing for it.
    present = set(error.instance) if isinstance(error.instance, dict) else set()
    candidates = sorted(_property_names(root, error.schema, frozenset()) - present)
    hints = {
        key: close[0] for key in extra if (close := difflib.get_close_matches(key, candidates, n=1))
    }
    if not hints:
        return ""
    if len(extra) == 1:
        return f"; did you mean {hints[extra[0]]!r}?"
    return "; did you mean " + ", ".join(f"{v!r} for {k!r}" for k, v in hints.items()) + "?"


def _schema_error(
    path: str, doc: YamlDocument, error: ValidationError, root: Mapping[str, Any]
) -> ManifestError:
    """Turn a jsonschema error into `PATH:LINE: /json/pointer: reason`."""
    error = _deepest(error)
    parts: tuple[str | int, ...] = tuple(error.absolute_path)
    line = doc.line_of(parts)
    message = error.message
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(
        error.instance, dict
    ):
        # jsonschema names the unexpected keys only inside its message; point
        # at the first of them (its key's line) rather than at the parent.
        extra = sorted(k for k in error.instance if f"'{k}'" in error.message)
        if extra:
            parts = (*parts, extra[0])
            line = doc.line_of(parts, key=True)
            hint = ", ".join(repr(k) for k in extra)
            suggestion = _did_you_mean(extra, error, root)
            message = f"unknown field(s) {hint} (not allowed here{suggestion})"
    if len(message) > 300:
        message = message[:297] + "..."
    return ManifestError(path, line, f"{_pointer(parts)}: {message}")


def _semantic_errors(kind: Kind, value: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Checks the JSON Schema cannot express, as (pointer, message) pairs."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    spec = value["spec"]
    if kind is Kind.CRON_JOB:
        found.extend(_schedule_errors(spec))
        job = spec["jobTemplate"]
        base: tuple[str | int, ...] = ("spec", "jobTemplate")
    else:
        job = spec
        base = ("spec",)
    found.extend(((*base, *p), m) for p, m in _job_spec_errors(job))
    return found


def _schedule_errors(spec: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    tz_name = spec.get("timeZone", "UTC")
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        found.append((("spec", "timeZone"), f"unknown IANA time zone {tz_name!r}"))
        zone = ZoneInfo("UTC")
    expression = cron_expression(spec["schedule"])
    if len(expression.split()) != 5:
        # Occurrences are identified to the minute (NAME/YYYYMMDDTHHMMZ), so a
        # seconds field, which cronsim would accept, cannot be honoured.
        message = f"schedule {spec['schedule']!r} must have 5 fields or be a macro"
        found.append((("spec", "schedule"), message))
        return found
    try:
        CronSim(expression, datetime(2026, 1, 1, tzinfo=UTC).astimezone(zone))
    except CronSimError as exc:
        found.append((("spec", "schedule"), f"invalid cron schedule {spec['schedule']!r}: {exc}"))
    return found


def _job_spec_errors(job: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    has_td = job.get("taskDefinition") is not None
    has_ref = job.get("taskDefinitionRef") is not None
    if has_td == has_ref:
        found.append(((), "exactly one of taskDefinition and taskDefinitionRef is required"))
    strategy = job.get("capacityProviderStrategy") or []
    runs_on_fargate = _fargate_run(job)
    td: Mapping[str, Any] | None = job["taskDefinition"] if has_td else None
    awsvpc = td is not None and td.get("networkMode") == "awsvpc"
    # RunTask needs a networkConfiguration exactly for awsvpc tasks (Fargate's
    # are always awsvpc), and refuses one for the other network modes.
    if (runs_on_fargate or awsvpc) and not job.get("networkConfiguration"):
        needing = "FARGATE" if runs_on_fargate else "networkMode awsvpc"
        found.append(((), f"{needing} needs networkConfiguration (awsvpc subnets)"))
    elif td is not None and not runs_on_fargate and not awsvpc and job.get("networkConfiguration"):
        mode = td.get("networkMode") or "bridge (the default)"
        message = f"networkConfiguration is only for networkMode awsvpc; the task has {mode}"
        found.append((("networkConfiguration",), message))
    if job.get("launchType") and strategy:
        found.append(
            (("launchType",), "launchType and capacityProviderStrategy exclude each other")
        )
    containers: set[Any] = set()
    if td is not None:
        found.extend(_task_definition_errors(td, runs_on_fargate or _fargate_required(td)))
        containers = {
            c.get("name")
            for c in job["taskDefinition"].get("containerDefinitions") or []
            if isinstance(c, dict)
        }
        for i, name in enumerate(job.get("successContainers") or []):
            if name not in containers:
                found.append((("successContainers", i), f"no container named {name!r}"))
        overrides = job.get("overrides") or {}
        for i, override in enumerate(overrides.get("containerOverrides") or []):
            name = override.get("name") if isinstance(override, dict) else None
            if name is not None and name not in containers:
                found.append(
                    (("overrides", "containerOverrides", i, "name"), f"no container named {name!r}")
                )
    found.extend(_indexed_errors(job))
    found.extend(_retry_rule_errors(job, containers if td is not None else None))
    backoff = job.get("backoff") or {}
    initial = backoff.get("initialSeconds", JOB_DEFAULTS.backoff.initial_seconds)
    if initial > backoff.get("maxSeconds", JOB_DEFAULTS.backoff.max_seconds):
        found.append((("backoff",), "initialSeconds is larger than maxSeconds"))
    return found


def _indexed_errors(job: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Parallelism and maxFailedIndexes mean something only for an indexed run."""
    completions = job.get("completions")
    found: list[tuple[tuple[str | int, ...], str]] = []
    for field in ("parallelism", "maxFailedIndexes"):
        if job.get(field) is not None and completions is None:
            found.append(((field,), f"{field} needs completions (an indexed run)"))
    max_failed = job.get("maxFailedIndexes")
    if completions is not None and max_failed is not None and max_failed >= completions:
        message = f"maxFailedIndexes {max_failed} must be below completions {completions}"
        found.append((("maxFailedIndexes",), message))
    overrides = job.get("overrides") or {}
    for i, override in enumerate(overrides.get("containerOverrides") or []):
        environment = override.get("environment") if isinstance(override, dict) else None
        for j, variable in enumerate(environment or []):
            named = isinstance(variable, dict) and variable.get("name")
            if completions is not None and named == COMPLETION_INDEX_VARIABLE:
                path = ("overrides", "containerOverrides", i, "environment", j, "name")
                found.append((path, f"{COMPLETION_INDEX_VARIABLE} is set by the controller"))
    return found


def _retry_rule_errors(
    job: Mapping[str, Any], containers: set[Any] | None
) -> list[tuple[tuple[str | int, ...], str]]:
    """`retryPolicy.rules` that could never match a failed attempt.

    The schema already refuses an empty `values`, an empty glob and a stop
    code ECS does not have; this adds what it cannot say: a rule states at
    least one condition, `In` never lists 0 (an attempt whose code is 0 did
    not fail by it, and 0 is never checked), and `container` names a
    container of the inline task definition (`containers`; None with a
    taskDefinitionRef, which `validate` cannot read). A rule shadowed by an
    earlier one is allowed: it is harmless, and telling takes more than a
    syntactic check.
    """
    found: list[tuple[tuple[str | int, ...], str]] = []
    rules = (job.get("retryPolicy") or {}).get("rules") or []
    for i, rule in enumerate(rules):
        at: tuple[str | int, ...] = ("retryPolicy", "rules", i)
        conditions = ("onExitCodes", "onStopCodes", "onStoppedReason")
        if not any(rule.get(c) is not None for c in conditions):
            found.append(
                (at, "a rule needs a condition: onExitCodes, onStopCodes or onStoppedReason")
            )
            continue
        exit_codes = rule.get("onExitCodes")
        if exit_codes is None:
            continue
        values = exit_codes.get("values") or []
        if exit_codes.get("operator") == "In" and 0 in values:
            message = "operator In cannot list 0: a container that exited 0 is never checked"
            found.append(((*at, "onExitCodes", "values", values.index(0)), message))
        name = exit_codes.get("container")
        if name is not None and containers is not None and name not in containers:
            found.append(((*at, "onExitCodes", "container"), f"no container named {name!r}"))
    return found


def _fargate_run(job: Mapping[str, Any]) -> str | None:
    """Why the job's tasks run on Fargate, or None.

    launchType FARGATE, or a capacityProviderStrategy naming FARGATE or
    FARGATE_SPOT: those are Fargate's own capacity providers, and ECS does not
    mix them with Auto Scaling group providers in one strategy, so the task
    runs on Fargate either way. Without either, the cluster's default
    strategy decides, which `validate` cannot see (no AWS): no Fargate rule
    applies then, unless the task definition requires FARGATE.
    """
    if job.get("launchType") == "FARGATE":
        return "launchType FARGATE"
    for item in job.get("capacityProviderStrategy") or []:
        if isinstance(item, dict) and item.get("capacityProvider") in _FARGATE_PROVIDERS:
            return f"capacity provider {item['capacityProvider']}"
    return None


def _fargate_required(td: Mapping[str, Any]) -> str | None:
    """Why the task definition must be valid on Fargate (it requires FARGATE), or None."""
    # ECS validates the task definition against it at registration, "even if
    # EC2 is also specified" (the task-size documentation).
    if "FARGATE" in (td.get("requiresCompatibilities") or []):
        return "requiresCompatibilities FARGATE"
    return None


def _fargate_sizes(memories: Sequence[int]) -> str:
    """The memory sizes of one Fargate cpu, as the documentation states them."""
    if isinstance(memories, range):
        return f"{memories[0]}..{memories[-1]} MiB in steps of {memories.step}"
    return ", ".join(map(str, memories)) + " MiB"


def _task_definition_errors(
    td: Mapping[str, Any], on_fargate: str | None
) -> list[tuple[tuple[str | int, ...], str]]:
    """What RegisterTaskDefinition (or RunTask) would refuse in a task definition.

    `on_fargate` says why the task is on Fargate (see `_fargate_run`), if it is.
    """
    found: list[tuple[tuple[str | int, ...], str]] = []
    at: tuple[str | int, ...] = ("taskDefinition",)
    cpu = task_cpu_units(td["cpu"]) if td.get("cpu") is not None else None
    if td.get("cpu") is not None:
        if cpu is None:
            message = f"{td['cpu']!r} is not a task cpu: CPU units (1024) or vCPUs ('1 vCPU')"
            found.append(((*at, "cpu"), f"{message} making a whole number of units"))
        elif not TASK_CPU_MIN <= cpu <= TASK_CPU_MAX:
            message = f"{cpu} CPU units is outside ECS's {TASK_CPU_MIN}..{TASK_CPU_MAX}"
            found.append(((*at, "cpu"), f"{message} (0.125 to 192 vCPUs)"))
    memory = task_memory_mib(td["memory"]) if td.get("memory") is not None else None
    if td.get("memory") is not None:
        if memory is None:
            message = f"{td['memory']!r} is not a task memory: MiB (2048) or GB ('2 GB')"
            found.append(((*at, "memory"), f"{message} making a whole number of MiB"))
        elif memory < 1:
            found.append(((*at, "memory"), f"{memory} MiB: task memory is at least 1 MiB"))
    if on_fargate is not None:
        found.extend(_fargate_errors(td, on_fargate, cpu, memory))
    if td.get("memory") is None:
        # "If a task-level memory value is not specified, you must specify a
        # non-zero integer for one or both of memory or memoryReservation in a
        # container definition" (the API reference; registration refuses it).
        for i, container in enumerate(td.get("containerDefinitions") or []):
            if isinstance(container, dict) and not (
                container.get("memory") or container.get("memoryReservation")
            ):
                message = (
                    f"container {container.get('name')!r} needs memory or memoryReservation "
                    "(MiB): the task sets no memory"
                )
                found.append(((*at, "containerDefinitions", i), message))
    for i, container in enumerate(td.get("containerDefinitions") or []):
        if not isinstance(container, dict):
            continue
        hard, soft = container.get("memory"), container.get("memoryReservation")
        if isinstance(hard, int) and isinstance(soft, int) and soft > hard:
            message = f"memoryReservation {soft} is larger than memory {hard}"
            found.append(((*at, "containerDefinitions", i, "memoryReservation"), message))
    return found


def _fargate_errors(
    td: Mapping[str, Any], why: str, cpu: int | None, memory: int | None
) -> list[tuple[tuple[str | int, ...], str]]:
    """Fargate's rules: awsvpc, task-level cpu and memory, one of its task sizes."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    at: tuple[str | int, ...] = ("taskDefinition",)
    mode = td.get("networkMode")
    if mode is None:
        found.append((at, f"on FARGATE ({why}) the task definition needs networkMode awsvpc"))
    elif mode != "awsvpc":
        message = f"on FARGATE ({why}) networkMode must be awsvpc, not {mode!r}"
        found.append(((*at, "networkMode"), message))
    missing = [field for field in ("cpu", "memory") if td.get(field) is None]
    if missing:
        needed = " and ".join(missing)
        found.append((at, f"on FARGATE ({why}) the task definition needs task-level {needed}"))
    if cpu is None or memory is None:
        return found  # missing, or already reported as unreadable
    sizes = FARGATE_TASK_SIZES.get(cpu)
    if sizes is None:
        known = ", ".join(map(str, FARGATE_TASK_SIZES))
        found.append(((*at, "cpu"), f"FARGATE has no task cpu {cpu} (it takes {known} units)"))
        return found
    if memory not in sizes:
        message = f"FARGATE cpu {cpu} takes memory {_fargate_sizes(sizes)}, not {memory}"
        found.append(((*at, "memory"), message))
    platform = td.get("runtimePlatform")
    family = platform.get("operatingSystemFamily") if isinstance(platform, dict) else None
    if isinstance(family, str) and family.startswith("WINDOWS") and cpu not in FARGATE_WINDOWS_CPU:
        known = ", ".join(map(str, FARGATE_WINDOWS_CPU))
        message = f"Windows on FARGATE takes task cpu {known}, not {cpu}"
        found.append(((*at, "cpu"), message))
    return found
