"""The one config-file loader: YAML with line numbers (source.py) checked by JSON Schema
(harness/data/schemas/<kind>.schema.json), errors as `file:line: field 'x': what is wrong`.

Every file a user or the project writes goes through `load_checked(path, kind)`: client profiles
(`client-profile`), OS profiles (`os-profile`, `os-common`), host configs (`host-config`), labs
(`lab`), faults (`fault`, and each inject step's `args` against the action's own schema) and
remediation sidecars (`remediation`). A property may carry `"x-expected"`: the words the error
uses ("expected 0, 1 or 2, got 3").
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import ConfigError
from .source import PathKey, ScenarioFileError, SourcedDocument, load_sourced

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "schemas"
KINDS = ("client-profile", "os-profile", "os-common", "host-config", "lab", "fault",
         "remediation")
_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "object": "a mapping", "array": "a list",
               "null": "null"}


@cache
def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    return schema


@cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = schema_of(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _words(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in names)


def _located(error: jsonschema.ValidationError) -> tuple[PathKey, str]:
    """The field an error is about, and what to say about it."""
    path: PathKey = tuple(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else None
        return ((*path, missing) if missing else path), "is missing"
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed] if isinstance(error.instance,
                                                                             dict) else []
        if extra:
            return (*path, extra[0]), f"unknown; known fields: {', '.join(allowed)}"
        return path, f"{error.message}; allowed here: {', '.join(allowed)}"
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if expected:
        return path, f"expected {expected}, got {error.instance!r}"
    if error.validator == "type":
        return path, f"expected {_words(error.validator_value)}, got {error.instance!r}"
    if error.validator == "enum":
        return path, f"{error.instance!r} is not one of {error.validator_value}"
    return path, error.message


def first_error(doc: SourcedDocument, errors: list[jsonschema.ValidationError],
                prefix: PathKey = ()) -> ConfigError | None:
    """The error on the earliest line, as ConfigError naming file, line and field."""
    if not errors:
        return None
    located = [((*prefix, *key), text) for key, text in map(_located, errors)]
    key, text = min(located, key=lambda kt: (doc.line_of(kt[0]) or 0, len(kt[0])))
    return doc.error(key, text)


def check(doc: SourcedDocument, kind: str) -> dict[str, Any]:
    """Validate against harness/data/schemas/<kind>.schema.json; raise the first error, located."""
    error = first_error(doc, list(_validator(kind).iter_errors(doc.data)))
    if error is not None:
        raise error
    if not isinstance(doc.data, dict):
        raise ScenarioFileError(doc.path, 1, None, f"a {kind} file is a mapping")
    return doc.data


def check_part(doc: SourcedDocument, key: PathKey, value: Any, schema: dict[str, Any]) -> None:
    """Validate one part of a document (at `key`) against a schema made at run time (a fault
    action's arguments); the error names the field inside the document."""
    validator = jsonschema.Draft202012Validator(schema)
    error = first_error(doc, list(validator.iter_errors(value)), key)
    if error is not None:
        raise error


def load_checked(path: Path, kind: str, text: str | None = None) -> SourcedDocument:
    """Parse a YAML file with its lines and check it against its kind's schema."""
    doc = load_sourced(Path(path), text)
    check(doc, kind)
    return doc


__all__ = ["KINDS", "SCHEMA_DIR", "check", "check_part", "first_error", "load_checked",
           "schema_of"]
