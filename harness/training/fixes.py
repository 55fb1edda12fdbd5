"""The remediations that fix a fault, computed as the matrix does (fresh labs, every cell run
now), for the last hint level."""

from __future__ import annotations

from typing import Any


def validated_fixes(record: dict[str, Any], fault_id: str) -> list[str]:
    from ..matrix.cell import CellOptions, run_cell
    from ..scenario.catalog import load_catalog

    backend = record["backend"]
    opts = CellOptions(lab=record["lab"], backend=backend)
    fixed = []
    for remediation in sorted(load_catalog().remediations):
        cell = run_cell(opts, fault_id, remediation)
        if cell.outcome == "fixed":
            fixed.append(remediation)
    return fixed
