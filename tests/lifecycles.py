"""Running the full default matrix in both lifecycles and comparing them cell by cell."""

from __future__ import annotations

import json
from pathlib import Path

from harness.lab.definition import load_lab
from harness.matrix.cell import CellOptions
from harness.matrix.compare import comparable, differences
from harness.matrix.runner import default_jobs, run_matrix
from harness.scenario.catalog import load_catalog


def compare_lifecycles(backend: str, tmp_path: Path, lab: str = "default") -> int:
    """Both lifecycles on every cell; the list of differences must be empty. Returns the number
    of cells compared."""
    spec = load_lab(lab)
    catalog, _ = load_catalog().for_lab(spec.name)
    runs = {}
    for lifecycle in ("fresh", "snapshot"):
        opts = CellOptions(lab=str(spec.path), backend=backend, lifecycle=lifecycle,
                           journal_dir=str(tmp_path / lifecycle))
        runs[lifecycle] = run_matrix(opts, catalog, jobs=default_jobs(backend))
    fresh = {(c.fault, c.remediation): c for c in runs["fresh"].cells}
    snap = {(c.fault, c.remediation): c for c in runs["snapshot"].cells}
    assert fresh.keys() == snap.keys()
    problems = []
    for key, cell in fresh.items():
        other = snap[key]
        for attr in ("outcome", "reason", "codes", "symptoms", "backend"):
            if getattr(cell, attr) != getattr(other, attr):
                problems.append(f"{key} {attr}: {getattr(cell, attr)!r} != "
                                f"{getattr(other, attr)!r}")
        a = json.loads(Path(cell.journal or "").read_text())
        b = json.loads(Path(other.journal or "").read_text())
        assert a["lifecycle"] == "fresh" and a["snapshot"] is None
        assert b["lifecycle"] == "snapshot"
        if b["snapshot"] is None:  # the shared stages stopped: no snapshot was taken
            assert b["outcome"] in ("lab-error", "not-emulated"), b["reason"]
        else:
            assert b["snapshot"]["name"] == f"{spec.name}/{key[0]}@reproduce"
        problems += [f"{key} journal{d}" for d in differences(comparable(a), comparable(b))]
    assert problems == [], "\n".join(problems[:40])
    return len(fresh)
