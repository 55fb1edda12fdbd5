"""Full default matrix, timed: `python benchmarks/bench_matrix.py [--runs N] [--backend B]`.

Targets: loopback under 30 s, netns under 60 s on a 2-core machine (each cell a fresh lab).
Prints the total per run, the median total, and the median time per cell.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from harness.lab.definition import load_lab
from harness.lab.factory import resolve_backend
from harness.matrix.cell import CellOptions
from harness.matrix.runner import default_jobs, run_matrix
from harness.scenario.catalog import load_catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", action="append",
                        help="loopback and/or netns (default: loopback, and netns when possible)")
    parser.add_argument("--jobs", type=int, default=None, help="default: per backend")
    parser.add_argument("--lab", default="default")
    args = parser.parse_args()
    backends = args.backend or ["loopback"] + (["netns"] if resolve_backend("auto") == "netns"
                                               else [])
    spec = load_lab(args.lab)
    catalog, _ = load_catalog().for_lab(spec.name)
    cells = len(catalog.faults) * len(catalog.remediations)
    print(f"lab {spec.name}: {len(catalog.faults)} faults x {len(catalog.remediations)} "
          f"remediations = {cells} cells")
    for backend in backends:
        totals, per_cell = [], []
        jobs = args.jobs or default_jobs(backend)
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as journals:
                opts = CellOptions(lab=str(spec.path), backend=backend, journal_dir=journals)
                result = run_matrix(opts, catalog, jobs=jobs)
            outcomes = {o: sum(c.outcome == o for c in result.cells)
                        for o in {c.outcome for c in result.cells}}
            totals.append(result.seconds)
            per_cell += [c.seconds for c in result.cells]
            print(f"  {backend} run {run + 1}: {result.seconds:.2f} s  {outcomes}")
        print(f"{backend}: median total {statistics.median(totals):.2f} s over {args.runs} runs; "
              f"median cell {statistics.median(per_cell) * 1000:.1f} ms "
              f"(cells run in {jobs} parallel workers)")


if __name__ == "__main__":
    main()
