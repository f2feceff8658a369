"""Finds and compiles the JSON Schemas in `schema/` (the single source of truth).

The wheel carries them as `controller/schema/*.json`; in a source checkout
they live at the repository's top-level `schema/` (`controller.packaged`
finds either). This module is the only place that reads them, so
`controller.model` stays free of file I/O and takes the compiled validators
as an argument.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from controller.model.manifest import Kind
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
def validators() -> dict[Kind, Validator]:
    """A compiled 2020-12 validator per kind."""
    return {kind: Draft202012Validator(load_schema(kind)) for kind in Kind}
