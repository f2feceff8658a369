"""Finds and compiles the JSON Schemas in `schema/` (the single source of truth).

The wheel carries them as `controller/schema/*.json`; in a source checkout
they live at the repository's top-level `schema/`. This module is the only
place that reads them, so `controller.model` stays free of file I/O and takes
the compiled validators as an argument.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from controller.model.manifest import Kind

SCHEMA_FILES = {Kind.JOB_RUN: "jobrun.schema.json", Kind.CRON_JOB: "cronjob.schema.json"}


def schema_dir() -> Path:
    """The directory holding the schema files, installed or in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "schema", package.parent / "schema"):
        if (candidate / SCHEMA_FILES[Kind.JOB_RUN]).is_file():
            return candidate
    raise FileNotFoundError(f"JSON Schemas not found next to {package}")


@cache
def load_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of one kind, as a dictionary."""
    text = (schema_dir() / SCHEMA_FILES[kind]).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validators() -> dict[Kind, Validator]:
    """A compiled 2020-12 validator per kind."""
    return {kind: Draft202012Validator(load_schema(kind)) for kind in Kind}
