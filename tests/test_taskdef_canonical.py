"""The canonical task definition: one test per rule, then the shared corpora.

Pure tests (no AWS). The corpora live in tests/data (tests/corpora.py);
a missing corpus is an error, never a skip.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from controller.model.taskdef import (
    RESPONSE_ONLY_FIELDS,
    canonical_task_definition,
    spec_hash,
    strip_nulls,
    task_cpu_units,
    task_memory_mib,
    to_register_input,
)
from controller.model.taskdef_diff import changed_paths
from tests.corpora import EQUIVALENCE, REAL_FILES

CASES = json.loads((EQUIVALENCE / "cases.json").read_text())
DESCRIBED_ONLY = json.loads((EQUIVALENCE / "described-only.json").read_text())


def td(*containers: dict[str, Any], **task: Any) -> dict[str, Any]:
    """A small task definition: family "f" plus the given containers and task fields."""
    return {"family": "f", "containerDefinitions": list(containers), **task}


def app(**fields: Any) -> dict[str, Any]:
    """A container named app running nginx, plus the given fields."""
    return {"name": "app", "image": "nginx", **fields}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return canonical_task_definition(a) == canonical_task_definition(b)


def container(canonical: dict[str, Any], name: str = "app") -> dict[str, Any]:
    return next(c for c in canonical["containerDefinitions"] if c["name"] == name)


# --- response-only fields -----------------------------------------------------------


@pytest.mark.parametrize("field", sorted(RESPONSE_ONLY_FIELDS))
def test_response_only_fields_are_dropped(field: str) -> None:
    described = {**td(app()), field: "arn:aws:ecs:...:1" if field.endswith("Arn") else 7}
    assert field not in canonical_task_definition(described)
    assert same(described, td(app()))


def test_all_response_only_fields_of_describe_are_listed() -> None:
    for field in ("taskDefinitionArn", "revision", "status", "compatibilities"):
        assert field in RESPONSE_ONLY_FIELDS
    for field in ("requiresAttributes", "registeredAt", "registeredBy", "deregisteredAt"):
        assert field in RESPONSE_ONLY_FIELDS
    assert "deleteRequestedAt" in RESPONSE_ONLY_FIELDS


# --- null, empty and zero values ------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_empty_values_are_dropped_at_every_level(empty: Any) -> None:
    written = td(
        app(user=empty, logConfiguration={"logDriver": "awslogs", "options": empty}),
        taskRoleArn=empty,
        volumes=empty,
    )
    canonical = canonical_task_definition(written)
    assert "taskRoleArn" not in canonical
    assert "volumes" not in canonical
    assert "user" not in container(canonical)
    assert container(canonical)["logConfiguration"] == {"logDriver": "awslogs"}


def test_empty_lists_described_by_ecs_equal_missing_ones() -> None:
    described = td(
        app(portMappings=[], environment=[], mountPoints=[], volumesFrom=[], systemControls=[]),
        volumes=[],
        placementConstraints=[],
    )
    assert same(described, td(app()))


def test_a_structure_that_becomes_empty_disappears() -> None:
    written = td(app(linuxParameters={"capabilities": {"add": [], "drop": None}}))
    assert "linuxParameters" not in container(canonical_task_definition(written))


def test_empty_string_in_an_argv_list_is_kept() -> None:
    # command [""] runs the image with one empty argument: not the same as no command.
    assert container(canonical_task_definition(td(app(command=[""]))))["command"] == [""]
    assert not same(td(app(command=[""])), td(app()))


def test_empty_string_value_of_a_free_map_is_kept() -> None:
    # A Docker label with an empty value exists; an empty string in a structure does not.
    labelled = canonical_task_definition(td(app(dockerLabels={"team": "", "gone": None})))
    assert container(labelled)["dockerLabels"] == {"team": ""}
    assert not same(td(app(dockerLabels={"team": ""})), td(app()))


def test_zero_valued_list_entries_are_compacted() -> None:
    # The SDK's typed decode makes {} and {"hardLimit": 0, "softLimit": 0} the same zero value.
    assert same(td(app(ulimits=[{}])), td(app(ulimits=[{"hardLimit": 0, "softLimit": 0}])))
    assert same(td(app(ulimits=[{}])), td(app()))


def test_zeros_in_a_real_entry_are_kept() -> None:
    core = {"name": "core", "softLimit": 0, "hardLimit": 0}
    assert container(canonical_task_definition(td(app(ulimits=[core]))))["ulimits"] == [core]


def test_null_list_entries_are_dropped() -> None:
    assert same(td(app(environment=[None], portMappings=[{}])), td(app()))


# --- task cpu and memory ------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        (256, "256"),
        (256.0, "256"),
        ("256", "256"),
        (" 512 ", "512"),
        ("1 vCPU", "1024"),
        ("1vcpu", "1024"),
        ("0.5 vCPU", "512"),
        ("0.25 VCPU", "256"),
        ("2 vcpu", "2048"),
        ("0.3 vCPU", "0.3 vCPU"),  # not a whole number of units: left for ECS to judge
        ("2 GB", "2 GB"),  # a memory unit is no CPU spelling
    ],
)
def test_task_cpu_becomes_a_string_of_units(written: Any, canonical: str) -> None:
    assert canonical_task_definition(td(app(), cpu=written))["cpu"] == canonical


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        (2048, "2048"),
        ("512", "512"),
        ("2 GB", "2048"),
        ("2GB", "2048"),
        ("0.5 GB", "512"),
        ("1gb", "1024"),
        ("1 vCPU", "1 vCPU"),  # a CPU unit is no memory spelling
    ],
)
def test_task_memory_becomes_a_string_of_mib(written: Any, canonical: str) -> None:
    assert canonical_task_definition(td(app(), memory=written))["memory"] == canonical


@pytest.mark.parametrize(
    ("written", "cpu_units", "memory_mib"),
    [
        (1024, 1024, 1024),
        ("1024", 1024, 1024),
        ("1 vCPU", 1024, None),
        ("1 vcpu", 1024, None),
        (".25 vCPU", 256, None),
        ("2 GB", None, 2048),
        ("2GB", None, 2048),
        (".5 gb", None, 512),
        ("3 vCPUs", None, None),  # a plural is no spelling ECS documents
        ("512 MB", None, None),
        ("1 GiB", None, None),
        ("lots", None, None),
        ("0.3 vCPU", None, None),  # 307.2 units: no rounding is invented
        ("1.5", None, None),
        (True, None, None),
    ],
)
def test_task_units_accept_exactly_the_documented_spellings(
    written: Any, cpu_units: int | None, memory_mib: int | None
) -> None:
    assert task_cpu_units(written) == cpu_units
    assert task_memory_mib(written) == memory_mib


def test_an_unconvertible_spelling_stays_as_written_and_differs_from_every_other() -> None:
    assert to_register_input(td(app(), memory="512 MB"))["memory"] == "512 MB"
    assert spec_hash(td(app(), memory="512 MB")) != spec_hash(td(app(), memory="512"))


# --- container defaults -------------------------------------------------------------


def test_essential_defaults_to_true() -> None:
    assert container(canonical_task_definition(td(app())))["essential"] is True
    assert same(td(app()), td(app(essential=True)))
    assert not same(td(app()), td(app(essential=False)))


def test_container_cpu_zero_equals_missing() -> None:
    assert same(td(app(cpu=0)), td(app()))
    assert "cpu" not in container(canonical_task_definition(td(app(cpu=0))))
    assert not same(td(app(cpu=10)), td(app()))


def test_container_cpu_as_string_is_not_coerced() -> None:
    # The API type is an integer; the schema rejects a string, we do not guess.
    assert not same(td(app(cpu="10")), td(app(cpu=10)))


def test_port_protocol_defaults_to_tcp() -> None:
    assert same(
        td(app(portMappings=[{"containerPort": 80}])),
        td(app(portMappings=[{"containerPort": 80, "protocol": "tcp"}])),
    )
    assert not same(
        td(app(portMappings=[{"containerPort": 80}])),
        td(app(portMappings=[{"containerPort": 80, "protocol": "udp"}])),
    )


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_host_port_is_the_container_port_in_awsvpc_and_host_mode(mode: str) -> None:
    written = td(app(portMappings=[{"containerPort": 8080}]), networkMode=mode)
    described = td(app(portMappings=[{"containerPort": 8080, "hostPort": 8080}]), networkMode=mode)
    assert same(written, described)
    port = container(canonical_task_definition(written))["portMappings"][0]
    assert port["hostPort"] == 8080


@pytest.mark.parametrize("mode", [None, "bridge", "none"])
def test_missing_host_port_is_dynamic_outside_awsvpc(mode: str | None) -> None:
    extra = {"networkMode": mode} if mode else {}
    written = td(app(portMappings=[{"containerPort": 8080}]), **extra)
    pinned = td(app(portMappings=[{"containerPort": 8080, "hostPort": 8080}]), **extra)
    assert not same(written, pinned)


def test_host_port_zero_equals_missing_in_bridge_mode() -> None:
    assert same(
        td(app(portMappings=[{"containerPort": 80, "hostPort": 0}]), networkMode="bridge"),
        td(app(portMappings=[{"containerPort": 80}]), networkMode="bridge"),
    )


def test_port_range_gets_no_host_port() -> None:
    written = td(app(portMappings=[{"containerPortRange": "8000-8010"}]), networkMode="awsvpc")
    port = container(canonical_task_definition(written))["portMappings"][0]
    assert "hostPort" not in port


def test_health_check_timings_default_to_30_5_3() -> None:
    command = ["CMD-SHELL", "true"]
    written = td(app(healthCheck={"command": command}))
    described = td(
        app(healthCheck={"command": command, "interval": 30, "timeout": 5, "retries": 3})
    )
    assert same(written, described)
    assert not same(written, td(app(healthCheck={"command": command, "interval": 10})))


def test_health_check_start_period_has_no_default() -> None:
    # The API documents startPeriod as "off" by default, not as a number.
    health = container(canonical_task_definition(td(app(healthCheck={"command": ["true"]}))))
    assert "startPeriod" not in health["healthCheck"]
    assert not same(
        td(app(healthCheck={"command": ["true"]})),
        td(app(healthCheck={"command": ["true"], "startPeriod": 0})),
    )


@pytest.mark.parametrize(
    ("key", "entry"),
    [
        ("mountPoints", {"sourceVolume": "data", "containerPath": "/data"}),
        ("volumesFrom", {"sourceContainer": "init"}),
    ],
)
def test_read_only_defaults_to_false(key: str, entry: dict[str, Any]) -> None:
    assert same(td(app(**{key: [entry]})), td(app(**{key: [{**entry, "readOnly": False}]})))
    assert not same(td(app(**{key: [entry]})), td(app(**{key: [{**entry, "readOnly": True}]})))


@pytest.mark.parametrize(
    "flag", ["privileged", "readonlyRootFilesystem", "disableNetworking", "interactive"]
)
def test_false_default_container_flags_equal_missing(flag: str) -> None:
    assert same(td(app(**{flag: False})), td(app()))
    assert not same(td(app(**{flag: True})), td(app()))


def test_version_consistency_defaults_to_enabled() -> None:
    assert same(td(app(versionConsistency="enabled")), td(app()))
    assert not same(td(app(versionConsistency="disabled")), td(app()))


def test_init_process_disabled_equals_missing() -> None:
    assert same(td(app(linuxParameters={"initProcessEnabled": False})), td(app()))
    assert not same(td(app(linuxParameters={"initProcessEnabled": True})), td(app()))


def test_environment_entry_without_value_is_dropped() -> None:
    # ECS drops such entries on register, so the revision never has them.
    assert same(
        td(app(environment=[{"name": "EMPTY"}, {"name": "NULL", "value": None}])), td(app())
    )
    assert same(td(app(environment=[{"name": "BLANK", "value": ""}])), td(app()))
    assert not same(td(app(environment=[{"name": "SET", "value": "1"}])), td(app()))


# --- order-free and order-significant lists ------------------------------------------


def test_containers_are_sorted_by_name() -> None:
    web, worker = {"name": "web", "image": "nginx"}, {"name": "worker", "image": "busybox"}
    canonical = canonical_task_definition(td(worker, web))
    assert [c["name"] for c in canonical["containerDefinitions"]] == ["web", "worker"]
    assert same(td(web, worker), td(worker, web))


CONTAINER_SETS = {
    "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
    "secrets": [{"name": "B", "valueFrom": "arn:b"}, {"name": "A", "valueFrom": "arn:a"}],
    "portMappings": [{"containerPort": 81}, {"containerPort": 80}],
    "mountPoints": [
        {"sourceVolume": "b", "containerPath": "/b"},
        {"sourceVolume": "a", "containerPath": "/a"},
    ],
    "volumesFrom": [{"sourceContainer": "b"}, {"sourceContainer": "a"}],
    "ulimits": [
        {"name": "nproc", "softLimit": 1, "hardLimit": 2},
        {"name": "core", "softLimit": 0, "hardLimit": 0},
    ],
    "systemControls": [
        {"namespace": "net.core.somaxconn", "value": "1024"},
        {"namespace": "kernel.shmmax", "value": "1"},
    ],
    "extraHosts": [
        {"hostname": "b", "ipAddress": "10.0.0.2"},
        {"hostname": "a", "ipAddress": "10.0.0.1"},
    ],
    "dependsOn": [
        {"containerName": "b", "condition": "START"},
        {"containerName": "a", "condition": "HEALTHY"},
    ],
    "resourceRequirements": [
        {"type": "InferenceAccelerator", "value": "device_1"},
        {"type": "GPU", "value": "1"},
    ],
    "links": ["db", "cache"],
}


@pytest.mark.parametrize(("key", "entries"), sorted(CONTAINER_SETS.items()))
def test_order_free_container_lists_are_sorted(key: str, entries: list[Any]) -> None:
    forward = td(app(**{key: entries}))
    backward = td(app(**{key: list(reversed(entries))}))
    assert same(forward, backward)
    assert spec_hash(forward) == spec_hash(backward)


TASK_SETS = {
    "volumes": [{"name": "b"}, {"name": "a", "host": {"sourcePath": "/a"}}],
    "placementConstraints": [
        {"type": "memberOf", "expression": "attribute:b"},
        {"type": "memberOf", "expression": "attribute:a"},
    ],
    "requiresCompatibilities": ["FARGATE", "EC2"],
    "tags": [{"key": "team", "value": "data"}, {"key": "env", "value": "prod"}],
    "inferenceAccelerators": [
        {"deviceName": "b", "deviceType": "eia2.medium"},
        {"deviceName": "a", "deviceType": "eia2.medium"},
    ],
}


@pytest.mark.parametrize(("key", "entries"), sorted(TASK_SETS.items()))
def test_order_free_task_lists_are_sorted(key: str, entries: list[Any]) -> None:
    assert same(td(app(), **{key: entries}), td(app(), **{key: list(reversed(entries))}))


def test_proxy_properties_are_sorted_and_type_defaults_to_appmesh() -> None:
    props = [{"name": "ProxyIngressPort", "value": "15000"}, {"name": "AppPorts", "value": "80"}]
    written = td(app(), proxyConfiguration={"containerName": "envoy", "properties": props})
    described = td(
        app(),
        proxyConfiguration={
            "type": "APPMESH",
            "containerName": "envoy",
            "properties": list(reversed(props)),
        },
    )
    assert same(written, described)


def test_capabilities_and_device_permissions_are_sets() -> None:
    a = td(
        app(
            linuxParameters={
                "capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"]},
                "devices": [{"hostPath": "/dev/fuse", "permissions": ["write", "read"]}],
            }
        )
    )
    b = td(
        app(
            linuxParameters={
                "capabilities": {"add": ["NET_ADMIN", "SYS_PTRACE"]},
                "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}],
            }
        )
    )
    assert same(a, b)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("command", ["bin/backfill", "--month", "2026-11"]),
        ("entryPoint", ["sh", "-c"]),
        ("dnsServers", ["10.0.0.2", "10.0.0.3"]),
        ("dnsSearchDomains", ["a.internal", "b.internal"]),
        ("dockerSecurityOptions", ["no-new-privileges", "label:type:a"]),
        (
            "environmentFiles",
            [
                {"value": "arn:aws:s3:::b/1.env", "type": "s3"},
                {"value": "arn:aws:s3:::b/2.env", "type": "s3"},
            ],
        ),
    ],
)
def test_order_significant_lists_keep_their_order(key: str, value: list[Any]) -> None:
    canonical = canonical_task_definition(td(app(**{key: value})))
    assert container(canonical)[key] == value
    assert not same(td(app(**{key: value})), td(app(**{key: list(reversed(value))})))


def test_health_check_command_keeps_its_order() -> None:
    assert not same(
        td(app(healthCheck={"command": ["CMD", "true"]})),
        td(app(healthCheck={"command": ["true", "CMD"]})),
    )


# --- tags -----------------------------------------------------------------------------


def test_controller_tags_are_excluded_and_user_tags_kept() -> None:
    ours = [
        {"key": "ecs-job-controller/owner", "value": "default"},
        {"key": "ecs-job-controller/spec-hash", "value": "ab" * 32},
    ]
    user = [{"key": "team", "value": "data"}]
    canonical = canonical_task_definition(td(app(), tags=ours + user))
    assert canonical["tags"] == user
    assert same(td(app(), tags=ours + user), td(app(), tags=user))
    assert same(td(app(), tags=ours), td(app()))
    assert not same(td(app(), tags=user), td(app()))


def test_a_user_tag_that_merely_mentions_the_prefix_is_kept() -> None:
    tag = {"key": "team/ecs-job-controller/x", "value": "1"}
    assert canonical_task_definition(td(app(), tags=[tag]))["tags"] == [tag]


# --- types are not coerced where the API does not --------------------------------------


def test_container_port_as_string_is_not_coerced() -> None:
    assert not same(
        td(app(portMappings=[{"containerPort": "80"}])),
        td(app(portMappings=[{"containerPort": 80}])),
    )


# --- volumes and task-level defaults --------------------------------------------------


def test_volume_configured_at_launch_false_equals_missing() -> None:
    assert same(
        td(app(), volumes=[{"name": "v", "configuredAtLaunch": False}]),
        td(app(), volumes=[{"name": "v"}]),
    )
    assert not same(
        td(app(), volumes=[{"name": "v", "configuredAtLaunch": True}]),
        td(app(), volumes=[{"name": "v"}]),
    )


def test_docker_volume_defaults() -> None:
    written = td(
        app(), volumes=[{"name": "v", "dockerVolumeConfiguration": {"autoprovision": False}}]
    )
    described = td(
        app(),
        volumes=[{"name": "v", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}],
    )
    assert same(written, described)
    shared = td(app(), volumes=[{"name": "v", "dockerVolumeConfiguration": {"scope": "shared"}}])
    assert not same(written, shared)


def test_efs_volume_defaults() -> None:
    efs = {"fileSystemId": "fs-1"}
    described = {
        **efs,
        "rootDirectory": "/",
        "transitEncryption": "DISABLED",
        "authorizationConfig": {"iam": "DISABLED"},
    }
    assert same(
        td(app(), volumes=[{"name": "v", "efsVolumeConfiguration": efs}]),
        td(app(), volumes=[{"name": "v", "efsVolumeConfiguration": described}]),
    )
    assert not same(
        td(app(), volumes=[{"name": "v", "efsVolumeConfiguration": efs}]),
        td(
            app(), volumes=[{"name": "v", "efsVolumeConfiguration": {**efs, "rootDirectory": "/x"}}]
        ),
    )


def test_fault_injection_false_equals_missing() -> None:
    assert same(td(app(), enableFaultInjection=False), td(app()))
    assert not same(td(app(), enableFaultInjection=True), td(app()))


def test_network_mode_missing_is_bridge_on_linux_only() -> None:
    # Some answers omit networkMode when none was registered (taskdefs-real/058),
    # others spell out "bridge": on Linux both mean bridge. On Windows
    # "missing" means the default NAT mode, not bridge.
    assert same(td(app()), td(app(), networkMode="bridge"))
    linux = {"operatingSystemFamily": "LINUX"}
    assert same(
        td(app(), runtimePlatform=linux), td(app(), networkMode="bridge", runtimePlatform=linux)
    )
    windows = {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}
    assert not same(
        td(app(), runtimePlatform=windows), td(app(), networkMode="bridge", runtimePlatform=windows)
    )
    assert not same(td(app()), td(app(), networkMode="awsvpc"))


# --- shapes of input ------------------------------------------------------------------


def test_a_whole_describe_answer_is_unwrapped_with_its_tags() -> None:
    answer = {
        "taskDefinition": {**td(app()), "revision": 3, "status": "ACTIVE"},
        "tags": [
            {"key": "team", "value": "data"},
            {"key": "ecs-job-controller/owner", "value": "default"},
        ],
    }
    assert canonical_task_definition(answer) == canonical_task_definition(
        td(app(), tags=[{"key": "team", "value": "data"}])
    )


def test_unknown_fields_still_count_as_content() -> None:
    # A member newer than our rules must never be silently ignored.
    assert not same(td(app(newFeature="on")), td(app()))
    assert not same(td(app(), brandNewTaskField={"x": 1}), td(app()))


def test_the_input_is_not_modified() -> None:
    written = td(
        app(portMappings=[{"containerPort": 80, "hostPort": 0}], environment=[{"name": "A"}]),
        cpu=256,
        tags=[{"key": "ecs-job-controller/owner", "value": "x"}],
    )
    before = copy.deepcopy(written)
    canonical_task_definition(written)
    to_register_input(written)
    strip_nulls(written)
    assert written == before


def test_canonical_form_is_idempotent_on_hand_made_input() -> None:
    once = canonical_task_definition(
        td(app(portMappings=[{"containerPort": 80}], cpu=0), networkMode="awsvpc", cpu="1 vCPU")
    )
    assert canonical_task_definition(once) == once


# --- spec hash ------------------------------------------------------------------------


def test_spec_hash_is_sha256_of_sorted_key_json() -> None:
    written = td(app(), cpu=256)
    text = json.dumps(canonical_task_definition(written), sort_keys=True, separators=(",", ":"))
    assert spec_hash(written) == hashlib.sha256(text.encode()).hexdigest()
    assert len(spec_hash(written)) == 64


def test_spec_hash_follows_equivalence() -> None:
    assert spec_hash(td(app(), cpu="0.25 vCPU")) == spec_hash(td(app(essential=True), cpu="256"))
    assert spec_hash(td(app(image="nginx:1"))) != spec_hash(td(app(image="nginx:2")))


# --- changed_paths --------------------------------------------------------------------


def test_changed_paths_names_containers() -> None:
    old = td(app(image="nginx:1"), {"name": "side", "image": "envoy"}, cpu="256")
    new = td(app(image="nginx:2"), {"name": "side", "image": "envoy"}, cpu="512")
    assert changed_paths(old, new) == ["containerDefinitions[app].image", "cpu"]


def test_changed_paths_is_empty_for_equivalent_definitions() -> None:
    assert changed_paths(td(app(cpu=0), cpu=256), td(app(essential=True), cpu="256")) == []


def test_changed_paths_reports_added_containers_and_variables() -> None:
    old = td(app(environment=[{"name": "A", "value": "1"}]))
    new = td(
        app(environment=[{"name": "A", "value": "2"}, {"name": "B", "value": "1"}]),
        {"name": "side", "image": "envoy"},
    )
    assert changed_paths(old, new) == [
        "containerDefinitions[app].environment[A].value",
        "containerDefinitions[app].environment[B]",
        "containerDefinitions[side]",
    ]


def test_changed_paths_reports_order_significant_lists_whole() -> None:
    old, new = td(app(command=["a", "b"])), td(app(command=["b", "a"]))
    assert changed_paths(old, new) == ["containerDefinitions[app].command"]


def test_changed_paths_is_short() -> None:
    old = td(app(environment=[{"name": f"V{i:02}", "value": "1"} for i in range(30)]))
    new = td(app(environment=[{"name": f"V{i:02}", "value": "2"} for i in range(30)]))
    paths = changed_paths(old, new)
    assert len(paths) == 10
    assert paths[0] == "containerDefinitions[app].environment[V00].value"
    assert paths[-1] == "... and 21 more"


# --- strip_nulls and to_register_input -------------------------------------------------


def test_strip_nulls_removes_none_at_every_depth() -> None:
    written = {
        "family": "f",
        "taskRoleArn": None,
        "containerDefinitions": [
            {"name": "app", "image": "x", "command": None, "linuxParameters": {"devices": None}},
            None,
        ],
        "volumes": [],
    }
    assert strip_nulls(written) == {
        "family": "f",
        "containerDefinitions": [{"name": "app", "image": "x", "linuxParameters": {}}],
        "volumes": [],
    }


@pytest.mark.parametrize(
    ("cpu", "memory", "want_cpu", "want_memory"),
    [
        (256, 512, "256", "512"),
        ("1 vCPU", "2 GB", "1024", "2048"),
        ("0.5vcpu", "1GB", "512", "1024"),
        ("256", "512", "256", "512"),
    ],
)
def test_to_register_input_converts_task_units(
    cpu: Any, memory: Any, want_cpu: str, want_memory: str
) -> None:
    params = to_register_input(td(app(), cpu=cpu, memory=memory))
    assert (params["cpu"], params["memory"]) == (want_cpu, want_memory)


def test_to_register_input_sends_what_the_user_wrote() -> None:
    written = td(
        app(
            cpu=0,
            environment=[{"name": "B", "value": "2"}, {"name": "A", "value": None}],
            portMappings=[{"containerPort": 80, "hostPort": 0}],
            user=None,
        ),
        {"name": "side", "image": "envoy"},
        tags=[{"key": "team", "value": "data"}],
        volumes=[],
    )
    assert to_register_input(written) == {
        "family": "f",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "nginx",
                "cpu": 0,
                "environment": [{"name": "B", "value": "2"}, {"name": "A"}],
                "portMappings": [{"containerPort": 80, "hostPort": 0}],
            },
            {"name": "side", "image": "envoy"},
        ],
        "tags": [{"key": "team", "value": "data"}],
        "volumes": [],
    }


# --- the equivalence corpus -------------------------------------------------------------

_ECS_MODEL = botocore.session.get_session().get_service_model("ecs")


def typed_decode(value: Any, shape: Any) -> Any:
    """Keep only the members the ECS API model knows, as Go's typed JSON decode does.

    Terraform and ecspresso compare typed SDK values, and our manifests are
    validated by a schema generated from the same model, so a key the model
    does not know never reaches the canonicaliser from a manifest.
    """
    if shape.type_name == "structure" and isinstance(value, dict):
        return {
            k: typed_decode(v, shape.members[k]) for k, v in value.items() if k in shape.members
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [typed_decode(v, shape.member) for v in value]
    return value


def case_task_definition(case: dict[str, Any], side: str) -> dict[str, Any]:
    request = _ECS_MODEL.operation_model("RegisterTaskDefinition").input_shape
    assert request is not None
    if case["kind"] == "containerDefinitions":
        containers = typed_decode(case[side], request.members["containerDefinitions"])
        wrapped: dict[str, Any] = {"family": "x", "containerDefinitions": containers}
        if case["awsvpc"]:
            wrapped["networkMode"] = "awsvpc"
        return wrapped
    assert case["kind"] == "taskDefinition"
    # The described side mimics DescribeTaskDefinition with its tags merged in.
    return typed_decode(case[side], request)  # type: ignore[no-any-return]


def test_the_equivalence_corpus_is_complete() -> None:
    assert len(CASES) == 13
    assert sum(c["equivalent"] for c in CASES) == 11


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_equivalence_case(case: dict[str, Any]) -> None:
    desired = canonical_task_definition(case_task_definition(case, "desired"))
    described = canonical_task_definition(case_task_definition(case, "described"))
    if case["equivalent"]:
        assert desired == described, changed_paths(desired, described)
    else:
        assert desired != described
        assert changed_paths(desired, described)


def test_tf_arrays_needs_the_typed_decode_because_devices_is_no_container_field() -> None:
    # The one corpus quirk: its desired side has a misplaced container-level
    # "devices" key. We keep unknown keys (they might be a new API field), so
    # only the typed decode that Terraform and our schema apply removes it.
    case = next(c for c in CASES if c["id"] == "tf-arrays")
    raw = {"family": "x", "containerDefinitions": case["desired"]}
    assert "devices" in container(canonical_task_definition(raw), "wordpress")
    assert "devices" not in container(
        canonical_task_definition(case_task_definition(case, "desired")), "wordpress"
    )


@pytest.mark.parametrize("entry", DESCRIBED_ONLY, ids=[e["id"] for e in DESCRIBED_ONLY])
def test_described_only_file_equals_itself_without_response_fields(entry: dict[str, Any]) -> None:
    described = entry["described"]
    body = described.get("taskDefinition", described)
    registered = {k: v for k, v in body.items() if k not in RESPONSE_ONLY_FIELDS}
    canonical = canonical_task_definition(described)
    assert canonical == canonical_task_definition(registered)
    assert canonical["containerDefinitions"]
    assert not RESPONSE_ONLY_FIELDS & set(canonical)


# --- real-world task definitions ----------------------------------------------------------

#: Lists that the rules treat as sets, by where they occur.
TASK_ORDER_FREE = (
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "tags",
    "requiresCompatibilities",
    "inferenceAccelerators",
)
CONTAINER_ORDER_FREE = tuple(CONTAINER_SETS)


def shuffled(value: Any, rng: random.Random, order_free: tuple[str, ...] = ()) -> Any:
    """Copy with every dict's key order shuffled, and the named order-free lists too."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        out = {}
        for key, original in items:
            if key == "containerDefinitions" and isinstance(original, list):
                item = [shuffled(c, rng, CONTAINER_ORDER_FREE) for c in original]
            elif key == "proxyConfiguration":
                item = shuffled(original, rng, ("properties",))
            else:
                item = shuffled(original, rng)
            if key in order_free and isinstance(item, list):
                item = rng.sample(item, len(item))
            out[key] = item
        return out
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def real(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_real_corpus_is_there() -> None:
    assert len(REAL_FILES) >= 75


@pytest.mark.parametrize("path", REAL_FILES, ids=[p.stem for p in REAL_FILES])
def test_real_canonical_form_is_idempotent(path: Path) -> None:
    once = canonical_task_definition(real(path))
    assert canonical_task_definition(once) == once
    assert once["containerDefinitions"]


@pytest.mark.parametrize("path", REAL_FILES, ids=[p.stem for p in REAL_FILES])
def test_real_hash_ignores_key_and_set_order(path: Path) -> None:
    data = real(path)
    want = spec_hash(data)
    rng = random.Random(path.name)
    for _ in range(3):
        mixed = shuffled(data, rng, TASK_ORDER_FREE)
        assert spec_hash(mixed) == want


@pytest.mark.parametrize("path", REAL_FILES, ids=[p.stem for p in REAL_FILES])
def test_real_image_change_changes_hash(path: Path) -> None:
    data = real(path)
    changed = copy.deepcopy(data)
    target = changed["containerDefinitions"][-1]
    target["image"] = f"{target['image']}-changed"
    assert spec_hash(changed) != spec_hash(data)
    assert changed_paths(data, changed) == [f"containerDefinitions[{target['name']}].image"]
