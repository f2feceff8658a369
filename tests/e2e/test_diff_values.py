"""`diff` shows each changed path with its values, secrets hidden; `-o yaml` is `-o json` in YAML.

Through the real CLI against the sandbox: the old values come from the
revision ECS describes, the new ones from the manifest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


def manifest(*, image: str, password: str, log_level: str, run_id: str) -> str:
    """A JobRun whose container carries a secret-looking variable and a plain one."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        "metadata: {name: report}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"  runId: '{run_id}'\n"
        "  launchType: EC2\n"
        "  taskDefinition:\n"
        "    family: report\n"
        "    cpu: '256'\n"
        "    memory: '512'\n"
        "    containerDefinitions:\n"
        "      - name: app\n"
        f"        image: {image}\n"
        "        environment:\n"
        f"          - {{name: DB_PASSWORD, value: {password}}}\n"
        f"          - {{name: LOG_LEVEL, value: {log_level}}}\n"
        "          - {name: SANDBOX_DURATION_SECONDS, value: '5'}\n"
    )


def changed_world(world: World) -> World:
    """Revision 1 registered and run; the manifest now wants a new image, password and level."""
    world.write(
        "report.yaml",
        manifest(image="busybox:1.36", password="hunter2", log_level="info", run_id="1"),
    )
    done = world.reconcile()
    assert done.returncode == 0, done.stderr
    world.write(
        "report.yaml",
        manifest(image="busybox:1.37", password="correct-horse", log_level="debug", run_id="2"),
    )
    return world


def register_action(document: dict[str, Any]) -> dict[str, Any]:
    (register,) = [a for a in document["actions"] if a["action"] == "RegisterTaskDefinition"]
    return register


def test_diff_prints_old_and_new_values_under_each_changed_path(world: World) -> None:
    changed_world(world)

    done = world.cli("diff")

    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "RegisterTaskDefinition report" in line)
    assert "content changed since revision 1" in lines[header]
    assert lines[header + 1 : header + 4] == [
        "    containerDefinitions[app].environment[DB_PASSWORD].value: (changed, hidden)",
        "    containerDefinitions[app].environment[LOG_LEVEL].value: info -> debug",
        "    containerDefinitions[app].image: busybox:1.36 -> busybox:1.37",
    ]
    for secret in ("hunter2", "correct-horse"):
        assert secret not in done.stdout + done.stderr


def test_diff_json_carries_old_and_new_and_hides_the_secret(world: World) -> None:
    changed_world(world)

    done = world.cli("diff", "-o", "json")

    assert done.returncode == 1, done.stderr
    assert register_action(json.loads(done.stdout))["changes"] == [
        {
            "path": "containerDefinitions[app].environment[DB_PASSWORD].value",
            "change": "changed",
            "hidden": True,
        },
        {
            "path": "containerDefinitions[app].environment[LOG_LEVEL].value",
            "change": "changed",
            "old": "info",
            "new": "debug",
        },
        {
            "path": "containerDefinitions[app].image",
            "change": "changed",
            "old": "busybox:1.36",
            "new": "busybox:1.37",
        },
    ]
    for secret in ("hunter2", "correct-horse"):
        assert secret not in done.stdout + done.stderr


def test_a_new_family_has_no_changes_to_show(world: World) -> None:
    world.write("a.yaml", job("fresh"))
    done = world.cli("diff", "-o", "json")
    assert done.returncode == 1, done.stderr
    register = register_action(json.loads(done.stdout))
    assert (register["reason"], register["changes"]) == ("new family", [])


def same_document(world: World, *args: str) -> dict[str, Any]:
    """Run a command with -o json and -o yaml; both parse to one document, keys in one order."""
    as_json = world.cli(*args, "-o", "json")
    as_yaml = world.cli(*args, "-o", "yaml")
    assert as_json.returncode == as_yaml.returncode, as_yaml.stderr
    from_json = json.loads(as_json.stdout)
    from_yaml = yaml.safe_load(as_yaml.stdout)
    assert from_yaml == from_json
    assert list(from_yaml) == list(from_json)
    # Block style, as people write YAML: no JSON-like flow mappings.
    assert not as_yaml.stdout.lstrip().startswith("{")
    document: dict[str, Any] = from_json
    return document


def test_diff_yaml_is_the_json_document(world: World) -> None:
    changed_world(world)
    document = same_document(world, "diff")
    assert register_action(document)["changes"][2]["new"] == "busybox:1.37"


def test_reconcile_yaml_is_the_json_document(world: World) -> None:
    world.write("a.yaml", job("y", run_id="007"))
    dry = same_document(world, "reconcile", "--once", "--dry-run")
    assert dry["dryRun"] is True

    done = world.cli("reconcile", "--once", "-o", "yaml")

    assert done.returncode == 0, done.stderr
    applied = yaml.safe_load(done.stdout)
    assert applied["dryRun"] is False
    assert [a["action"] for a in applied["actions"]] == [a["action"] for a in dry["actions"]]
    assert [a["action"] for a in applied["actions"]] == ["RegisterTaskDefinition", "StartAttempt"]


def test_status_yaml_is_the_json_document(world: World) -> None:
    # No ledger yet: the notice goes to stderr, stdout stays a document.
    empty = world.cli("status", "-o", "yaml")
    assert empty.returncode == 0, empty.stderr
    assert "no ledger at" in empty.stderr
    assert yaml.safe_load(empty.stdout)["runs"] == []

    world.write("a.yaml", job("y", run_id="007"))
    assert world.reconcile().returncode == 0
    document = same_document(world, "status")
    (run,) = document["runs"]
    # A run id of digits stays a string in YAML.
    assert run["runId"] == "007"
    assert same_document(world, "status", "y") == document
