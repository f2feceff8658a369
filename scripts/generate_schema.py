"""Generate the manifest JSON Schemas in `schema/` (DESIGN.md §3).

The schemas are the single source of truth for validating JobRun and CronJob
manifests. Their ECS-shaped parts are not written by hand: they are translated
from botocore's own ECS service model, so field names, types, enums, required
members and documentation match the API of the installed boto3 exactly. Run
`make schema` after upgrading boto3 and commit the diff.

What comes from botocore:

- `spec.taskDefinition` is the `RegisterTaskDefinitionRequest` input shape;
- the RunTask pass-through members of `RunTaskRequest` (`RUN_TASK_PASS_THROUGH`)
  are properties of a JobRun `spec` and of a CronJob `spec.jobTemplate`.

Each botocore shape that carries structure or constraints becomes one entry of
`$defs`, keyed by its botocore shape name: structure -> object with
`properties`, botocore's `required` and `additionalProperties: false` (a
tagged union also gets `minProperties`/`maxProperties` 1); list -> array;
map -> object with `additionalProperties`; string -> string with `enum` and
min/max length; integer/long -> integer with min/max; boolean; double/float ->
number. Unconstrained scalars are written inline. Member documentation becomes
`description` (HTML stripped, whitespace collapsed, cut to `DESCRIPTION_LIMIT`).
A nullable member is `{"type": [T, "null"]}` for a plain scalar, otherwise
`{"if": {"type": "null"}, "else": {"$ref": ...}}` (see `_or_null` for why).

Deliberate deviations from botocore (also stated in the schema descriptions):

1. Task-level `cpu` and `memory` accept a string OR an integer. Users write
   `cpu: 256` in YAML; the controller converts it to the string ECS wants and
   also accepts unit strings such as "1 vCPU" or "2 GB".
2. Every optional (non-required) member inside `taskDefinition`, and every
   pass-through field, also accepts `null`, meaning "absent": YAML users write
   `key:` with no value, and the controller strips nulls before calling ECS.
   Required members never accept null. Members of a tagged union do not accept
   null either (exactly one of them must be given, with a value).
3. The schema is stricter than botocore's client-side validation where the
   model states a constraint botocore leaves to the server: enums and maximum
   lengths/values are enforced here. Botocore's `pattern` traits are not
   copied: botocore does not enforce them, and their Unicode property classes
   are not understood by Python's `re`.
4. Rules the ECS documentation states in prose, which botocore's model does
   not carry as traits, are enforced (`DOCUMENTED_RULES`): family, container,
   volume and container-override names are 1..255 letters, digits, `_` and
   `-`; port-mapping names 1..64 lowercase letters, digits, `_` and `-`, not
   starting with `-`; tag keys do not start with `aws:` in any case.
   RegisterTaskDefinition and RunTask refuse what breaks them, so `validate`
   must too.

Our own fields (apiVersion, kind, metadata and the controller's spec fields)
are written by hand below, as Python dicts, in this one place. Every integer
among them has a maximum, stated in its description: durations at most
`MAX_DURATION_SECONDS` (365 days, so that now + a duration is always a
datetime), `backoffLimit` and the history limits at most 1000. Their
`default`s are the defaults the loader applies (tests/test_schema.py checks).
The fields a JobRun spec shares with a CronJob jobTemplate are one `$defs` entry,
`JobSpec`; the two objects that use it are closed with
`unevaluatedProperties: false` (the 2020-12 form of `additionalProperties:
false` that sees through `$ref`), so a typo is an error there too.

Each schema's `$id` is `https://ecs-job-controller.dev/schema/<version>/<file>`
with the version of the manifests' apiVersion (`SCHEMA_BASE_URI`): an
identifier that stays put across releases, not a URL editors fetch (they read
the files `controller schema --write DIR` writes).

Output is deterministic (sorted keys, 2-space indent, trailing newline).
Usage: `python scripts/generate_schema.py [--check] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import botocore
import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StringShape, StructureShape

Json = dict[str, Any]

API_VERSION = "ecs-job-controller/v1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Where each schema's `$id` lives: one directory per manifest apiVersion
#: (`ecs-job-controller/v1` -> `.../schema/v1/jobrun.schema.json`). The `$id`
#: names the manifest format, not a controller release: it stays the same as
#: long as `v1` manifests are what the schema checks, so editor settings and
#: `$ref`s that use it never have to change; a `v2` apiVersion gets `/v2/`.
SCHEMA_BASE_URI = f"https://ecs-job-controller.dev/schema/{API_VERSION.rsplit('/', 1)[1]}/"
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schema"
DESCRIPTION_LIMIT = 300

TASK_DEFINITION_SHAPE = "RegisterTaskDefinitionRequest"
RUN_TASK_SHAPE = "RunTaskRequest"

#: RunTask request members a manifest passes through unchanged. Kept equal to
#: controller.model.manifest.RUN_TASK_PASS_THROUGH (tests/test_schema.py checks);
#: not imported so this script runs without the package installed.
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

#: Task-level members that accept an integer as well as botocore's string.
CPU_MEMORY_MEMBERS = ("cpu", "memory")

#: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and
#: hyphens are allowed" (the API reference, for a family, a container name and
#: a volume name; a container override names a container).
ECS_NAME_PATTERN = "^[A-Za-z0-9_-]{1,255}$"
#: "up to 64 characters ... lowercase letters, numbers, underscores (_), and
#: hyphens (-). The name can't start with a hyphen." (PortMapping.name)
PORT_MAPPING_NAME_PATTERN = "^[a-z0-9_][a-z0-9_-]{0,63}$"
#: "Do not use aws:, AWS:, or any upper or lowercase combination of such as a
#: prefix": ECS reserves it (botocore's TagKey carries only the 1..128 length).
TAG_KEY_PATTERN = "^(?![aA][wW][sS]:)"

DOCUMENTED_RULE_NOTE = "Deviation from botocore: the rule the ECS documentation states is enforced"

#: JSON Schema keywords added to botocore's translation: (shape name, member)
#: -> keywords, or (shape name, None) for the shape's own `$defs` entry.
DOCUMENTED_RULES: dict[tuple[str, str | None], Json] = {
    (TASK_DEFINITION_SHAPE, "family"): {"pattern": ECS_NAME_PATTERN},
    ("ContainerDefinition", "name"): {"pattern": ECS_NAME_PATTERN},
    ("Volume", "name"): {"pattern": ECS_NAME_PATTERN},
    ("ContainerOverride", "name"): {"pattern": ECS_NAME_PATTERN},
    ("PortMapping", "name"): {"pattern": PORT_MAPPING_NAME_PATTERN},
    ("TagKey", None): {
        "pattern": TAG_KEY_PATTERN,
        "description": f"{DOCUMENTED_RULE_NOTE}: a tag key does not start with aws:.",
    },
}

NULL_MEANS_ABSENT = (
    "Deviation from botocore: any optional member may be null, meaning absent "
    "(the controller strips nulls before calling ECS); required members may not."
)
CPU_MEMORY_NOTE = (
    "Deviation from botocore: a string or an integer (cpu: 256); the controller "
    "converts it to the string of whole units ECS wants."
)
#: What each of CPU_MEMORY_MEMBERS accepts, as the loader checks it.
CPU_MEMORY_SPELLINGS = {
    "cpu": 'CPU units (1024) or vCPUs ("1 vCPU", "0.5 vcpu"), 128..196608 units.',
    "memory": 'MiB (2048) or GB ("2 GB", "0.5GB").',
}

_SCALAR_TYPES = {
    "string": "string",
    "integer": "integer",
    "long": "integer",
    "boolean": "boolean",
    "double": "number",
    "float": "number",
}

# --------------------------------------------------------------------------
# Botocore documentation -> plain text
# --------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({"p", "li", "ul", "ol", "br", "div", "note", "important", "dd", "dt"})


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; block tags become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(html: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """Botocore's HTML documentation as one line of text of at most `limit` chars."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = re.sub(r"\s+", " ", "".join(extractor.parts)).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def _described(schema: Json, description: str) -> Json:
    """Return `schema` with a description added when there is one."""
    if description:
        return {**schema, "description": description}
    return schema


# --------------------------------------------------------------------------
# Botocore shapes -> JSON Schema
# --------------------------------------------------------------------------


class ShapeTranslator:
    """Translates botocore shapes into JSON Schema, collecting `$defs` by shape name."""

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.defs: dict[str, Json] = {}

    def reference(self, shape: Shape) -> Json:
        """Return a `$ref` into `$defs` for `shape`, or an inline unconstrained scalar."""
        if not self._needs_def(shape):
            return {"type": self._scalar_type(shape)}
        if shape.name not in self.defs:
            self.defs[shape.name] = {}  # placeholder: breaks recursion in cyclic shapes
            canonical = self.model.shape_for(shape.name)
            self.defs[shape.name] = _described(
                self._definition(canonical), plain_text(canonical.documentation)
            )
        return {"$ref": f"#/$defs/{shape.name}"}

    def member(self, member: Shape, *, nullable: bool) -> Json:
        """Return a structure member's schema, documented; nullable if asked."""
        schema = self.reference(member)
        if nullable:
            schema = _or_null(schema)
        return _described(schema, plain_text(member.documentation))

    def members(
        self, shape: StructureShape, names: Iterable[str], *, nullable_optional: bool
    ) -> dict[str, Json]:
        """Schemas for the named members of `shape`."""
        required = set(shape.required_members)
        return {
            name: self.member(
                shape.members[name], nullable=nullable_optional and name not in required
            )
            for name in names
        }

    def _needs_def(self, shape: Shape) -> bool:
        if shape.type_name in ("structure", "list", "map"):
            return True
        return bool({"enum", "min", "max"} & set(shape.metadata))

    def _scalar_type(self, shape: Shape) -> str:
        try:
            return _SCALAR_TYPES[shape.type_name]
        except KeyError:
            msg = f"botocore shape {shape.name} has type {shape.type_name}, which has no mapping"
            raise SystemExit(msg) from None

    def _definition(self, shape: Shape) -> Json:
        if isinstance(shape, StructureShape):
            return self._structure(shape)
        if isinstance(shape, ListShape):
            schema: Json = {"type": "array", "items": self.reference(shape.member)}
            return {**schema, **_bounds(shape, "minItems", "maxItems")}
        if isinstance(shape, MapShape):
            schema = {"type": "object", "additionalProperties": self.reference(shape.value)}
            key = self.reference(shape.key)
            if key != {"type": "string"}:
                schema["propertyNames"] = key
            return {**schema, **_bounds(shape, "minProperties", "maxProperties")}
        kind = self._scalar_type(shape)
        schema = {"type": kind}
        if isinstance(shape, StringShape) and shape.enum:
            schema["enum"] = list(shape.enum)
        if kind == "string":
            schema.update(_bounds(shape, "minLength", "maxLength"))
        elif kind in ("integer", "number"):
            schema.update(_bounds(shape, "minimum", "maximum"))
        return schema

    def _structure(self, shape: StructureShape) -> Json:
        if shape.is_document_type:
            msg = f"botocore shape {shape.name} is a document type, which has no mapping"
            raise SystemExit(msg)
        union = shape.is_tagged_union
        schema: Json = {
            "type": "object",
            "properties": self.members(shape, shape.members, nullable_optional=not union),
            "additionalProperties": False,
        }
        if shape.required_members:
            schema["required"] = list(shape.required_members)
        if union:
            schema["minProperties"] = 1
            schema["maxProperties"] = 1
        return schema


def _bounds(shape: Shape, low: str, high: str) -> Json:
    """Botocore's `min`/`max` traits under the JSON Schema keywords `low`/`high`."""
    bounds: Json = {}
    if "min" in shape.metadata:
        bounds[low] = shape.metadata["min"]
    if "max" in shape.metadata:
        bounds[high] = shape.metadata["max"]
    return bounds


def _or_null(schema: Json) -> Json:
    """Return `schema`, also accepting null.

    Not `anyOf: [schema, null]`: a validator reports a failed anyOf as one
    error at the member ("is not valid under any of the given schemas"),
    while if/else hands the errors of `schema` through with their own paths.
    """
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    return {"if": {"type": "null"}, "else": schema}


def task_definition_def(translator: ShapeTranslator) -> None:
    """Put `RegisterTaskDefinitionRequest` into `$defs`, with the cpu/memory deviation."""
    shape = translator.model.shape_for(TASK_DEFINITION_SHAPE)
    if not isinstance(shape, StructureShape):
        raise SystemExit(f"{TASK_DEFINITION_SHAPE} is no longer a structure")
    translator.reference(shape)
    definition = translator.defs[TASK_DEFINITION_SHAPE]
    for name in CPU_MEMORY_MEMBERS:
        member = shape.members[name]
        if name in shape.required_members:
            raise SystemExit(f"taskDefinition {name} became required: revisit the deviation")
        definition["properties"][name] = {
            "type": ["string", "integer", "null"],
            "minimum": 1,
            "description": plain_text(
                f"{CPU_MEMORY_NOTE} {CPU_MEMORY_SPELLINGS[name]} {member.documentation}",
                limit=DESCRIPTION_LIMIT + len(CPU_MEMORY_NOTE) + len(CPU_MEMORY_SPELLINGS[name]),
            ),
        }
    definition["description"] = plain_text(
        f"RegisterTaskDefinition input, in ECS field names. {NULL_MEANS_ABSENT}"
    )


def apply_documented_rules(defs: dict[str, Json]) -> None:
    """Add `DOCUMENTED_RULES` to the translated `$defs` (each rule must find its place)."""
    for (shape, member), keywords in DOCUMENTED_RULES.items():
        if shape not in defs:
            raise SystemExit(f"documented rule for {shape}: no such shape any more")
        target = defs[shape]
        if member is not None:
            if member not in target.get("properties", {}):
                raise SystemExit(f"documented rule for {shape}.{member}: no such member")
            target = target["properties"][member]
        target.update(keywords)


def pass_through_properties(translator: ShapeTranslator) -> dict[str, Json]:
    """Return the RunTask pass-through members, optional and nullable."""
    shape = translator.model.shape_for(RUN_TASK_SHAPE)
    if not isinstance(shape, StructureShape):
        raise SystemExit(f"{RUN_TASK_SHAPE} is no longer a structure")
    for name in RUN_TASK_PASS_THROUGH:
        if name not in shape.members or name in shape.required_members:
            raise SystemExit(f"RunTask {name} is gone or became required: revisit the list")
    return translator.members(shape, RUN_TASK_PASS_THROUGH, nullable_optional=True)


# --------------------------------------------------------------------------
# Our own fields, hand-written
# --------------------------------------------------------------------------

NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: An indexed run's bounds: 10,000 indexes (Kubernetes' limit for
#: backoffLimitPerIndex), 1,000 in flight at once.
MAX_COMPLETIONS = 10_000
MAX_PARALLELISM = 1_000
RUN_ID_PATTERN = "^[A-Za-z0-9._-]{1,64}$"
TASK_DEFINITION_REF_PATTERN = (
    "^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/)?"
    "[A-Za-z0-9_-]{1,255}(:[1-9][0-9]*)?$"
)

#: Every duration (seconds) a manifest carries is at most 365 days: far inside
#: what a datetime can hold once added to now (year 9999), and longer than any
#: deadline, delay or wait that makes sense for a batch run.
MAX_DURATION_SECONDS = 365 * 24 * 3600
#: Failed attempts allowed: every attempt is a RunTask and a ledger record.
MAX_BACKOFF_LIMIT = 1000
#: Finished runs `status` keeps showing per CronJob.
MAX_HISTORY_LIMIT = 1000
#: Kubernetes' limits for podFailurePolicy: 20 rules, 255 exit codes per rule.
MAX_RETRY_RULES = 20
MAX_RULE_EXIT_CODES = 255
#: ECS reports a container's exit code as a 32-bit integer (Windows uses the range).
MAX_EXIT_CODE = 2**31 - 1
#: ECS's task stopCodes. Kept equal to controller.model.manifest.ECS_STOP_CODES
#: (tests/test_schema.py checks); not imported, as RUN_TASK_PASS_THROUGH.
ECS_STOP_CODES = (
    "TaskFailedToStart",
    "EssentialContainerExited",
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "SpotInterruption",
    "TerminationNotice",
)


def duration(description: str, **schema: Any) -> Json:
    """An integer of seconds, 1..MAX_DURATION_SECONDS, its maximum stated in the description."""
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_DURATION_SECONDS,
        **schema,
        "description": f"{description} At most {MAX_DURATION_SECONDS} (365 days).",
    }


STRING_MAP: Json = {"type": "object", "additionalProperties": {"type": "string"}}

METADATA: Json = {
    "type": "object",
    "description": "Identity of the manifest.",
    "properties": {
        "name": {
            "type": "string",
            "pattern": NAME_PATTERN,
            "maxLength": 63,
            "description": "Unique per source and kind; lowercase letters, digits and '-'.",
        },
        "labels": {**STRING_MAP, "description": "Free-form string labels."},
        "annotations": {
            **STRING_MAP,
            "description": (
                'Free-form string annotations; ecs-job-controller/prune: "false" '
                "keeps the task-definition family from being pruned."
            ),
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}

#: Fields of a JobRun spec that a CronJob jobTemplate shares, except the
#: taskDefinition and pass-through fields generated from botocore.
#: A topic ARN: partition, region, account, name (a FIFO topic's ends .fifo).
SNS_TOPIC_ARN_PATTERN = (
    r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
)

JOB_SPEC_FIELDS: Json = {
    "cluster": {
        "type": "string",
        "minLength": 1,
        "description": "Name or ARN of the ECS cluster the tasks run in.",
    },
    "taskDefinitionRef": {
        "type": "string",
        "pattern": TASK_DEFINITION_REF_PATTERN,
        "description": (
            "An existing task definition (family, family:revision or ARN), used instead of "
            "taskDefinition; it is never registered nor pruned."
        ),
    },
    "count": {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "default": 1,
        "description": (
            "Tasks per attempt, 1..10 (RunTask's limit); the attempt succeeds when all of them "
            "succeed."
        ),
    },
    "completions": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_COMPLETIONS,
        "description": (
            "An indexed run: indexes 0..completions-1 each run until it succeeds once, with "
            f"JOB_COMPLETION_INDEX set on every container; at most {MAX_COMPLETIONS}; absent: "
            "a plain run."
        ),
    },
    "parallelism": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_PARALLELISM,
        "description": (
            "At most this many indexes of an indexed run have an attempt in flight; "
            f"default: completions; at most {MAX_PARALLELISM}."
        ),
    },
    "maxFailedIndexes": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_COMPLETIONS,
        "description": (
            "An indexed run fails as soon as more indexes than this failed; absent: the first "
            f"failed index fails the run (at most {MAX_COMPLETIONS}). backoffLimit applies to "
            "each index."
        ),
    },
    "backoffLimit": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_BACKOFF_LIMIT,
        "default": 0,
        "description": (
            f"Failed attempts allowed before the run is Failed; at most {MAX_BACKOFF_LIMIT}."
        ),
    },
    "backoff": {
        "type": "object",
        "description": "Delay before attempt n+1: initialSeconds * 2^(n-1), capped at maxSeconds.",
        "properties": {
            "initialSeconds": duration("Delay before the second attempt.", default=10),
            "maxSeconds": duration("Longest delay between attempts.", default=600),
        },
        "additionalProperties": False,
    },
    "activeDeadlineSeconds": duration(
        "Seconds from the first attempt's start after which the run's tasks are stopped "
        "and it is Failed (DeadlineExceeded)."
    ),
    "successContainers": {
        "type": "array",
        "items": {"type": "string", "pattern": ECS_NAME_PATTERN},
        "minItems": 1,
        "uniqueItems": True,
        "description": (
            "Containers whose exit codes decide success; default: every essential container."
        ),
    },
    "retryPolicy": {
        "type": "object",
        "description": (
            "Retry decided by how an attempt failed (as Kubernetes podFailurePolicy and AWS "
            "Batch evaluateOnExit); without rules, backoffLimit and the infrastructure budget."
        ),
        "properties": {
            "rules": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_RETRY_RULES,
                "description": (
                    "Judged in order for an attempt that ended as an application or "
                    "infrastructure failure; the first rule whose conditions all match "
                    f"decides. At most {MAX_RETRY_RULES} rules."
                ),
                "items": {
                    "type": "object",
                    "properties": {
                        "action": {
                            "enum": ["Retry", "FailRun", "Ignore"],
                            "description": (
                                "Retry: retried, counted against backoffLimit. FailRun: the "
                                "run fails at once (FailedByRetryRule). Ignore: retried, "
                                "counted against no budget (activeDeadlineSeconds bounds it)."
                            ),
                        },
                        "onExitCodes": {
                            "type": "object",
                            "description": (
                                "Non-zero exit codes of the success containers (or of "
                                "`container`); containers that exited 0 are not checked."
                            ),
                            "properties": {
                                "container": {
                                    "type": "string",
                                    "pattern": ECS_NAME_PATTERN,
                                    "description": "Only this container's exit code is checked.",
                                },
                                "operator": {
                                    "enum": ["In", "NotIn"],
                                    "description": (
                                        "In: a code is one of values (0 not allowed). NotIn: a "
                                        "non-zero code is none of values."
                                    ),
                                },
                                "values": {
                                    "type": "array",
                                    "items": {
                                        "type": "integer",
                                        "minimum": -MAX_EXIT_CODE - 1,
                                        "maximum": MAX_EXIT_CODE,
                                        "description": (
                                            f"An exit code, a 32-bit integer: at most "
                                            f"{MAX_EXIT_CODE}."
                                        ),
                                    },
                                    "minItems": 1,
                                    "maxItems": MAX_RULE_EXIT_CODES,
                                    "uniqueItems": True,
                                    "description": (
                                        f"Exit codes, 1..{MAX_RULE_EXIT_CODES} of them."
                                    ),
                                },
                            },
                            "required": ["operator", "values"],
                            "additionalProperties": False,
                        },
                        "onStopCodes": {
                            "type": "array",
                            "items": {"enum": list(ECS_STOP_CODES)},
                            "minItems": 1,
                            "uniqueItems": True,
                            "description": "One of the attempt's tasks stopped with one of these.",
                        },
                        "onStoppedReason": {
                            "type": "string",
                            "minLength": 1,
                            "description": (
                                "An fnmatch glob (*, ?, [...]; case-sensitive) one task's "
                                "stoppedReason matches whole."
                            ),
                        },
                    },
                    "required": ["action"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["rules"],
        "additionalProperties": False,
    },
    "notify": {
        "type": "object",
        "description": (
            "Publish the run to an SNS topic once when it ends in one of `on`"
            " (README: Notifications)."
        ),
        "properties": {
            "snsTopicArn": {
                "type": "string",
                "pattern": SNS_TOPIC_ARN_PATTERN,
                "description": "The SNS topic (a FIFO topic's ARN ends .fifo).",
            },
            "on": {
                "type": "array",
                "items": {"enum": ["Failed", "Succeeded", "Missed"]},
                "minItems": 1,
                "uniqueItems": True,
                "default": ["Failed"],
                "description": (
                    "Failed: ended Failed for any reason but Missed; Missed: a CronJob"
                    " occurrence recorded as Missed; Succeeded: ended Succeeded."
                ),
            },
        },
        "required": ["snsTopicArn"],
        "additionalProperties": False,
    },
    "capacity": {
        "type": "object",
        "description": "Where to add capacity when ECS cannot place the tasks.",
        "properties": {
            "autoScalingGroup": {
                "type": "string",
                "minLength": 1,
                "description": "Auto Scaling group to scale out when tasks cannot be placed.",
            },
            "maxPendingSeconds": duration(
                "Waiting for capacity longer than this fails the run.", default=900
            ),
        },
        "additionalProperties": False,
    },
}

#: Fields only a JobRun spec has (a CronJob occurrence gets its run id from its time).
JOB_RUN_ONLY_FIELDS: Json = {
    "runId": {
        "type": "string",
        "pattern": RUN_ID_PATTERN,
        "default": "1",
        "description": "Identifies this run of the manifest; change it to run again.",
    },
    "suspend": {
        "type": "boolean",
        "default": False,
        "description": "true: not started (a running attempt is not stopped).",
    },
}

CRON_JOB_FIELDS: Json = {
    "schedule": {
        "type": "string",
        "minLength": 1,
        "description": "Five cron fields or @hourly/@daily/@weekly/@monthly/@yearly.",
    },
    "timeZone": {
        "type": "string",
        "minLength": 1,
        "default": "UTC",
        "description": "IANA time zone the schedule is read in.",
    },
    "concurrencyPolicy": {
        "enum": ["Allow", "Forbid", "Replace"],
        "default": "Forbid",
        "description": "What to do when an occurrence is due while another run is active.",
    },
    "startingDeadlineSeconds": duration(
        "An occurrence not started this long after its time is Missed."
    ),
    "suspend": {
        "type": "boolean",
        "default": False,
        "description": "true: no new occurrences are started.",
    },
    "successfulRunsHistoryLimit": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_HISTORY_LIMIT,
        "default": 3,
        "description": (
            f"How many succeeded runs `status` keeps showing; at most {MAX_HISTORY_LIMIT}."
        ),
    },
    "failedRunsHistoryLimit": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_HISTORY_LIMIT,
        "default": 3,
        "description": (
            f"How many failed runs `status` keeps showing; at most {MAX_HISTORY_LIMIT}."
        ),
    },
}


def job_spec_def(translator: ShapeTranslator) -> Json:
    """Return the `JobSpec` $def: what one run executes, shared by JobRun and CronJob."""
    task_definition_def(translator)
    properties: Json = {
        **JOB_SPEC_FIELDS,
        "taskDefinition": {
            "$ref": f"#/$defs/{TASK_DEFINITION_SHAPE}",
            "description": (
                "The task definition to register (RegisterTaskDefinition input, ECS field "
                "names); exactly one of taskDefinition and taskDefinitionRef."
            ),
        },
        **pass_through_properties(translator),
    }
    apply_documented_rules(translator.defs)
    return {
        "type": "object",
        "description": (
            "What one run executes. RunTask pass-through fields keep their ECS names and "
            "accept null, meaning absent. Closed by the schema that uses it "
            "(unevaluatedProperties: false)."
        ),
        "properties": properties,
        "required": ["cluster"],
    }


def _manifest_schema(kind: str, description: str, spec: Json, defs: dict[str, Json]) -> Json:
    file_name = f"{kind.lower()}.schema.json"
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + file_name,
        "title": f"ecs-job-controller {kind}",
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": {"$ref": "#/$defs/Metadata"},
            "spec": spec,
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "$defs": {"Metadata": METADATA, **defs},
        "x-botocore-version": botocore.__version__,
    }


def _generated_note() -> str:
    return (
        f"Generated by scripts/generate_schema.py from botocore {botocore.__version__}'s ECS "
        "model; do not edit (run `make schema`). Deviations from botocore: taskDefinition "
        "cpu/memory accept an integer; optional ECS members accept null, meaning absent; "
        "enums and maximums are enforced, and so are the name and tag-key rules the ECS "
        "documentation states."
    )


def build_schemas(model: ServiceModel | None = None) -> dict[str, Json]:
    """Both schemas, by file name, from `model` (default: the installed botocore's ECS)."""
    if model is None:
        model = botocore.session.get_session().get_service_model("ecs")

    job_translator = ShapeTranslator(model)
    job_spec = job_spec_def(job_translator)
    job_run = _manifest_schema(
        "JobRun",
        f"A one-off run of an ECS task (DESIGN.md §3). {_generated_note()}",
        {
            "$ref": "#/$defs/JobSpec",
            "description": "The job: a JobSpec plus runId and suspend.",
            "properties": JOB_RUN_ONLY_FIELDS,
            "unevaluatedProperties": False,
        },
        {"JobSpec": job_spec, **job_translator.defs},
    )

    cron_translator = ShapeTranslator(model)
    cron_job_spec = job_spec_def(cron_translator)
    cron_job = _manifest_schema(
        "CronJob",
        f"A schedule of ECS task runs (DESIGN.md §3). {_generated_note()}",
        {
            "type": "object",
            "description": "The schedule, and the job each occurrence runs.",
            "properties": {
                **CRON_JOB_FIELDS,
                "jobTemplate": {
                    "$ref": "#/$defs/JobSpec",
                    "description": "The job each occurrence runs: a JobRun spec without runId.",
                    "unevaluatedProperties": False,
                },
            },
            "required": ["schedule", "jobTemplate"],
            "additionalProperties": False,
        },
        {"JobSpec": cron_job_spec, **cron_translator.defs},
    )
    return {"jobrun.schema.json": job_run, "cronjob.schema.json": cron_job}


def render(schema: Json) -> str:
    """Return a schema's committed text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schemas (or, with --check, report whether they are up to date)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR, help="directory to write to")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    args = parser.parse_args(argv)
    stale: list[str] = []
    for name, schema in build_schemas().items():
        path: Path = args.out / name
        text = render(schema)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print("out of date (run `make schema`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
