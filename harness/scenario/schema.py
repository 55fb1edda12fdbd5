"""JSON Schema checks of scenario files, reported with the file, line and field."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from .source import ScenarioFileError, SourcedDocument

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "schemas"


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _hint(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed here: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {error.validator_value}"
    return error.message


def check(doc: SourcedDocument, kind: str) -> dict[str, Any]:
    """Validate against harness/data/schemas/<kind>.schema.json; raise the first error, located."""
    errors = sorted(_validator(kind).iter_errors(doc.data), key=lambda e: list(e.absolute_path))
    if errors:
        first = min(errors, key=lambda e: doc.line_of(tuple(e.absolute_path)) or 0)
        raise doc.error(tuple(first.absolute_path), _hint(first))
    if not isinstance(doc.data, dict):
        raise ScenarioFileError(doc.path, 1, None, f"a {kind} file is a mapping")
    return doc.data
