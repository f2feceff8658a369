"""Round trip through moto: what ECS describes canonicalises like what we sent.

This is the other half of the canonical-form proof (DESIGN.md §5): every real
task definition that botocore accepts, and generated ones, are registered in
moto, described with their tags, and must equal the input canonically.

moto is a rough ECS model. Where it answers something AWS would not, the test
undoes that one invention (see `undo_moto_inventions`) and never bends the
canonical rules:

* moto invents `networkMode`: "bridge" when none was registered (AWS reports
  none: taskdefs-real/058 is a real DescribeTaskDefinition answer without
  one), and "awsvpc" whenever requiresCompatibilities is anything but ["EC2"],
  even ["EXTERNAL"] with networkMode "bridge" registered (taskdefs-real/015).
* moto does not store `enableFaultInjection` nor
  `trustedExecutionConfiguration` (RegisterTaskDefinition drops them).
* moto checks one real ECS rule: a container needs memory or
  memoryReservation when the task sets no memory. One real file breaks it;
  ECS would refuse it too, and the test asserts exactly that refusal.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from controller.model.loader import ManifestLoader
from controller.model.manifest import Kind
from controller.model.taskdef import canonical_task_definition, to_register_input
from controller.model.taskdef_diff import changed_paths
from controller.schemas import validators
from tests.corpora import REAL_FILES

REGION = "us-east-1"


_REQUEST_SHAPE = (
    botocore.session.get_session()
    .get_service_model("ecs")
    .operation_model("RegisterTaskDefinition")
    .input_shape
)


def botocore_accepts(params: dict[str, Any]) -> bool:
    """True when botocore's own parameter validation passes RegisterTaskDefinition input."""
    assert _REQUEST_SHAPE is not None
    return not ParamValidator().validate(params, _REQUEST_SHAPE).has_errors()


def register_params(path: Path) -> dict[str, Any]:
    return to_register_input(json.loads(path.read_text()))


ACCEPTED = [p for p in REAL_FILES if botocore_accepts(register_params(p))]

#: Files botocore accepts but ECS refuses, with the refusal (moto mirrors it).
ECS_REFUSES = {
    "012-DataDog-datadog-agent-ecs-task-patcher.json": (
        "At least one of 'memory' or 'memoryReservation' must be specified"
    ),
}

#: RegisterTaskDefinition members moto silently drops.
MOTO_DROPS = ("enableFaultInjection", "trustedExecutionConfiguration")


@pytest.fixture(scope="module")
def ecs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ecs", region_name=REGION)


def undo_moto_inventions(sent: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """Return the DescribeTaskDefinition answer as AWS would give it (see module doc)."""
    described = dict(answer["taskDefinition"])
    if "networkMode" in sent:
        described["networkMode"] = sent["networkMode"]
    else:
        described.pop("networkMode", None)
    return {"taskDefinition": described, "tags": answer.get("tags", [])}


def expected(sent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sent.items() if k not in MOTO_DROPS}


def round_trip(ecs: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Register `params`, describe the revision with its tags, undo moto's inventions."""
    arn = ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"]
    answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    return undo_moto_inventions(params, answer)


def test_enough_real_files_are_exercised() -> None:
    assert len(ACCEPTED) - len(ECS_REFUSES) >= 50
    assert set(ECS_REFUSES) <= {p.name for p in ACCEPTED}


@pytest.mark.parametrize("path", ACCEPTED, ids=[p.stem for p in ACCEPTED])
def test_real_file_round_trips(ecs: Any, path: Path) -> None:
    params = register_params(path)
    if path.name in ECS_REFUSES:
        with pytest.raises(ClientError, match=ECS_REFUSES[path.name]):
            ecs.register_task_definition(**params)
        return
    described = round_trip(ecs, params)
    want = canonical_task_definition(expected(params))
    got = canonical_task_definition(described)
    assert got == want, changed_paths(want, got)


def test_controller_tags_on_a_revision_do_not_change_its_canonical_form(ecs: Any) -> None:
    params = register_params(ACCEPTED[0])
    user_tags = [{"key": "team", "value": "data"}]
    ours = [
        {"key": "ecs-job-controller/owner", "value": "default"},
        {"key": "ecs-job-controller/spec-hash", "value": "0" * 64},
    ]
    described = round_trip(ecs, {**params, "tags": user_tags + ours})
    assert {t["key"] for t in described["tags"]} >= {"team", "ecs-job-controller/owner"}
    assert canonical_task_definition(described) == canonical_task_definition(
        {**params, "tags": user_tags}
    )


# --- generated task definitions --------------------------------------------------------

_NAME = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,11}", fullmatch=True)
_IMAGES = st.sampled_from(["nginx", "nginx:1.27", "public.ecr.aws/docker/library/busybox:1"])
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_=/.", max_size=8)

# The same amounts in every spelling RegisterTaskDefinition or YAML produce.
_CPU = st.sampled_from(
    [256, "256", "0.25 vCPU", "0.25vcpu", 512, "0.5 VCPU", 1024, "1024", "1 vCPU", "2vcpu"]
)
_MEMORY = st.sampled_from([512, "512", "0.5 GB", 1024, "1GB", "1 gb", "2048", "2 GB", 4096])


@st.composite
def port_mappings(draw: st.DrawFn, network_mode: str | None) -> list[dict[str, Any]]:
    ports = draw(st.lists(st.integers(1, 65535), max_size=3, unique=True))
    mappings = []
    for port in ports:
        mapping: dict[str, Any] = {"containerPort": port}
        if network_mode in ("awsvpc", "host"):
            # ECS demands hostPort == containerPort in these modes.
            host = draw(st.sampled_from([None, port]))
        else:
            host = draw(st.one_of(st.none(), st.just(0), st.integers(1, 65535)))
        if host is not None:
            mapping["hostPort"] = host
        if protocol := draw(st.sampled_from([None, "tcp", "udp"])):
            mapping["protocol"] = protocol
        mappings.append(mapping)
    return mappings


@st.composite
def containers(
    draw: st.DrawFn, name: str, network_mode: str | None, needs_memory: bool
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": draw(_IMAGES)}
    if draw(st.booleans()):
        c["cpu"] = draw(st.sampled_from([0, 10, 128, 512]))
    if needs_memory or draw(st.booleans()):
        c["memory"] = draw(st.integers(64, 2048))
    if (essential := draw(st.sampled_from([None, True, False]))) is not None:
        c["essential"] = essential
    env = draw(
        st.lists(
            st.fixed_dictionaries({"name": _NAME}, optional={"value": _TEXT}),
            max_size=4,
        )
    )
    if env:
        c["environment"] = env
    if network_mode != "none" and (ports := draw(port_mappings(network_mode))):
        c["portMappings"] = ports
    if draw(st.booleans()):
        c["command"] = draw(st.lists(_TEXT, min_size=1, max_size=3))
    return c


@st.composite
def task_definitions(draw: st.DrawFn) -> dict[str, Any]:
    network_mode = draw(st.sampled_from([None, "bridge", "host", "awsvpc", "none"]))
    memory = draw(st.one_of(st.none(), _MEMORY))
    names = draw(st.lists(_NAME, min_size=1, max_size=3, unique_by=str.lower))
    td: dict[str, Any] = {
        "family": draw(_NAME),
        "containerDefinitions": [
            draw(containers(name, network_mode, needs_memory=memory is None)) for name in names
        ],
    }
    if network_mode is not None:
        td["networkMode"] = network_mode
    if memory is not None:
        td["memory"] = memory
    if (cpu := draw(st.one_of(st.none(), _CPU))) is not None:
        td["cpu"] = cpu
    return td


@settings(max_examples=40, deadline=None)
@given(written=task_definitions())
def test_generated_task_definitions_round_trip(ecs: Any, written: dict[str, Any]) -> None:
    params = to_register_input(written)
    assert botocore_accepts(params)
    described = round_trip(ecs, params)
    want = canonical_task_definition(written)
    got = canonical_task_definition(described)
    assert got == want, changed_paths(want, got)


def as_manifest(task_definition: dict[str, Any]) -> dict[str, Any]:
    """A JobRun running `task_definition`, networked when it is awsvpc."""
    spec: dict[str, Any] = {"cluster": "batch", "taskDefinition": task_definition}
    if task_definition.get("networkMode") == "awsvpc":
        spec["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    return {
        "apiVersion": "ecs-job-controller/v1",
        "kind": "JobRun",
        "metadata": {"name": "real"},
        "spec": spec,
    }


#: Real files the schema accepts as a manifest's taskDefinition (its verdict
#: is proven against botocore's in tests/test_schema.py).
SCHEMA_ACCEPTS = [
    p
    for p in REAL_FILES
    if not list(validators()[Kind.JOB_RUN].errors(as_manifest(json.loads(p.read_text()))))
]


def test_the_semantic_checks_are_exercised_on_enough_real_files() -> None:
    assert len(SCHEMA_ACCEPTS) >= 50
    assert set(ECS_REFUSES) <= {p.name for p in SCHEMA_ACCEPTS}


@pytest.mark.parametrize("path", SCHEMA_ACCEPTS, ids=[p.stem for p in SCHEMA_ACCEPTS])
def test_validate_accepts_exactly_the_real_files_ecs_accepts(path: Path) -> None:
    """DESIGN §5: a file ECS accepts validates as a manifest's taskDefinition; 012 does not."""
    document = json.dumps(as_manifest(json.loads(path.read_text()))).encode()
    loaded = ManifestLoader(validators()).load({"m.yaml": document})
    if path.name in ECS_REFUSES:
        assert loaded.errors, "validate accepts what ECS refuses"
        assert all("needs memory or memoryReservation" in e.message for e in loaded.errors)
        return
    assert loaded.errors == ()
