"""The wheel carries the JSON Schemas, so an installed `controller schema` works anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_contains_the_schemas_and_they_load_from_it(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("ecs_job_controller-*.whl")
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
        env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"},
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["properties"]["kind"] == {"const": "CronJob"}
