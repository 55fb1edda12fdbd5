"""Running every cell of the matrix, in worker processes, with progress; collecting the rows."""

from __future__ import annotations

import fnmatch
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..lab.definition import load_lab
from ..pki import KeyPool
from ..scenario.catalog import Catalog
from .cell import CellOptions, CellResult, run_cell

ProgressFn = Callable[[CellResult, int, int], None]


@dataclass
class MatrixResult:
    lab: dict[str, Any]
    catalog: Catalog
    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1

    def cell(self, fault: str, remediation: str) -> CellResult | None:
        for c in self.cells:
            if c.fault == fault and c.remediation == remediation:
                return c
        return None

    @property
    def lab_errors(self) -> list[CellResult]:
        return [c for c in self.cells if c.outcome == "lab-error"]

    def row_codes(self, fault: str) -> dict[str, dict[str, Any]]:
        """The codes each profile showed for this fault (from the first cell that reproduced)."""
        for c in self.cells:
            if c.fault == fault and c.codes:
                return c.codes
        return {}

    def row_symptoms(self, fault: str) -> dict[str, str | None]:
        for c in self.cells:
            if c.fault == fault and c.symptoms:
                return c.symptoms
        return {}

    def expectation_mismatches(self) -> list[dict[str, Any]]:
        """Where the fault file's expected symptom (with provenance) differs from the run."""
        out = []
        for fault in self.catalog.faults.values():
            seen = self.row_symptoms(fault.id)
            for profile, exp in fault.expected.items():
                if profile not in seen:
                    continue
                exp = exp.get("on_labs", {}).get(self.lab.get("name"), exp)
                actual = seen[profile] or "none"
                patterns = exp["symptom"] if isinstance(exp["symptom"], list) else [exp["symptom"]]
                if not any(fnmatch.fnmatchcase(actual, p) for p in patterns):
                    out.append({"fault": fault.id, "profile": profile, "expected": exp["symptom"],
                                "provenance": exp["provenance"], "actual": actual})
        return out

    def disagreements(self) -> list[dict[str, Any]]:
        """Real xfreerdp runs whose exit code differs from the freerdp2 profile's prediction."""
        return [x for c in self.cells for x in c.xfreerdp if x.get("agree") is False]

    def timing(self) -> dict[str, float]:
        per_cell = [c.seconds for c in self.cells] or [0.0]
        return {"cells": len(self.cells), "total_seconds": round(self.seconds, 3),
                "median_cell_seconds": round(statistics.median(per_cell), 4),
                "max_cell_seconds": round(max(per_cell), 4), "jobs": self.jobs}


def _init_worker() -> None:
    KeyPool._active = KeyPool(6)


def _cell_task(opts: CellOptions, fault: str, remediation: str) -> CellResult:
    return run_cell(opts, fault, remediation)


def run_matrix(opts: CellOptions, catalog: Catalog, *, jobs: int = 1,
               progress: ProgressFn | None = None,
               pairs: list[tuple[str, str]] | None = None) -> MatrixResult:
    """Every (fault, remediation) cell (or only `pairs`, a shard), each in its own fresh lab."""
    spec = load_lab(opts.lab)
    if pairs is None:
        pairs = [(f, r) for f in catalog.faults for r in catalog.remediations]
    result = MatrixResult(
        lab={"name": spec.name, "file": str(spec.path), "description": spec.description,
             "profile": opts.profile or spec.profile,
             "code_profiles": list(opts.code_profiles or spec.code_profiles),
             "backend_requested": opts.backend},
        catalog=catalog, jobs=jobs)
    t0 = time.perf_counter()
    done: list[CellResult] = []

    def finished(cell: CellResult) -> None:
        done.append(cell)
        if progress is not None:
            progress(cell, len(done), len(pairs))

    if jobs <= 1 or len(pairs) <= 1:
        with KeyPool(6):
            for fault, remediation in pairs:
                finished(run_cell(opts, fault, remediation))
    else:
        # Cells that wait out network timeouts first, so they do not form the tail of the run.
        slow_first = sorted(pairs, key=lambda p: not catalog.faults[p[0]].requires)
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
            pending: set[Future[CellResult]] = {
                pool.submit(_cell_task, opts, f, r) for f, r in slow_first}
            try:
                while pending:
                    ready, pending = wait(pending, timeout=600, return_when=FIRST_COMPLETED)
                    if not ready:
                        raise TimeoutError("no cell finished within 600 s")
                    for future in ready:
                        finished(future.result())
            except BaseException:
                # Ctrl-C (or a failure): drop the queued cells and wait only for the running
                # ones, which destroy their labs as they end (interrupted too, from a terminal).
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    order = {pair: i for i, pair in enumerate(pairs)}
    result.cells = sorted(done, key=lambda c: order[(c.fault, c.remediation)])
    result.seconds = time.perf_counter() - t0
    return result


def default_jobs(backend: str = "loopback") -> int:
    """Workers: one per core where cells compute (loopback); six per core on netns, where
    network-fault cells mostly wait for timeouts; one on vagrant (shared VMs)."""
    cores = os.cpu_count() or 1
    if backend == "vagrant":
        return 1
    return max(1, min(16, cores * 6)) if backend == "netns" else max(1, min(8, cores))
