"""Views of a matrix run: the JSON contract, Markdown, JUnit XML and the console table.

All of them are computed from the cells (whose journals are on disk); none adds a fact.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .runner import MatrixResult

SYMBOL = {
    "fixed": ("✔", "bold green"),
    "fixed-weakens-security": ("⚠", "bold yellow"),
    "not-fixed": ("✘", "red"),
    "not-emulated": ("–", "dim"),
    "lab-error": ("!", "bold magenta"),
}


def _code_text(codes: dict[str, Any]) -> str:
    if not codes:
        return "?"
    if codes.get("result") == "connected":
        return "connects"
    if "disconnect" in codes:
        if codes["disconnect"] is None:
            return "prompt" if codes.get("prompt") else "message"
        return f"{codes['disconnect']}/{codes.get('extended', '0x0')}"
    if "exit" in codes:
        return f"exit {codes['exit']}"
    return str(codes.get("result", "?"))


def _claimed(fault: Any) -> str:
    return "/".join(fault.claimed_codes.values()) or "(no code)"


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
                "claimed": {**fault.claimed_codes, "text": fault.claim["text"]},
                "provenance": fault.expected,
                "requires": list(fault.requires),
            }
        )
    remediations = [
        {
            "id": r.id,
            "title": r.title,
            "node": r.target,
            "weakens_security": r.security_impact == "weakens",
            "source": list(r.sources),
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


def write_markdown(result: MatrixResult, path: Path) -> None:
    rems = list(result.catalog.remediations)
    profiles = result.lab["code_profiles"]
    lines = [
        f"# Validated fix matrix: lab `{result.lab['name']}`",
        "",
        f"{result.lab['description']}. Decision profile: `{result.lab['profile']}`. "
        "Every cell below was computed by running it (journals beside this file).",
        "",
        "Legend: ✔ fixed · ⚠ fixed but weakens security · ✘ not fixed · – not emulated · "
        "! lab error",
        "",
        "| fault | claimed | user's client | "
        + " | ".join(profiles)
        + " | "
        + " | ".join(f"`{r}`" for r in rems)
        + " |",
        "|---" * (3 + len(profiles) + len(rems)) + "|",
    ]
    for fault in result.catalog.faults.values():
        codes = result.row_codes(fault.id)
        claimed = _claimed(fault)
        user = next(iter(codes), None)  # the profile the user ran comes first
        user_text = f"{user}: {_code_text(codes[user])}" if user else "?"
        cells = []
        for rem in rems:
            c = result.cell(fault.id, rem)
            cells.append(SYMBOL[c.outcome][0] if c else " ")
        lines.append(
            f"| `{fault.id}` | {claimed} | {user_text} | "
            + " | ".join(_code_text(codes.get(p, {})) for p in profiles)
            + " | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "## Cells that are not a plain fixed / not fixed", ""]
    for c in result.cells:
        if c.outcome in ("not-emulated", "lab-error", "fixed-weakens-security"):
            lines.append(f"- `{c.fault}` × `{c.remediation}`: **{c.outcome}**: {c.reason}")
    mism = result.expectation_mismatches()
    if mism:
        lines += ["", "## Where the run differs from the fault file's expectation", ""]
        lines += [
            f"- `{m['fault']}` with {m['profile']}: expected {m['expected']} "
            f"({m['provenance']}), saw {m['actual']}"
            for m in mism
        ]
    t = result.timing()
    lines += [
        "",
        f"{t['cells']} cells in {t['total_seconds']} s (median {t['median_cell_seconds']}"
        f" s per cell, {t['jobs']} workers).",
        "",
    ]
    path.write_text("\n".join(lines))


def write_junit(result: MatrixResult, path: Path) -> None:
    """One testcase per cell: lab errors fail, not-emulated cells are skipped, the rest pass
    with the outcome as a property (a remediation that does not fix is a result, not a bug)."""
    suite = ET.Element(
        "testsuite",
        name=f"rdplab-matrix-{result.lab['name']}",
        tests=str(len(result.cells)),
        failures=str(len(result.lab_errors)),
        skipped=str(sum(c.outcome == "not-emulated" for c in result.cells)),
        time=f"{result.seconds:.3f}",
    )
    for c in result.cells:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"matrix.{c.fault}",
            name=c.remediation,
            time=f"{c.seconds:.3f}",
        )
        props = ET.SubElement(case, "properties")
        for key, value in (
            ("outcome", c.outcome),
            ("backend", c.backend),
            ("journal", c.journal or ""),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        if c.outcome == "lab-error":
            ET.SubElement(case, "failure", message=c.reason).text = c.reason
        elif c.outcome == "not-emulated":
            ET.SubElement(case, "skipped", message=c.reason)
        else:
            ET.SubElement(case, "system-out").text = f"{c.outcome}: {c.reason}"
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def print_matrix(result: MatrixResult, console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 200)
    rems = list(result.catalog.remediations)
    profiles = result.lab["code_profiles"]
    table = Table(
        title=f"Validated fix matrix: {result.lab['name']} (decides: {result.lab['profile']})",
        show_lines=False,
    )
    table.add_column("fault", no_wrap=True)
    table.add_column("claimed", no_wrap=True)
    table.add_column("user's client", no_wrap=True)
    for p in profiles:
        table.add_column(p, no_wrap=True)
    for i, _ in enumerate(rems, 1):
        table.add_column(str(i), justify="center")
    for fault in result.catalog.faults.values():
        codes = result.row_codes(fault.id)
        row = [fault.id, _claimed(fault)]
        user = next(iter(codes), None)  # the profile the user ran comes first
        row.append(f"{user}: {_code_text(codes[user])}" if user else "?")
        row += [_code_text(codes.get(p, {})) for p in profiles]
        for rem in rems:
            c = result.cell(fault.id, rem)
            sym, style = SYMBOL[c.outcome] if c else (" ", "")
            row.append(f"[{style}]{sym}[/]")
        table.add_row(*row)
    console.print(table)
    console.print("remediations: " + "  ".join(f"{i}={r}" for i, r in enumerate(rems, 1)))
    console.print("✔ fixed  ⚠ fixed, weakens security  ✘ not fixed  – not emulated  ! lab error")
    for m in result.expectation_mismatches():
        console.print(
            f"[yellow]differs from the fault file[/]: {m['fault']} with {m['profile']}: "
            f"expected {m['expected']} ({m['provenance']}), saw {m['actual']}"
        )
    for d in result.disagreements():
        console.print(
            f"[bold red]xfreerdp disagrees[/]: {d['fault']} × {d['remediation']} "
            f"at {d['step']}: exit {d['xfreerdp_exit']}, predicted {d['predicted_exit']}"
        )
    for c in result.lab_errors:
        console.print(f"[magenta]lab error[/]: {c.fault} × {c.remediation}: {c.reason}")
    for c in result.cells:
        if c.outcome == "not-emulated":
            console.print(f"[dim]not emulated[/]: {c.fault} × {c.remediation}: {c.reason}")
    t = result.timing()
    console.print(
        f"{t['cells']} cells in {t['total_seconds']} s; median {t['median_cell_seconds']}"
        f" s per cell; {t['jobs']} workers"
    )
