"""Loading a matrix document (`rdplab matrix --json`) or a golden file, and its outcomes.

Bad input is a `DocumentError` naming the file and what is wrong (exit 2 in the commands)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..matrix.cell import OUTCOMES

FIXED = ("fixed", "fixed-weakens-security")


class DocumentError(ValueError):
    """A file that is not a matrix document or a golden file."""


@dataclass(frozen=True)
class Outcomes:
    """What a comparison needs of a document: ids in order, and the outcome per cell."""

    lab: str
    backend: str
    faults: tuple[str, ...]
    remediations: tuple[str, ...]
    cells: dict[tuple[str, str], str]
    reasons: dict[tuple[str, str], str]
    source: str = ""

    def fixes(self, fault: str) -> list[str]:
        """The remediations that fix this fault (with or without weakening security)."""
        return [r for r in self.remediations if self.cells.get((fault, r)) in FIXED]


def load_document(path: Path) -> dict[str, Any]:
    """A matrix JSON document or a golden file, as parsed JSON (checked for its shape)."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or "cells" not in doc or "lab" not in doc:
        raise DocumentError(f"{path}: not a matrix document (rdplab matrix --json) or a golden "
                            "file: it has no 'lab' and 'cells'")
    return doc


def _backend(doc: dict[str, Any]) -> str:
    if isinstance(doc.get("backend"), str):
        return doc["backend"]
    backends = sorted({c.get("backend", "?") for c in doc.get("cells", [])
                       if isinstance(c, dict)})
    return ",".join(backends) or str(doc.get("lab", {}).get("backend_requested", "?"))


def outcomes(doc: dict[str, Any], source: str = "") -> Outcomes:
    """The outcomes of a matrix document or of a golden file (`cells: {fault: {rem: outcome}}`)."""
    where = source or "document"
    lab = doc["lab"] if isinstance(doc["lab"], str) else doc["lab"].get("name", "?")
    cells: dict[tuple[str, str], str] = {}
    reasons: dict[tuple[str, str], str] = {}
    raw = doc["cells"]
    if isinstance(raw, dict):  # a golden file
        for fault, row in raw.items():
            for rem, outcome in row.items():
                cells[(fault, rem)] = outcome
        faults = tuple(doc.get("faults") or raw)
        rems = tuple(doc.get("remediations") or dict.fromkeys(r for row in raw.values()
                                                               for r in row))
    else:
        for i, cell in enumerate(raw):
            try:
                key = (cell["fault"], cell["remediation"])
                cells[key] = cell["outcome"]
            except (KeyError, TypeError):
                raise DocumentError(f"{where}: cells[{i}]: needs fault, remediation and "
                                    "outcome") from None
            reasons[key] = str(cell.get("reason") or "")
        faults = tuple(f["id"] if isinstance(f, dict) else f for f in doc.get("faults", [])) \
            or tuple(dict.fromkeys(f for f, _ in cells))
        rems = tuple(r["id"] if isinstance(r, dict) else r for r in doc.get("remediations", [])) \
            or tuple(dict.fromkeys(r for _, r in cells))
    for key, outcome in cells.items():
        if outcome not in OUTCOMES:
            raise DocumentError(f"{where}: cell {key[0]} × {key[1]}: unknown outcome "
                                f"{outcome!r}; known: {', '.join(OUTCOMES)}")
    return Outcomes(lab, _backend(doc), faults, rems, cells, reasons, source)


def load_outcomes(path: Path) -> Outcomes:
    return outcomes(load_document(path), str(path))
