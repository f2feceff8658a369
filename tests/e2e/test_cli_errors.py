"""Exit statuses and errors through the real CLI (README "Command line", DESIGN.md §8).

Every error is one line `error: ...` on stderr, never a traceback: 2 for
usage and setup (an unreadable source, a damaged or locked ledger, no
credentials), 1 for failed actions and unknown names. The read-only
commands (`status`, `diff`, `plan`, `logs`, `validate`, dry runs) write
nothing anywhere, and the ledger the others create is private.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import World, job

pytestmark = pytest.mark.e2e


def problem_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr's lines, less the warning the test clock hook always prints in these tests."""
    hook = "CONTROLLER_TEST_NOW is set: the clock reads"  # a line of its own, or a log line
    return [line for line in done.stderr.strip().splitlines() if hook not in line]


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line a failed command printed on stderr (and nothing else there)."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = problem_lines(done)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    return lines[0]


def fargate_job(name: str, subnet: str) -> str:
    """A Fargate JobRun in `subnet` (which the sandbox may not have)."""
    network = (
        "  launchType: FARGATE\n"
        f"  networkConfiguration: {{awsvpcConfiguration: {{subnets: [{subnet}]}}}}\n"
    )
    return (
        job(name)
        .replace("  launchType: EC2\n", network)
        .replace(
            "    containerDefinitions:",
            "    networkMode: awsvpc\n    requiresCompatibilities: [FARGATE]\n"
            "    containerDefinitions:",
        )
    )


def ref_job(name: str, ref: str) -> str:
    """A JobRun that runs an existing task definition by reference."""
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: JobRun\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  cluster: batch\n"
        "  launchType: EC2\n"
        f"  taskDefinitionRef: '{ref}'\n"
    )


def cron_job(name: str) -> str:
    return (
        "apiVersion: ecs-job-controller/v1\n"
        "kind: CronJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n"
        "  schedule: '30 3 * * *'\n"
        "  jobTemplate:\n"
        "    cluster: batch\n"
        "    launchType: EC2\n"
        "    taskDefinitionRef: 'nightly:1'\n"
    )


def ledger_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of a ledger file, read without writing."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        db.close()


# -- failed actions exit 1 ----------------------------------------------------------------


def test_a_run_task_ecs_rejects_exits_1_and_is_listed_as_failed(world: World) -> None:
    world.write("a.yaml", fargate_job("no-subnet", "subnet-nope"))

    done = world.cli("reconcile", "--once", "-o", "json")

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    [failure] = report["failed"]
    assert failure.startswith("RunTask no-subnet/1 attempt 1: ")
    assert "subnet-nope" in failure
    assert f"failed: {failure}" in done.stderr
    run = world.run("no-subnet")
    assert (run["phase"], run["reason"]) == ("Failed", "RunTaskError")

    # Text output says so too, and does not claim it was done.
    world.write("b.yaml", fargate_job("also-no-subnet", "subnet-nope"))
    text = world.reconcile()
    assert text.returncode == 1
    assert "failed: RunTask also-no-subnet/1 attempt 1: " in text.stderr
    assert "did: RunTask also-no-subnet/1" not in text.stdout
    assert "Traceback" not in text.stderr

    # Failed for good: a later pass has nothing left to do, and exits 0.
    assert world.reconcile().returncode == 0


def test_a_task_definition_ref_that_does_not_exist_exits_1(world: World) -> None:
    world.write("a.yaml", ref_job("lost", "no-such-family:7"))

    done = world.cli("reconcile", "--once", "-o", "json")

    assert done.returncode == 1, done.stderr
    [failure] = json.loads(done.stdout)["failed"]
    assert "no-such-family:7" in failure
    assert world.run("lost")["reason"] == "TaskDefinitionError"
    assert world.reconcile().returncode == 0


# -- setup errors exit 2, in one line ------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("diff",),
        ("plan",),
        ("reconcile", "--once"),
        ("reconcile", "--once", "--dry-run"),
        ("validate",),
        ("run", "--metrics-addr", "127.0.0.1:0"),
    ],
    ids=" ".join,
)
def test_a_missing_source_is_a_setup_error(world: World, command: tuple[str, ...]) -> None:
    missing = world.root / "no-checkout"

    done = world.cli("--source", str(missing), *command)

    assert done.returncode == 2
    line = error_line(done)
    assert str(missing) in line
    assert line.endswith(" does not exist")


def test_a_source_that_is_a_file_is_a_setup_error(world: World) -> None:
    source = world.write("a.yaml", job("a"))

    done = world.cli("--source", str(source), "diff")

    assert done.returncode == 2
    assert error_line(done).endswith("is not a directory")


def test_validate_of_a_missing_path_is_one_line_exit_2(world: World) -> None:
    done = world.cli("validate", str(world.root / "nope.yaml"))

    assert done.returncode == 2
    assert "nope.yaml" in error_line(done)


def test_usage_errors_are_one_line_exit_2(world: World) -> None:
    no_once = world.cli("reconcile")
    assert no_once.returncode == 2
    assert "reconcile needs --once" in error_line(no_once)

    bad_owner = world.cli("--owner", "Not_Valid", "status")
    assert bad_owner.returncode == 2
    assert "--owner" in error_line(bad_owner)

    assert world.cli("status", "--help").returncode == 0


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_ledger_is_one_line_exit_2_from_every_command(world: World, how: str) -> None:
    world.write("a.yaml", job("nightly"))
    assert world.reconcile().returncode == 0
    path = world.root / "state.db"
    data = path.read_bytes()
    path.write_bytes(b"not a ledger" * 400 if how == "garbage" else data[: len(data) // 2])

    for command in (
        ("status",),
        ("status", "nightly"),
        ("diff",),
        ("reconcile", "--once"),
        ("logs", "nightly"),
        ("run", "--metrics-addr", "127.0.0.1:0"),
    ):
        done = world.cli(*command)
        assert done.returncode == 2, (command, done.stderr)
        line = error_line(done)
        assert f"the ledger {path} is damaged" in line, command
        assert "restore the file from a backup" in line


def test_a_ledger_locked_past_the_busy_timeout_is_one_line_exit_2(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    assert world.reconcile().returncode == 0
    # Another process holds SQLite's lock, and not only for writing.
    other = sqlite3.connect(world.root / "state.db", isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO cron_schedules VALUES ('held', '2026-01-01')")
    try:
        done = world.reconcile()  # waits the ledger's 10 s busy timeout, then gives up
    finally:
        other.close()

    assert done.returncode == 2
    assert "is locked by another connection" in error_line(done)


def test_no_credentials_is_one_line_exit_2_before_any_call(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    env = world.sandbox.subprocess_env()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    before = sum(world.sandbox.calls.values())

    run = ("run", "--metrics-addr", "127.0.0.1:0")
    for command in (("reconcile", "--once"), ("diff",), ("logs", "nightly"), run):
        done = subprocess.run(
            [sys.executable, "-m", "controller", "--source", str(world.manifests), "--state",
             world.state, *command],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 2, (command, done.stderr)
        assert error_line(done).startswith("error: no AWS credentials: configure them")

    assert sum(world.sandbox.calls.values()) == before


def test_an_unreachable_endpoint_is_reported_in_one_line_per_problem(world: World) -> None:
    world.write("a.yaml", job("nightly"))

    done = world.cli("diff", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = problem_lines(done)
    assert lines
    assert all(line.startswith("error: ") for line in lines), lines
    assert all("EndpointConnectionError: Could not connect" in line for line in lines)


# -- unknown names exit 1 -----------------------------------------------------------------


def test_status_of_a_name_the_ledger_does_not_know_exits_1(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    world.write("b.yaml", cron_job("weekly-report"))
    assert world.reconcile().returncode in (0, 1)  # the CronJob's ref is not there

    done = world.cli("status", "nighty")

    assert done.returncode == 1
    assert error_line(done) == "error: no run nighty in the ledger"
    assert world.cli("status", "nightly").returncode == 0
    assert world.cli("status", "weekly-report").returncode == 0  # a CronJob, runs or not


# -- read-only commands are read-only ---------------------------------------------------------


def test_read_only_commands_on_a_mistyped_ledger_create_nothing(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    typo = world.root / "typo" / "state.db"
    state = f"sqlite:{typo}"

    status = world.cli("--state", state, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"no ledger at {typo}"

    as_json = world.cli("--state", state, "status", "-o", "json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["runs"] == []
    assert f"no ledger at {typo}" in as_json.stderr

    diff = world.cli("--state", state, "diff")
    assert diff.returncode == 1, diff.stderr  # planned against an empty ledger
    assert "would: RunTask nightly/1" in diff.stdout
    dry_run = world.cli("--state", state, "reconcile", "--once", "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr
    logs = world.cli("--state", state, "logs", "nightly")
    assert logs.returncode == 1
    assert error_line(logs) == "error: no run nightly in the ledger"
    assert world.cli("--state", state, "validate").returncode == 0

    assert not typo.parent.exists()
    assert (
        world.sandbox.client("ecs", counted=False).list_task_definitions()["taskDefinitionArns"]
        == []
    )


def test_a_dry_run_writes_nothing_to_an_existing_ledger(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    assert world.reconcile().returncode == 0
    world.write("b.yaml", job("backfill"))  # a new family: register, then RunTask
    path = world.root / "state.db"
    rows = ledger_rows(path)
    files = {p.name for p in world.root.iterdir()} - {"state.db-wal", "state.db-shm"}

    assert world.cli("diff").returncode == 1
    assert world.cli("reconcile", "--once", "--dry-run").returncode == 0

    assert ledger_rows(path) == rows  # no run, event, schedule or revision cached
    assert {p.name for p in world.root.iterdir()} - {"state.db-wal", "state.db-shm"} == files
    families = world.sandbox.client("ecs", counted=False).list_task_definition_families()
    assert families["families"] == ["nightly"]


def test_read_only_commands_create_no_dynamodb_table(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    state = "dynamodb://no-such-ledger"

    status = world.cli("--state", state, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"no ledger at {state}"
    assert world.cli("--state", state, "diff").returncode == 1

    tables = world.sandbox.client("dynamodb", counted=False).list_tables()["TableNames"]
    assert "no-such-ledger" not in tables


# -- safe by default ---------------------------------------------------------------------------


def test_the_ledger_and_its_directory_are_private(world: World) -> None:
    world.write("a.yaml", job("nightly"))
    path = world.root / "private" / "state.db"

    assert world.cli("--state", f"sqlite:{path}", "reconcile", "--once").returncode == 0

    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    # The lock reconcile took is made first, and makes the directory: private too.
    assert (path.parent / "state.db.lock").stat().st_mode & 0o777 == 0o600
