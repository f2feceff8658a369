"""The README's benchmark section is generated from the kept results, and only from them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_table.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_section_is_rewritten_from_the_result_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _script()
    results = tmp_path / "results"
    results.mkdir()
    (results / "load_manifests.txt").write_text(
        "# 2026-12-02 15:00 UTC; Some CPU, 2 cores, Linux 6, Python 3.11.7; 42 s\n"
        "kind  manifests\nJobRun  1,000\n"
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{table.BEGIN}\nold figure: 9,999 files/s\n{table.END}\noutro\n")
    monkeypatch.setattr(table, "RESULTS", results)
    monkeypatch.setattr(table, "README", readme)

    assert table.readme() == 0

    text = readme.read_text()
    assert "old figure" not in text
    assert text.startswith("intro\n")
    assert text.endswith("outro\n")
    assert "kind  manifests\nJobRun  1,000" in text
    assert "Measured 2026-12-02 15:00 UTC (Some CPU, 2 cores, Linux 6, Python 3.11.7)" in text
    # A benchmark without a result is named as not measured, never given a figure.
    assert "`pass_scale`" in text.split("Not measured by this script yet:")[1]


def test_readme_without_markers_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _script()
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    monkeypatch.setattr(table, "README", readme)
    assert table.readme() == 2
    assert readme.read_text() == "no markers\n"


def test_every_benchmark_module_is_listed() -> None:
    table = _script()
    modules = {
        p.stem
        for p in (SCRIPT.parents[1] / "bench").glob("*.py")
        if "def main" in p.read_text() and p.stem != "measured"
    }
    assert modules == {name.split()[0] for name in table.BENCHES}
