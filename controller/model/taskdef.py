"""Canonical form of an ECS task definition, and its spec hash (DESIGN.md §5).

The controller promises never to register a revision that already exists and
never to miss a real change. A naive comparison fails both ways: ECS fills in
defaults (``essential: true``, port ``protocol: "tcp"``, health-check timings),
returns empty lists for fields nobody set, reorders environment variables and
accepts "1 vCPU" but answers "1024". This module maps a RegisterTaskDefinition
input (what a user writes) and a DescribeTaskDefinition answer (what ECS
returns) onto one canonical form, so that two task definitions that ECS treats
alike compare equal, and hashes that form (the **spec hash**).

Every rule below mirrors a documented or observed API behaviour; each says
which. Rules only ever merge spellings that ECS itself does not distinguish:
when unsure, we keep the difference, because an extra revision is cheap and a
missed change is not. Fields this module has no rule for are compared as
written, so a field newer than these rules still counts as a change.

Pure: stdlib only, no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

#: Tags the controller puts on revisions it registers (DESIGN.md §5). They
#: record who registered a revision and for which hash, so they can never be
#: part of what is hashed, and a revision carrying them must still equal the
#: manifest that does not.
OWN_TAG_PREFIX: Final = "ecs-job-controller/"

#: Members of DescribeTaskDefinition's `TaskDefinition` that RegisterTaskDefinition
#: does not take: ECS computes them (ARN, revision, status, attributes, times).
RESPONSE_ONLY_FIELDS: Final = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "compatibilities",
        "requiresAttributes",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)

#: Members whose value is a free-form string map (botocore type `map<string>`):
#: their keys are user data, so an empty-string value is a real value there
#: (a Docker label `team=""` exists), unlike an empty string in a structure.
FREE_MAPS: Final = frozenset({"dockerLabels", "options", "driverOpts", "labels"})

#: Container booleans whose API default is false: ECS and Docker behave the
#: same whether they are false or absent, so false is dropped.
_CONTAINER_FALSE_DEFAULTS: Final = (
    "privileged",
    "readonlyRootFilesystem",
    "disableNetworking",
    "interactive",
    "pseudoTerminal",
)

#: Network modes in which ECS requires hostPort == containerPort and reports it
#: even when the input left hostPort out.
_HOST_PORT_IS_CONTAINER_PORT: Final = frozenset({"awsvpc", "host"})

# "1 vCPU", "1 vcpu", "0.5 vCPU", ".25 vcpu": the spelling in vCPUs the API
# reference documents for task cpu besides integer CPU units (1 vCPU = 1024
# units). Real task definitions also write the unit in other cases ("2 gb"),
# so case is not significant; a plural ("3 vCPUs") or another unit is no
# spelling ECS documents, and is refused by `validate`.
_VCPU: Final = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*vcpu\s*$", re.IGNORECASE)
# "2 GB", "2GB", "0.5 GB": the documented memory spelling besides MiB integers
# (1 GB = 1024 MiB); "MB", "MiB" and "GiB" are not documented.
_GB: Final = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*gb\s*$", re.IGNORECASE)
_DIGITS: Final = re.compile(r"^\s*\d+\s*$")


def canonical_task_definition(td: Mapping[str, Any]) -> dict[str, Any]:
    """Return the canonical form of a RegisterTaskDefinition input or a described revision."""
    body = _unwrap_describe_answer(td)
    # Response-only fields are ECS's bookkeeping, not content.
    fields = {k: v for k, v in body.items() if k not in RESPONSE_ONLY_FIELDS}
    out: dict[str, Any] = _prune(fields)
    # On Linux an unset networkMode *is* bridge (the API reference: "the
    # default Docker network mode is bridge"); some answers omit it, others
    # (moto) spell it out. On Windows an unset mode means "default" (NAT),
    # which is not bridge, so it stays unset there.
    platform = out.get("runtimePlatform")
    family = platform.get("operatingSystemFamily", "") if isinstance(platform, Mapping) else ""
    if "networkMode" not in out and not str(family).upper().startswith("WINDOWS"):
        out["networkMode"] = "bridge"
    network_mode = out.get("networkMode")

    # Task cpu/memory are strings in the API; ECS answers "1 vCPU" with "1024".
    if "cpu" in out:
        out["cpu"] = _task_units(out["cpu"], _VCPU)
    if "memory" in out:
        out["memory"] = _task_units(out["memory"], _GB)

    if isinstance(containers := out.get("containerDefinitions"), list):
        # ECS addresses containers by name; their order carries no meaning.
        out["containerDefinitions"] = _sorted_by(
            [_canonical_container(c, network_mode) for c in containers], "name"
        )
    if isinstance(volumes := out.get("volumes"), list):
        # Containers mount volumes by name; their order carries no meaning.
        out["volumes"] = _sorted_by([_canonical_volume(v) for v in volumes], "name")
    if isinstance(tags := out.get("tags"), list):
        # Our own bookkeeping tags are not content (see OWN_TAG_PREFIX); tags
        # are a key-value set.
        user_tags = [t for t in tags if not _is_own_tag(t)]
        out["tags"] = _sorted_by(user_tags, "key")
    if isinstance(compat := out.get("requiresCompatibilities"), list):
        # A set of launch types: ECS checks membership only.
        out["requiresCompatibilities"] = _sorted_by(compat)
    if isinstance(constraints := out.get("placementConstraints"), list):
        # Every constraint must hold; they are a set.
        out["placementConstraints"] = _sorted_by(constraints)
    if isinstance(accelerators := out.get("inferenceAccelerators"), list):
        # Containers refer to accelerators by deviceName; order is irrelevant.
        out["inferenceAccelerators"] = _sorted_by(accelerators, "deviceName")
    if isinstance(proxy := out.get("proxyConfiguration"), Mapping):
        out["proxyConfiguration"] = _canonical_proxy(proxy)
    # enableFaultInjection defaults to false; false and absent are the same.
    _drop_if(out, "enableFaultInjection", False)

    # Rules above can empty a member (e.g. only our tags): prune once more.
    result: dict[str, Any] = _prune(out)
    return result


def spec_hash(td: Mapping[str, Any]) -> str:
    """Return the SHA-256 hex digest of the canonical form's sorted-key JSON."""
    text = json.dumps(canonical_task_definition(td), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def strip_nulls(td: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy without None values, in maps and lists, at any depth."""
    # ECS rejects an explicit null parameter, and botocore refuses None, while
    # YAML and JSON users write `key: null` to mean "not set".
    return {k: _strip(v) for k, v in td.items() if v is not None}


def to_register_input(td: Mapping[str, Any]) -> dict[str, Any]:
    """Return the RegisterTaskDefinition parameters for a manifest's taskDefinition."""
    # ECS gets what the user wrote, not the canonical form: only nulls (which
    # ECS rejects) go, and task cpu/memory become the strings the API's
    # `string` type demands (YAML `cpu: 256` is a number).
    params = strip_nulls(td)
    if "cpu" in params:
        params["cpu"] = _task_units(params["cpu"], _VCPU)
    if "memory" in params:
        params["memory"] = _task_units(params["memory"], _GB)
    return params


# --- containers ---------------------------------------------------------------


def _canonical_container(container: Any, network_mode: Any) -> Any:
    if not isinstance(container, Mapping):
        return container
    c = dict(container)

    # API default: a container is essential unless it says otherwise, and
    # DescribeTaskDefinition always reports `essential`.
    c.setdefault("essential", True)
    # Container cpu is an int whose default is 0 ("no reservation"); ECS
    # reports cpu 0 for containers that set none. Only the integer 0: a
    # string is not the API's type and is left for the schema to reject.
    if _is_int(c.get("cpu")) and c["cpu"] == 0:
        del c["cpu"]
    # versionConsistency defaults to "enabled" (API reference).
    _drop_if(c, "versionConsistency", "enabled")
    for flag in _CONTAINER_FALSE_DEFAULTS:
        _drop_if(c, flag, False)

    if isinstance(ports := c.get("portMappings"), list):
        c["portMappings"] = _sorted_by([_canonical_port(p, network_mode) for p in ports])
    if isinstance(env := c.get("environment"), list):
        # ECS drops an environment entry whose value is missing or empty on
        # register (terraform-provider-aws#39533, amazon-ecs-deploy-task-
        # definition#216). ECS also does not keep the written order (it came
        # back reversed in Terraform's tests), so order cannot be compared:
        # the list is a set of variables, sorted by name.
        kept = [e for e in env if not (isinstance(e, Mapping) and "name" in e and "value" not in e)]
        c["environment"] = _sorted_by(kept, "name")
    if isinstance(secrets := c.get("secrets"), list):
        # Like environment: ECS reorders secrets; they are a set by name.
        c["secrets"] = _sorted_by(secrets, "name")
    for key in ("mountPoints", "volumesFrom"):
        if isinstance(mounts := c.get(key), list):
            # API default readOnly false (read-write); mounts are a set (each
            # names its own target).
            c[key] = _sorted_by([_with_default(m, "readOnly", False) for m in mounts])
    # Set-like lists: each entry stands on its own and ECS applies all of them.
    for key, name_field in (
        ("ulimits", "name"),
        ("systemControls", "namespace"),
        ("extraHosts", "hostname"),
        ("dependsOn", "containerName"),
        ("resourceRequirements", "type"),
    ):
        if isinstance(entries := c.get(key), list):
            c[key] = _sorted_by(entries, name_field)
    if isinstance(links := c.get("links"), list):
        # Docker links are a set of name:alias pairs; start order comes from
        # the link graph, not from the list order.
        c["links"] = _sorted_by(links)
    # Kept in written order on purpose: command, entryPoint and
    # healthCheck.command are argv; dnsServers and dnsSearchDomains are tried
    # in order; environmentFiles are applied top-down (a later file's variable
    # wins); dockerSecurityOptions, credentialSpecs and tmpfs mountOptions are
    # handed to Docker as written.

    if isinstance(health := c.get("healthCheck"), Mapping):
        # API defaults (and what DescribeTaskDefinition reports): interval 30,
        # timeout 5, retries 3. startPeriod has no default value ("off"), so a
        # missing startPeriod stays missing.
        h = dict(health)
        h.setdefault("interval", 30)
        h.setdefault("timeout", 5)
        h.setdefault("retries", 3)
        c["healthCheck"] = h
    if isinstance(linux := c.get("linuxParameters"), Mapping):
        c["linuxParameters"] = _canonical_linux_parameters(linux)
    if isinstance(log := c.get("logConfiguration"), Mapping) and isinstance(
        secret_options := log.get("secretOptions"), list
    ):
        # Log secrets are named options, like `secrets`.
        c["logConfiguration"] = {**log, "secretOptions": _sorted_by(secret_options, "name")}
    return c


def _canonical_port(port: Any, network_mode: Any) -> Any:
    if not isinstance(port, Mapping):
        return port
    p = dict(port)
    # hostPort 0 asks for a dynamic host port, exactly as a missing hostPort
    # does (ECS reports 0 in bridge mode for ports written without one).
    if _is_int(p.get("hostPort")) and p["hostPort"] == 0:
        del p["hostPort"]
    # In awsvpc and host mode the host port is the container port: ECS
    # requires them equal and reports hostPort = containerPort when it was
    # left out. A containerPortRange has no single port to copy.
    if (
        network_mode in _HOST_PORT_IS_CONTAINER_PORT
        and "hostPort" not in p
        and "containerPort" in p
    ):
        p["hostPort"] = p["containerPort"]
    # API default protocol "tcp", always reported by DescribeTaskDefinition.
    p.setdefault("protocol", "tcp")
    return p


def _canonical_linux_parameters(linux: Mapping[str, Any]) -> dict[str, Any]:
    lp = dict(linux)
    # initProcessEnabled defaults to false.
    _drop_if(lp, "initProcessEnabled", False)
    if isinstance(caps := lp.get("capabilities"), Mapping):
        # Linux capabilities are sets: adding CHOWN then KILL equals KILL then CHOWN.
        lp["capabilities"] = {
            k: _sorted_by(v) if isinstance(v, list) else v for k, v in caps.items()
        }
    if isinstance(devices := lp.get("devices"), list):
        # Each device names its own host path; permissions are a set of
        # cgroup rights.
        lp["devices"] = _sorted_by([_with_sorted(d, "permissions") for d in devices], "hostPath")
    if isinstance(tmpfs := lp.get("tmpfs"), list):
        # Each tmpfs names its own mount point.
        lp["tmpfs"] = _sorted_by(tmpfs, "containerPath")
    return lp


# --- task-level members -------------------------------------------------------


def _canonical_volume(volume: Any) -> Any:
    if not isinstance(volume, Mapping):
        return volume
    v = dict(volume)
    # configuredAtLaunch defaults to false, and DescribeTaskDefinition reports
    # false for volumes that never set it (terraform-provider-aws#46132).
    _drop_if(v, "configuredAtLaunch", False)
    if isinstance(docker := v.get("dockerVolumeConfiguration"), Mapping):
        d = dict(docker)
        # ECS reports scope "task" and driver "local" for a Docker volume
        # that set neither (Terraform's DockerVolume_minimal acceptance test);
        # autoprovision defaults to false.
        d.setdefault("scope", "task")
        d.setdefault("driver", "local")
        _drop_if(d, "autoprovision", False)
        v["dockerVolumeConfiguration"] = d
    if isinstance(efs := v.get("efsVolumeConfiguration"), Mapping):
        e = dict(efs)
        # API reference: rootDirectory "/" has the same effect as omitting
        # it; transitEncryption and authorizationConfig.iam default to
        # DISABLED.
        _drop_if(e, "rootDirectory", "/")
        _drop_if(e, "transitEncryption", "DISABLED")
        if isinstance(auth := e.get("authorizationConfig"), Mapping):
            a = dict(auth)
            _drop_if(a, "iam", "DISABLED")
            e["authorizationConfig"] = a
        v["efsVolumeConfiguration"] = e
    return v


def _canonical_proxy(proxy: Mapping[str, Any]) -> dict[str, Any]:
    p = dict(proxy)
    # APPMESH is the only proxy type the API accepts, so a missing type
    # can mean nothing else.
    p.setdefault("type", "APPMESH")
    if isinstance(props := p.get("properties"), list):
        # Named settings handed to the proxy; ECS does not keep their order
        # (ecspresso's "same actually" diff test).
        p["properties"] = _sorted_by(props, "name")
    return p


def task_cpu_units(value: Any) -> int | None:
    """Task-level cpu in CPU units ("1 vCPU" -> 1024), or None if no spelling ECS accepts."""
    return _whole_units(value, _VCPU)


def task_memory_mib(value: Any) -> int | None:
    """Task-level memory in MiB ("2 GB" -> 2048), or None if no spelling ECS accepts."""
    return _whole_units(value, _GB)


def _whole_units(value: Any, units: re.Pattern[str]) -> int | None:
    """An integer, a string of digits, or an amount of `units` that makes a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    if _DIGITS.match(value):
        return int(value)
    if match := units.match(value):
        # 1 vCPU = 1024 CPU units, 1 GB = 1024 MiB (ECS's own conversion).
        try:
            amount = Decimal(match.group(1)) * 1024
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            return None
        if amount == amount.to_integral_value():
            return int(amount)
    # "0.3 vCPU" is not a whole number of units: we invent no rounding.
    return None


def _task_units(value: Any, units: re.Pattern[str]) -> Any:
    """Task cpu/memory as the API's string of integer units, when it is one."""
    amount = _whole_units(value, units)
    # Anything else is left as written, so it still differs from every
    # spelling that converts (validate refuses it before it reaches ECS).
    return value if amount is None else str(amount)


def _is_own_tag(tag: Any) -> bool:
    return (
        isinstance(tag, Mapping)
        and isinstance(tag.get("key"), str)
        and tag["key"].startswith(OWN_TAG_PREFIX)
    )


def _unwrap_describe_answer(td: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a whole DescribeTaskDefinition answer: `{"taskDefinition": ..., "tags": ...}`."""
    inner = td.get("taskDefinition")
    if not isinstance(inner, Mapping) or "containerDefinitions" in td:
        return td
    merged = dict(inner)
    # The answer carries tags beside the task definition (include=["TAGS"]).
    if td.get("tags") is not None:
        merged["tags"] = td["tags"]
    return merged


# --- generic helpers ----------------------------------------------------------


def _prune(value: Any) -> Any:
    """Drop what the API treats as not set: null, "", [], {} (recursively).

    Also drops list entries whose every member is a zero value (0, false): the
    API's typed decoding turns `{}`, `{"hardLimit": 0}` and a missing entry
    into the same zero value, which Terraform compacts away and ECS rejects.
    Strings inside lists are kept, even "" (`command: [""]` is an argv), and so
    are empty-string values of free-form maps (a label may be empty).
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            item = value[key]
            if key in FREE_MAPS and isinstance(item, Mapping):
                item = {k: item[k] for k in sorted(item) if item[k] is not None}
            else:
                item = _prune(item)
            if not _is_unset(item):
                out[key] = item
        return out
    if isinstance(value, list):
        items = [_prune(x) for x in value if x is not None]
        return [x for x in items if not _is_zero_entry(x)]
    return value


def _is_unset(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _is_zero_entry(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(v, int | float) and not v for v in value.values()
    )


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value if v is not None]
    return value


def _sorted_by(entries: list[Any], name_field: str | None = None) -> list[Any]:
    """Sort an order-free list: by its naming member first, then by content."""

    def key(entry: Any) -> tuple[str, str]:
        name = entry.get(name_field) if name_field and isinstance(entry, Mapping) else None
        return (str(name) if name is not None else "", _json(entry))

    return sorted(entries, key=key)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _with_default(entry: Any, key: str, default: Any) -> Any:
    if not isinstance(entry, Mapping):
        return entry
    return {key: default, **entry}


def _with_sorted(entry: Any, key: str) -> Any:
    if not isinstance(entry, Mapping) or not isinstance(entry.get(key), list):
        return entry
    return {**entry, key: _sorted_by(entry[key])}


def _drop_if(obj: dict[str, Any], key: str, default: Any) -> None:
    """Remove `key` when it holds the API default (type-exact: 0 is not False)."""
    if key in obj and type(obj[key]) is type(default) and obj[key] == default:
        del obj[key]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def essential_containers(task_definition: Any) -> tuple[str, ...]:
    """Names of the containers whose exit decides success by default (essential ones)."""
    containers = task_definition.get("containerDefinitions") if task_definition else None
    names = [
        str(c["name"])
        for c in containers or []
        if isinstance(c, dict)
        and c.get("name") is not None
        and c.get("essential", True) is not False
    ]
    return tuple(sorted(names))


def container_names(task_definition: Any) -> tuple[str, ...]:
    """Names of every container of a task definition, in its order."""
    containers = task_definition.get("containerDefinitions") if task_definition else None
    return tuple(str(c["name"]) for c in containers or [] if isinstance(c, dict) and c.get("name"))
