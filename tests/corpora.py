"""Where the task-definition corpora live: `tests/data/` (see its README).

The data is part of the repository so a fresh clone runs the whole proof;
a missing corpus fails the run at collection instead of skipping it.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
EQUIVALENCE = DATA / "taskdef-equivalence"
REAL = DATA / "taskdefs-real"

if not EQUIVALENCE.is_dir() or not REAL.is_dir():
    raise FileNotFoundError(f"task-definition test data not found under {DATA}")

#: every real task-definition file (index.json describes them and is not one)
REAL_FILES = sorted(p for p in REAL.glob("*.json") if p.name != "index.json")
