"""The remediations that fix a fault, computed as the matrix does (a fresh lab, the fault
injected once, every remediation from its snapshot), for the last hint level."""

from __future__ import annotations

from typing import Any


def validated_fixes(record: dict[str, Any], fault_id: str) -> list[str]:
    from ..matrix.cell import CellOptions, run_fault
    from ..scenario.catalog import load_catalog

    opts = CellOptions(lab=record["lab"], backend=record["backend"])
    cells = run_fault(opts, fault_id, sorted(load_catalog().remediations))
    return [cell.remediation for cell in cells if cell.outcome == "fixed"]
