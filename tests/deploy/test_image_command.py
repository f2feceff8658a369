"""The image's command line, run exactly as the Dockerfile says, against the sandbox.

The test machines may have no container runtime, so the image itself is
not built here (`make image` does; deploy/README.md). What the image runs
is covered instead: the wheel is built and installed into a fresh virtual
environment, as the Dockerfile's final stage installs it, and the
Dockerfile's `ENTRYPOINT` + `CMD` run from there, word for word, with the
environment the CloudFormation stack gives the container (an S3 source and
the DynamoDB ledger). It must start the manifest's run, answer the
Dockerfile's own HEALTHCHECK command, record the run's success, and stop
cleanly on SIGTERM (what ECS sends to stop a task).

The command binds the metrics port the image exposes (0.0.0.0:9464), as
the container does.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.clock import SystemClock
from controller.sandbox import Sandbox
from tests.deploy.operations import ROOT
from tests.e2e.child import Child
from tests.e2e.conftest import job
from tests.test_packaging import clean_env, wheel

__all__ = ["wheel"]  # the packaging tests' module-scoped wheel fixture, shared

pytestmark = pytest.mark.e2e

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> dict[str, str]:
    """The final stage's instructions (continuation lines joined), by keyword."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    found: dict[str, str] = {}
    for line in final.splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found[keyword] = rest.strip()
    return found


def exec_form(text: str) -> list[str]:
    words: list[str] = json.loads(text)
    assert isinstance(words, list), f"not the exec form: {text}"
    return words


def image_command() -> list[str]:
    """ENTRYPOINT + CMD, as the container runtime joins them."""
    found = instructions()
    return exec_form(found["ENTRYPOINT"]) + exec_form(found["CMD"])


def health_command() -> list[str]:
    """The HEALTHCHECK's command (after its options)."""
    check = instructions()["HEALTHCHECK"]
    return exec_form(check.split(" CMD ", 1)[1])


def test_the_dockerfile_runs_the_controller_as_an_unprivileged_user() -> None:
    found = instructions()
    assert image_command()[0] == "controller"
    assert found["USER"].split(":")[0] not in ("0", "root")
    assert health_command()[:2] == ["python", "-c"]
    assert "curl" not in DOCKERFILE.read_text().lower().replace("no curl", "")
    assert "/healthz" in health_command()[2]
    assert DOCKERFILE.read_text().count("FROM python:3.11-slim") == 2


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the wheel installed: its bin directory."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from the test's environment; the controller only from the wheel.
    (Path(purelib) / "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    return venv / "bin"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SystemClock(), tick_seconds=0.1) as running:
        yield running


def test_the_image_command_runs_a_job_answers_its_healthcheck_and_stops(
    installed: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.create_cluster("batch")
    sandbox.add_container_instances("batch", 1)
    s3 = sandbox.client("s3", counted=False)
    s3.create_bucket(Bucket="manifests")
    s3.put_object(Bucket="manifests", Key="jobs/hello.yaml", Body=job("hello", duration=1).encode())
    # The stack's container environment (deploy/cloudformation.yaml), on the sandbox.
    base = clean_env(PATH=f"{installed}:/usr/bin:/bin")
    environment = sandbox.subprocess_env(base) | {
        "CONTROLLER_SOURCE": "s3://manifests/jobs/",
        "CONTROLLER_STATE": "dynamodb://ledger",
        "CONTROLLER_OWNER": "image",
    }
    command = image_command()
    # The runtime resolves ENTRYPOINT on PATH: the installed console script.
    assert (installed / command[0]).exists()

    child = Child([str(installed / command[0]), *command[1:]], environment)
    try:
        child.wait_line(lambda line: "RunTask hello/1" in line, what="RunTask hello/1")
        # The HEALTHCHECK, as the runtime runs it inside the container.
        health = health_command()
        probe = subprocess.run(
            [str(installed / health[0]), *health[1:]],
            env=base,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        child.wait_line(lambda line: "Record hello/1 Succeeded" in line, what="the success")
        assert child.stop() == 0
    finally:
        child.kill()
    lines = [json.loads(line) for line in child.output().splitlines() if line.startswith("{")]
    assert lines, "--log-format json: the log lines are JSON"
