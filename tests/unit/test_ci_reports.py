"""Reports people read, from a matrix document: the console fits 80 columns and up with every
cell shown, --summary lists the fixes that work, Markdown has titles, claims with sources, the
code each client showed (prompt and message texts too) and the reason of every not-fixed cell."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.matrix.console import print_matrix, print_summary, summary_lines
from harness.matrix.markdown import render_markdown

OUTCOMES = ("fixed", "not-fixed", "fixed-weakens-security", "not-emulated", "lab-error")


def big_document(faults: int = 24, remediations: int = 40) -> dict:
    """A matrix larger than the shipped one, with long ids, every outcome present."""
    fids = [f"fault-number-{i:02d}-with-a-rather-long-identifier" for i in range(faults)]
    rids = [f"remediation-{j:02d}" for j in range(remediations)]
    codes = {"mstsc-win11": {"disconnect": None, "prompt": "certificate warning: connect anyway",
                             "source": "rdp-facts §5", "confidence": "doc"},
             "freerdp2": {"exit": 131, "error": "ERRCONNECT_CONNECT_FAILED", "source": "run",
                          "confidence": "run"}}
    return {
        "lab": {"name": "big", "profile": "mstsc-win11", "description": "A big lab",
                "code_profiles": ["mstsc-win11", "freerdp2"]},
        "faults": [{"id": f, "title": f"Title of {f}", "codes": codes,
                    "symptoms": {"mstsc-win11": "tls/cert_prompt:10", "freerdp2": "tls/x"},
                    "claimed": {"disconnect": "0x904", "extended": "0x7", "text": "claim text",
                                "sources": [f"https://example.test/{f}"]},
                    "provenance": {}, "tags": ["t"]} for f in fids],
        "remediations": [{"id": r, "title": f"Title of {r}", "node": "host",
                          "weakens_security": False, "source": [f"doc for {r}"]} for r in rids],
        "cells": [{"fault": f, "remediation": r, "outcome": OUTCOMES[(i + j) % 5],
                   "backend": "loopback", "journal": None, "reason": f"reason {i}-{j}",
                   "seconds": 0.1} for i, f in enumerate(fids) for j, r in enumerate(rids)],
        "expectation_mismatches": [], "xfreerdp_disagreements": [],
        "timing": {"cells": faults * remediations, "total_seconds": 1, "jobs": 2,
                   "median_cell_seconds": 0.1},
    }


@pytest.mark.parametrize("width", [80, 100, 120, 160, 250])
def test_the_console_matrix_fits_the_terminal_and_shows_every_cell(width: int) -> None:
    doc = big_document()
    out = io.StringIO()
    print_matrix(doc, Console(file=out, width=width, color_system=None))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    glyphs = sum(line.count(s) for line in lines if line.startswith("fault-number")
                 for s in "✔✘⚠○–!")
    assert glyphs == len(doc["cells"])
    headers = [line for line in lines if line.startswith("fault ")]
    numbers = [int(n) for h in headers for n in h.split()[1:]]
    assert numbers == list(range(1, 41))  # every remediation column, in blocks that fit


def test_a_row_of_glyphs_matches_the_cells_in_order() -> None:
    doc = big_document(faults=2, remediations=6)
    out = io.StringIO()
    print_matrix(doc, Console(file=out, width=80, color_system=None))
    row = next(line for line in out.getvalue().splitlines()
               if line.startswith("fault-number-01"))
    assert row.split()[1:] == ["✘", "⚠", "–", "!", "✔", "✘"]


def test_summary_lists_per_fault_the_fixes_that_work() -> None:
    doc = big_document(faults=3, remediations=5)
    lines = summary_lines(doc)
    assert lines[0].endswith("fixed by remediation-00; fixed, weakening security, by "
                             "remediation-02")
    doc["cells"] = [{**c, "outcome": "not-fixed"} for c in doc["cells"]]
    assert summary_lines(doc)[0].endswith("nothing fixes it")
    out = io.StringIO()
    print_summary(doc, Console(file=out, width=80))
    assert "What fixes what" in out.getvalue()


def test_markdown_has_titles_claims_sources_codes_and_every_reason() -> None:
    doc = big_document(faults=2, remediations=5)
    text = render_markdown(doc)
    first = doc["faults"][0]
    assert f"### {first['id']}" in text and f"**{first['title']}**" in text
    assert "Claim: claim text (code 0x904/0x7)" in text
    assert "source: https://example.test/" in text and "source: doc for remediation-03" in text
    assert 'prompt: "certificate warning: connect anyway"' in text
    assert "exit 131 ERRCONNECT_CONNECT_FAILED" in text
    not_fixed = [c for c in doc["cells"] if c["outcome"] not in ("fixed",
                                                                  "fixed-weakens-security")]
    for cell in not_fixed:
        assert f"`{cell['remediation']}`: {cell['outcome']}: {cell['reason']}" in text
