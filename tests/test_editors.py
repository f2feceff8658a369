"""Editors and pre-commit: the hook definition runs, and `schema --write` gives editors the schemas.

The hook test reads `.pre-commit-hooks.yaml` and runs its entry as
pre-commit would (the entry, then the staged file names), with this
environment's `controller` script; the schema tests check that the written
files are the shipped schemas, with their stable `$id`, and that they accept
every example manifest.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "manifests" / "examples"
HOOK_ID = "ecs-job-controller-validate"
SCHEMA_FILES = {"JobRun": "jobrun.schema.json", "CronJob": "cronjob.schema.json"}

GOOD = (EXAMPLES / "flaky-sync.yaml").read_text()
# A typo two levels down, on line 7: the hook must say where.
BAD = """\
apiVersion: ecs-job-controller/v1
kind: JobRun
metadata:
  name: typo
spec:
  cluster: batch
  backofLimit: 2
  taskDefinition:
    family: typo
    containerDefinitions:
      - {name: app, image: busybox, memory: 128}
"""


def hook() -> dict[str, Any]:
    """The hook's definition in .pre-commit-hooks.yaml."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (found,) = [h for h in hooks if h["id"] == HOOK_ID]
    result: dict[str, Any] = found
    return result


def run_hook(*files: Path) -> subprocess.CompletedProcess[str]:
    """The hook's entry with the file names appended, as pre-commit runs it."""
    command, *arguments = shlex.split(hook()["entry"])
    # `language: python` installs the package and runs its console script.
    script = Path(sys.executable).parent / command
    assert script.exists(), f"no {command} script beside {sys.executable}"
    return subprocess.run(
        [str(script), *arguments, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )


def test_the_hook_is_a_python_hook_on_yaml_files() -> None:
    found = hook()
    assert found["language"] == "python"
    assert found["entry"] == "controller validate"
    files = re.compile(found["files"])
    assert files.search("manifests/jobs/a.yaml")
    assert files.search("b.yml")
    assert not files.search("c.json")
    assert not files.search("a.yaml.bak")


def test_the_hook_passes_a_good_manifest(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    done = run_hook(good)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_the_hook_fails_a_bad_manifest_with_path_and_line(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    done = run_hook(good, bad)
    assert done.returncode == 1, done.stderr
    (error,) = done.stderr.splitlines()
    assert error.startswith(f"{bad}:7: ")
    assert "backoffLimit" in error  # the "did you mean"
    assert "Traceback" not in done.stderr


def controller(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_schema_write_writes_both_shipped_schemas_into_a_new_directory(tmp_path: Path) -> None:
    target = tmp_path / "editor" / "schemas"
    done = controller("schema", "--write", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"wrote {target / 'jobrun.schema.json'}",
        f"wrote {target / 'cronjob.schema.json'}",
    ]
    for name in SCHEMA_FILES.values():
        # Byte for byte the shipped file (what `validate` itself uses).
        assert (target / name).read_bytes() == (ROOT / "schema" / name).read_bytes()
    # Again, over the files already there.
    assert controller("schema", "--write", str(target)).returncode == 0


def test_schema_write_of_one_kind(tmp_path: Path) -> None:
    done = controller("schema", "cronjob", "--write", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["cronjob.schema.json"]


def test_written_schemas_have_stable_ids_and_accept_every_example(tmp_path: Path) -> None:
    assert controller("schema", "--write", str(tmp_path)).returncode == 0
    validators = {}
    for kind, name in SCHEMA_FILES.items():
        schema = json.loads((tmp_path / name).read_text())
        Draft202012Validator.check_schema(schema)
        # Named by the manifests' apiVersion, not by a release: editor settings stay valid.
        assert schema["$id"] == f"https://ecs-job-controller.dev/schema/v1/{name}"
        validators[kind] = Draft202012Validator(schema)
    checked = 0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            errors = [e.message for e in validators[document["kind"]].iter_errors(document)]
            assert errors == [], path
            checked += 1
    assert checked >= len(list(EXAMPLES.glob("*.yaml")))


@pytest.mark.parametrize("where", [".", "sub"], ids=["a-file", "under-a-file"])
def test_schema_write_refuses_a_place_it_cannot_write_in_one_line(
    tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    done = controller("schema", "--write", str(blocker / where if where != "." else blocker))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert "Traceback" not in done.stderr
    assert blocker.read_text() == "not a directory"
