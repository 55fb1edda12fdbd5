"""The matrix as one self-contained HTML file (no network: inline style, script and data):
a heat map filterable by fault, remediation, outcome and tag; each cell opens its evidence
(stage trace before and after, the script and its output, model changes, node events, the codes
each client shows with provenance, links to the cell's captures)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from .evidence import load_evidence, script_text

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "report" / "matrix.html"


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no '</' and no '<!--' can end or change the element."""
    text = json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def report_data(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """The document plus each cell's evidence; capture links relative to the report's folder."""
    evidence = {}
    for cell in doc["cells"]:
        ev = load_evidence(cell)
        if ev is None:
            continue
        for capture in ev["pcaps"]:
            for key in ("pcap", "keylog"):
                if capture.get(key):
                    capture[key] = os.path.relpath(capture[key], base)
        evidence[f"{cell['fault']}\u0000{cell['remediation']}"] = ev
    rems = []
    for r in doc["remediations"]:
        text = script_text(r)
        rems.append({**r, "script_text": text,
                     "script_name": Path(r["script"]).name if r.get("script") else None})
    cells = [{k: c.get(k) for k in ("fault", "remediation", "outcome", "backend", "reason")}
             for c in doc["cells"]]
    return {"lab": doc["lab"], "faults": doc["faults"], "remediations": rems, "cells": cells,
            "evidence": evidence}


def render_html(doc: dict[str, Any], base: Path) -> str:
    page = TEMPLATE.read_text(encoding="utf-8")
    page = page.replace("__TITLE__", html.escape(str(doc["lab"]["name"])))
    return page.replace("__DATA__", _json_for_script(report_data(doc, base)))


def write_html(doc: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(doc, path.parent.resolve()), encoding="utf-8")
