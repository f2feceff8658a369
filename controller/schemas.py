"""Finds and compiles the JSON Schemas in `schema/` (the single source of truth).

The wheel carries them as `controller/schema/*.json`; in a source checkout
they live at the repository's top-level `schema/` (`controller.packaged`
finds either). This module is the only place that reads them, so
`controller.model` stays free of file I/O and takes the compiled validators
as an argument. `write_schemas` copies them out for editors
(`controller schema --write DIR`), byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from controller.errors import UsageError
from controller.model.manifest import Kind
from controller.model.validate import SchemaValidator
from controller.packaged import bundled

SCHEMA_FILES = {Kind.JOB_RUN: "jobrun.schema.json", Kind.CRON_JOB: "cronjob.schema.json"}


def _schema_text(kind: Kind) -> str:
    """The schema file's text: from the installed package, else from the checkout."""
    return bundled(f"schema/{SCHEMA_FILES[kind]}").read_text(encoding="utf-8")


@cache
def load_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of one kind, as a dictionary."""
    schema: dict[str, Any] = json.loads(_schema_text(kind))
    return schema


@cache
def validators() -> dict[Kind, SchemaValidator]:
    """Per kind, the schema compiled for the fast yes/no check and for precise errors."""
    return {
        kind: SchemaValidator(
            precise=Draft202012Validator(load_schema(kind)),
            fast=jsonschema_rs.validator_for(load_schema(kind)),
        )
        for kind in Kind
    }


def write_schemas(directory: Path, kinds: Iterable[Kind] = tuple(Kind)) -> list[Path]:
    """Write the schema files of `kinds` into `directory` (made if missing); return their paths."""
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            target = directory / SCHEMA_FILES[kind]
            # The file as shipped, not a re-serialisation: same bytes, same $id.
            target.write_text(_schema_text(kind), encoding="utf-8")
            written.append(target)
    except OSError as exc:
        raise UsageError(f"cannot write the schemas to {directory}: {exc.strerror or exc}") from exc
    return written
