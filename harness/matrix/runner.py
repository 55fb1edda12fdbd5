"""Running every cell of the matrix, in worker processes, with progress; collecting the rows.

The unit of work is one fault with a run of its remediations (`cell.run_fault`): with the
snapshot lifecycle the fault's shared stages run once per unit. A fault's remediations are split
into several units when there are fewer faults than workers would need to stay busy.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import multiprocessing
import os
import signal
import statistics
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..lab import registry
from ..lab.definition import load_lab
from ..lifetime import die_with_parent
from ..net.signals import Terminated
from ..pki import KeyPool
from ..scenario.catalog import Catalog
from . import durations
from .cell import CellOptions, CellResult, run_fault

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


STOP_GRACE = 15.0  # seconds stopped workers get to destroy their labs before SIGKILL


def _init_worker() -> None:
    die_with_parent()  # a kill -9 of `rdplab matrix` ends its workers (and their labs)
    # Ctrl-C in a terminal reaches every process of the group: a worker interrupted inside the
    # pool's queue can leave its lock held and hang the others, so the parent alone decides
    # (and stops the workers with SIGTERM, _stop_workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    KeyPool._active = KeyPool(6)


def _fault_task(opts: CellOptions, fault: str, remediations: tuple[str, ...]
                ) -> list[CellResult]:
    try:
        return run_fault(opts, fault, remediations)
    except Terminated as exc:  # the run is being stopped: the lab is destroyed already; go
        os._exit(exc.signum + 128)


def _stop_workers(workers: list[multiprocessing.Process]) -> list[str]:
    """Stop the pool's workers (SIGTERM: each destroys its lab on the way out; SIGKILL after
    STOP_GRACE), then remove whatever labs the killed ones left (their state files)."""
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    pids = {w.pid for w in workers if w.pid is not None}
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join(5)
    from ..net.cleanup import down_all

    return down_all(include_live=False, owners=pids)


def work_units(catalog: Catalog, pairs: list[tuple[str, str]], jobs: int,
               lifecycle: str = "snapshot", costs: dict[str, float] | None = None
               ) -> list[tuple[str, tuple[str, ...]]]:
    """(fault, remediations) units, longest first: by `costs` (a fault's seconds per cell last
    time, durations.py) where known, else the faults that wait out timeouts first, so that they
    do not form the tail of the run. Fresh: one cell per unit. Snapshot: one unit per fault,
    split so that there are at least two units per worker; a fault that waits over half the
    workers."""
    by_fault: dict[str, list[str]] = {}
    for fault, remediation in pairs:
        by_fault.setdefault(fault, []).append(remediation)
    costs = costs or {}

    def per_cell(fault: str) -> float:
        known = costs.get(fault)
        if known is not None:
            return known
        return float("inf") if catalog.faults[fault].waits else 0.0

    slow_first = sorted(by_fault, key=lambda f: (not catalog.faults[f].waits, -per_cell(f)))
    known = [costs[f] * len(by_fault[f]) for f in by_fault if f in costs]
    share = sum(known) / jobs if len(known) == len(by_fault) and sum(known) > 0 else None
    if lifecycle == "fresh":
        units = [(f, (r,)) for f in slow_first for r in by_fault[f]]
    else:
        wanted = max(1, -(-2 * jobs // max(1, len(slow_first))))
        units = []
        for fault in slow_first:
            remediations = tuple(by_fault[fault])
            if share is not None:  # every fault's cost known: no unit longer than a worker's share
                parts = max(1, math.ceil(costs[fault] * len(remediations) / share))
            else:
                # a waiting fault over half the workers (at least two): each part repeats the
                # fault's shared stages (which wait too), so more parts cost more than they save
                parts = max(wanted, max(2, -(-jobs // 2)) if catalog.faults[fault].waits else 1)
            parts = min(parts, len(remediations))
            size = -(-len(remediations) // parts)
            units += [(fault, remediations[i:i + size])
                      for i in range(0, len(remediations), size)]
    # longest unit first (a waiting fault never run here counts as longest); stable
    units.sort(key=lambda u: -(per_cell(u[0]) * len(u[1])))
    return units


def run_matrix(opts: CellOptions, catalog: Catalog, *, jobs: int = 1,
               progress: ProgressFn | None = None,
               pairs: list[tuple[str, str]] | None = None) -> MatrixResult:
    """Every (fault, remediation) cell (or only `pairs`, a shard), in opts.lifecycle (a fresh
    lab per cell, or per fault a snapshot every remediation starts from); `jobs` capped by what
    the backend allows."""
    spec = load_lab(opts.lab)
    limit = registry.backend_class(opts.backend).max_concurrent_labs(spec)
    if limit is not None:
        jobs = min(jobs, limit)
    if pairs is None:
        pairs = [(f, r) for f in catalog.faults for r in catalog.remediations]
    result = MatrixResult(
        lab={"name": spec.name, "file": str(spec.path), "description": spec.description,
             "profile": opts.profile or spec.profile,
             "code_profiles": list(opts.code_profiles or spec.code_profiles),
             "backend_requested": opts.backend, "lifecycle": opts.lifecycle},
        catalog=catalog, jobs=jobs)
    t0 = time.perf_counter()
    done: list[CellResult] = []

    def finished(cells: list[CellResult]) -> None:
        for cell in cells:
            done.append(cell)
            if progress is not None:
                progress(cell, len(done), len(pairs))

    run_kind = opts.lifecycle + ("+xfreerdp" if opts.with_xfreerdp else "")  # costs differ
    costs = durations.per_cell_seconds(spec.name, opts.backend, run_kind)
    units = work_units(catalog, pairs, jobs, opts.lifecycle, costs)
    if jobs <= 1 or len(units) <= 1:
        with KeyPool(6):
            for fault, remediations in units:
                finished(run_fault(opts, fault, remediations))
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
            pending: set[Future[list[CellResult]]] = {
                pool.submit(_fault_task, opts, f, rs) for f, rs in units}
            try:
                while pending:
                    ready, pending = wait(pending, timeout=600, return_when=FIRST_COMPLETED)
                    if not ready:
                        raise TimeoutError("no cell finished within 600 s")
                    for future in ready:
                        finished(future.result())
            except BaseException:
                # Ctrl-C (or a failure): drop the queued cells, stop the running ones (each
                # destroys its lab), bounded; never wait on a pool whose workers were stopped.
                for future in pending:
                    future.cancel()
                _stop_workers(multiprocessing.active_children())
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    order = {pair: i for i, pair in enumerate(pairs)}
    result.cells = sorted(done, key=lambda c: order[(c.fault, c.remediation)])
    result.seconds = time.perf_counter() - t0
    durations.record(spec.name, opts.backend, run_kind, result.cells)
    return result


def default_jobs(backend: str = "loopback") -> int:
    """Workers for this backend on this machine: the backend's own default (contract)."""
    return registry.backend_class(backend).default_jobs(os.cpu_count() or 1)
