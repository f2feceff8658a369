"""Installed from the wheel, `controller schema` and `controller demo` work anywhere.

The wheel is built once per module. It carries the JSON Schemas and the
examples as package data; `controller schema` runs from the zipped wheel
alone, and `controller demo` runs both from a virtual environment the wheel
is installed into (its own `controller` script, from a directory outside the
checkout) and from the zipped wheel.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from controller.sandbox.__main__ import argument_parser
from controller.sandbox.agent import DURATION_VARIABLE, EXIT_CODE_VARIABLE, STOP_CODE_VARIABLE
from controller.sandbox.latency import LATENCY_VARIABLE
from controller.sandbox.throttle import THROTTLE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (ROOT / "manifests" / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [found] = out.glob("ecs_job_controller-*.whl")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """An environment that does not lead Python to this checkout."""
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **extra}


def test_the_wheel_contains_the_schemas_and_they_load_from_it(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "controller/schema/jobrun.schema.json" in names
        assert "controller/schema/cronjob.schema.json" in names
        packaged = json.loads(archive.read("controller/schema/jobrun.schema.json"))
    assert packaged == json.loads((ROOT / "schema" / "jobrun.schema.json").read_text())
    # Run `controller schema` from the wheel alone, outside the repository.
    shown = subprocess.run(
        [sys.executable, "-c", "from controller.cli import main; main()", "schema", "cronjob"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(wheel)),
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["properties"]["kind"] == {"const": "CronJob"}


def test_the_wheel_carries_the_examples(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for name in EXAMPLES:
            packaged = archive.read(f"controller/manifests/examples/{name}")
            assert packaged == (ROOT / "manifests" / "examples" / name).read_bytes()


def demo_verdicts(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(verdicts) == len(EXAMPLES), done.stdout
    return verdicts


def test_an_installed_controller_runs_the_demo_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies (boto3, moto, ...) come from the test's environment;
    # the controller itself only from the wheel installed below.
    (Path(purelib) / "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # no manifests/ here

    done = subprocess.run(
        [str(venv / "bin" / "controller"), "demo", "--simulated-time"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=elsewhere,
        env=clean_env(),
    )

    assert all(line.startswith("ok") for line in demo_verdicts(done))
    # The examples came from the installed package, not from a checkout.
    assert f"sandbox: running {Path(purelib) / 'controller' / 'manifests' / 'examples'}" in (
        done.stdout
    )


def test_the_demo_runs_from_the_zipped_wheel(wheel: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from controller.cli import main; main()", "demo",
         "--simulated-time"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(wheel)),
    )  # fmt: skip
    assert all(line.startswith("ok") for line in demo_verdicts(done))


def test_the_demo_without_the_sandbox_extra_says_what_to_install(tmp_path: Path) -> None:
    # moto unimportable, as after a plain `pip install ecs-job-controller`.
    code = "import sys; sys.modules['moto'] = None; from controller.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "demo", "--simulated-time"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: the demo needs the sandbox (moto is not installed):"
        " pip install 'ecs-job-controller[sandbox]'"
    )
    assert "Traceback" not in done.stderr


def test_the_sandbox_help_explains_every_option_and_the_task_variables() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controller.sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for action in argument_parser()._actions:
        assert action.help, f"{action.option_strings} has no help text"
        assert all(option in done.stdout for option in action.option_strings)
    for variable in (
        DURATION_VARIABLE,
        EXIT_CODE_VARIABLE,
        STOP_CODE_VARIABLE,
        LATENCY_VARIABLE,
        THROTTLE_VARIABLE,
    ):
        assert variable in done.stdout
