"""Views of a matrix run: the JSON contract, Markdown, JUnit XML, HTML and the console table.

All of them are computed from the JSON document (`to_json`), itself computed from the cells
(whose journals are on disk); none adds a fact. Working on the document means a merged set of
shards or an old run renders exactly as a live run does.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console

from . import console as console_view
from .console import SYMBOL
from .markdown import render_markdown
from .runner import MatrixResult

__all__ = ["SYMBOL", "print_matrix", "to_json", "write_json", "write_junit", "write_markdown"]
Document = dict[str, Any]


def to_json(result: MatrixResult) -> dict[str, Any]:
    """The documented contract (README: 'The matrix JSON')."""
    faults = []
    for fault in result.catalog.faults.values():
        faults.append(
            {
                "id": fault.id,
                "title": fault.title,
                "codes": result.row_codes(fault.id),
                "symptoms": result.row_symptoms(fault.id),
                "claimed": {**fault.claimed_codes, "text": fault.claim["text"],
                            "sources": list(fault.claim.get("sources", []))},
                "tags": list(fault.tags),
                "provenance": {
                    profile: exp.get("on_labs", {}).get(result.lab.get("name"), exp)
                    for profile, exp in fault.expected.items()
                },
                "requires": list(fault.requires),
                "variant": fault.variant,
            }
        )
    remediations = [
        {
            "id": r.id,
            "title": r.title,
            "node": r.target,
            "weakens_security": r.security_impact == "weakens",
            "source": list(r.sources),
            "script": str(r.script),
        }
        for r in result.catalog.remediations.values()
    ]
    cells = [
        {
            "fault": c.fault,
            "remediation": c.remediation,
            "outcome": c.outcome,
            "backend": c.backend,
            "journal": c.journal,
            "reason": c.reason,
            "seconds": round(c.seconds, 4),
            "collateral": list(c.collateral),
            "weakened": list(c.weakened),
            "security_disagreement": c.security_disagreement,
        }
        for c in result.cells
    ]
    return {
        "lab": result.lab,
        "faults": faults,
        "remediations": remediations,
        "cells": cells,
        "expectation_mismatches": result.expectation_mismatches(),
        "xfreerdp_disagreements": result.disagreements(),
        "xfreerdp_runs": [x for c in result.cells for x in c.xfreerdp],
        "timing": result.timing(),
    }


def write_json(result: MatrixResult, path: Path) -> None:
    path.write_text(json.dumps(to_json(result), indent=2, default=str) + "\n")


def as_document(result: MatrixResult | Document) -> Document:
    """The JSON document of a run (a document passes through)."""
    return result if isinstance(result, dict) else json.loads(json.dumps(to_json(result),
                                                                         default=str))


def write_markdown(result: MatrixResult | Document, path: Path) -> None:
    path.write_text(render_markdown(as_document(result)))


def write_junit(result: MatrixResult | Document, path: Path, *,
                fail_on: tuple[str, ...] = ("lab-error",),
                regressed: dict[tuple[str, str], str] | None = None) -> None:
    """One testcase per cell. A cell fails when its outcome is in `fail_on` (default: lab
    errors) or when it regressed against a baseline (`regressed`: cell -> what it was); other
    not-emulated cells are skipped, the rest pass with the outcome as a property (a
    remediation that does not fix is a result, not a bug)."""
    doc = as_document(result)
    regressed = regressed or {}
    failed = [c for c in doc["cells"]
              if c["outcome"] in fail_on or (c["fault"], c["remediation"]) in regressed]
    suite = ET.Element(
        "testsuite",
        name=f"rdplab-matrix-{doc['lab']['name']}",
        tests=str(len(doc["cells"])),
        failures=str(len(failed)),
        skipped=str(sum(c["outcome"] == "not-emulated" and c not in failed
                        for c in doc["cells"])),
        time=f"{float(doc.get('timing', {}).get('total_seconds', 0.0)):.3f}",
    )
    for c in doc["cells"]:
        case = ET.SubElement(suite, "testcase", classname=f"matrix.{c['fault']}",
                             name=c["remediation"], time=f"{float(c.get('seconds', 0.0)):.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in (("outcome", c["outcome"]), ("backend", c["backend"]),
                           ("journal", c.get("journal") or "")):
            ET.SubElement(props, "property", name=key, value=str(value))
        key = (c["fault"], c["remediation"])
        if key in regressed:
            message = (f"regression: was {regressed[key]} in the baseline, now {c['outcome']}: "
                       f"{c['reason']}")
            ET.SubElement(case, "failure", message=message, type="regression").text = message
        elif c["outcome"] in fail_on:
            ET.SubElement(case, "failure", message=c["reason"],
                          type=c["outcome"]).text = c["reason"]
        elif c["outcome"] == "not-emulated":
            ET.SubElement(case, "skipped", message=c["reason"])
        else:
            ET.SubElement(case, "system-out").text = f"{c['outcome']}: {c['reason']}"
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def print_matrix(result: MatrixResult | Document, console: Console | None = None) -> None:
    console_view.print_matrix(as_document(result), console)
