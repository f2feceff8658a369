"""`controller validate` through the real CLI: what ECS would refuse is caught before AWS.

`validate` needs no AWS, so each test runs `python -m controller validate` as
a subprocess on files in a temporary directory and reads its exit status,
stdout and stderr exactly as a user (or CI) would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def validate(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    """Run `controller validate PATH...` (exit status, stdout, stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "controller", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def job(name: str, spec_extra: str = "", td_extra: str = "", launch_type: str = "EC2") -> str:
    """A valid JobRun; `spec_extra` / `td_extra` lines join its spec / taskDefinition."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        f"  launchType: {launch_type}\n"
        f"{spec_extra}"
        "  taskDefinition:\n"
        f"    family: {name}\n"
        f"{td_extra}"
        "    containerDefinitions:\n"
        "      - {name: app, image: busybox, memory: 128}\n"
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def assert_one_line_errors(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout


# --- one bad manifest never blocks another -----------------------------------------


@pytest.mark.parametrize(
    ("spec_extra", "pointer"),
    [
        ("  activeDeadlineSeconds: 1000000000000\n", "/spec/activeDeadlineSeconds"),
        ("  backoff: {initialSeconds: 1000000000000}\n", "/spec/backoff/initialSeconds"),
        ("  backoff: {maxSeconds: 1000000000000}\n", "/spec/backoff/maxSeconds"),
        ("  capacity: {maxPendingSeconds: 1000000000000}\n", "/spec/capacity/maxPendingSeconds"),
    ],
)
def test_a_huge_duration_is_invalid_and_the_other_manifest_stays_valid(
    tmp_path: Path, spec_extra: str, pointer: str
) -> None:
    write(tmp_path, "huge.yaml", job("huge", spec_extra))
    write(tmp_path, "good.yaml", job("good"))
    done = validate(tmp_path)
    assert_one_line_errors(done)
    assert done.returncode == 1
    assert "huge.yaml:" in done.stderr
    assert f": {pointer}: 1000000000000 is greater than the maximum of 31536000" in done.stderr
    assert "1 JobRun(s)" in done.stdout


def test_a_huge_starting_deadline_is_invalid(tmp_path: Path) -> None:
    cron = (
        "apiVersion: ecs-job-controller/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
        "  schedule: '@daily'\n  startingDeadlineSeconds: 1000000000000\n"
        "  jobTemplate: {cluster: batch, taskDefinitionRef: c}\n"
    )
    done = validate(write(tmp_path, "c.yaml", cron))
    assert done.returncode == 1
    assert "c.yaml:6: /spec/startingDeadlineSeconds: 1000000000000 is greater" in done.stderr


def test_a_family_ecs_would_refuse_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", job("f").replace("family: f", 'family: "../../x/y"'))
    done = validate(path)
    assert done.returncode == 1
    assert "f.yaml:8: /spec/taskDefinition/family: '../../x/y' does not match" in done.stderr


def test_a_symlink_loop_is_one_warning_and_every_manifest_stays_valid(tmp_path: Path) -> None:
    """Decision: a loop is a warning (exit 0): nothing is lost, but the user should fix it."""
    root = tmp_path / "manifests"
    root.mkdir()
    write(root, "a.yaml", job("a"))
    write(root, "b.yaml", job("b"))
    (root / "loop").symlink_to(".")
    done = validate(root)
    assert_one_line_errors(done)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"{root}/loop: symlink loop, not followed"]
    assert "2 JobRun(s)" in done.stdout
    assert "0 error(s), 1 warning(s)" in done.stdout


# --- what RegisterTaskDefinition and RunTask would refuse ----------------------------


def test_task_memory_and_cpu_in_units_ecs_refuses_are_invalid(tmp_path: Path) -> None:
    write(tmp_path, "mb.yaml", job("mb", td_extra="    memory: 512 MB\n"))
    write(tmp_path, "lots.yaml", job("lots", td_extra="    memory: lots\n"))
    write(tmp_path, "cpus.yaml", job("cpus", td_extra="    cpu: 3 vCPUs\n"))
    write(tmp_path, "ok.yaml", job("ok", td_extra="    cpu: 0.5 vCPU\n    memory: 1GB\n"))
    done = validate(tmp_path)
    assert done.returncode == 1
    lines = sorted(done.stderr.splitlines())
    assert [line.split(": '")[0] for line in lines] == [
        f"{tmp_path}/cpus.yaml:9: /spec/taskDefinition/cpu",
        f"{tmp_path}/lots.yaml:9: /spec/taskDefinition/memory",
        f"{tmp_path}/mb.yaml:9: /spec/taskDefinition/memory",
    ]
    assert "1 JobRun(s)" in done.stdout


FARGATE = "  networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}\n"


def test_fargate_rules_ecs_documents_are_checked(tmp_path: Path) -> None:
    sized = "    networkMode: awsvpc\n    cpu: 256\n"
    write(
        tmp_path,
        "size.yaml",
        job("size", FARGATE, sized + "    memory: 4096\n", launch_type="FARGATE"),
    )
    write(tmp_path, "bare.yaml", job("bare", FARGATE, launch_type="FARGATE"))
    write(
        tmp_path,
        "ok.yaml",
        job("ok", FARGATE, sized + "    memory: 0.5 GB\n", launch_type="FARGATE"),
    )
    done = validate(tmp_path)
    assert done.returncode == 1
    lines = sorted(done.stderr.splitlines())
    assert lines == [
        f"{tmp_path}/bare.yaml:9: /spec/taskDefinition: on FARGATE (launchType FARGATE) the "
        "task definition needs networkMode awsvpc",
        f"{tmp_path}/bare.yaml:9: /spec/taskDefinition: on FARGATE (launchType FARGATE) the "
        "task definition needs task-level cpu and memory",
        f"{tmp_path}/size.yaml:12: /spec/taskDefinition/memory: FARGATE cpu 256 takes memory "
        "512, 1024, 2048 MiB, not 4096",
    ]
    assert "1 JobRun(s)" in done.stdout


def test_the_real_task_definition_ecs_refuses_for_memory_is_invalid(tmp_path: Path) -> None:
    real = Path(__file__).parent / "data" / "taskdefs-real"
    td = (real / "012-DataDog-datadog-agent-ecs-task-patcher.json").read_text()
    manifest = (
        "apiVersion: ecs-job-controller/v1\nkind: JobRun\nmetadata: {name: dd}\nspec:\n"
        "  cluster: batch\n"
        "  networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}\n"
        f"  taskDefinition: {td}"
    )
    done = validate(write(tmp_path, "dd.yaml", manifest))
    assert done.returncode == 1
    assert "/spec/taskDefinition/containerDefinitions/0: container 'app' needs memory" in (
        done.stderr
    )


# --- documents that are not ours ----------------------------------------------------


def test_an_almost_ours_api_version_is_a_warning_and_a_file_of_nothing_fails(
    tmp_path: Path,
) -> None:
    typo = write(tmp_path, "typo.yaml", job("t").replace("/v1", "/v2"))
    k8s = write(tmp_path, "k8s.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    good = write(tmp_path, "good.yaml", job("good"))

    done = validate(typo)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{typo}:1: apiVersion 'ecs-job-controller/v2' is not ecs-job-controller/v1: "
        "document ignored",
        f"{typo}: no ecs-job-controller/v1 manifest in this file",
    ]

    done = validate(k8s)  # another tool's document: no warning, but nothing was checked
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"{k8s}: no ecs-job-controller/v1 manifest in this file"]

    done = validate(typo, k8s, good)  # one named file holds a manifest: the others are notes
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.splitlines()) == 3
    assert "1 JobRun(s)" in done.stdout

    done = validate(tmp_path)  # a directory may hold other YAML: only the warning
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"{typo}:1: apiVersion 'ecs-job-controller/v2' is not ecs-job-controller/v1: "
        "document ignored"
    ]


def test_an_unknown_field_gets_a_did_you_mean(tmp_path: Path) -> None:
    done = validate(write(tmp_path, "t.yaml", job("t", "  backofLimit: 2\n")))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{tmp_path}/t.yaml:7: /spec/backofLimit: unknown field(s) 'backofLimit' (not allowed "
        "here; did you mean 'backoffLimit'?)"
    ]
