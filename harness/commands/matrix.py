"""`rdplab matrix`: run every fault × remediation cell and print the validated fix matrix.

Exit status 0 when every cell ran (whatever its outcome), 1 when any cell has an outcome
`--fail-on` names (default: lab-error), 2 for bad input (a scenario or lab file, an unknown id),
3 when `--baseline` finds a regression (a fixed cell that is not any more, or a fault that lost
its last fix), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..ci import golden
from ..ci.document import DocumentError, load_outcomes
from ..ci.outputs import finish
from ..ci.policy import parse_fail_on
from ..ci.shard import parse_shard, shard_pairs
from ..errors import BackendUnavailable, ConfigError
from ..lab import registry
from ..lab.definition import load_lab
from ..matrix.cell import LIFECYCLES, CellOptions
from ..matrix.report import as_document
from ..matrix.runner import run_matrix
from ..probe.profiles import load_profile
from ..scenario.catalog import load_catalog
from .options import positive_int, seconds


def _ids(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="compute the validated fix matrix", description=__doc__)
    p.add_argument("--lab", default=None, help="lab name or file (default: labs/default.yaml)")
    p.add_argument("--faults", metavar="IDS", help="comma-separated fault ids (default: all)")
    p.add_argument("--remediations", metavar="IDS", help="comma-separated remediation ids")
    p.add_argument("--profile", help="client profile that decides each cell (default: the lab's)")
    p.add_argument("--backend", default="auto", choices=registry.choices(),
                   help="auto: the first of " + ", ".join(registry.AUTO_ORDER)
                   + " that can run here")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="worker processes (default: the backend's, e.g. one per core on "
                   "loopback; capped by how many labs the backend may run at once)")
    p.add_argument("--lifecycle", default="snapshot", choices=LIFECYCLES,
                   help="snapshot: per fault, every remediation starts from a snapshot of the "
                   "reproduced fault; fresh: a fresh lab per cell (same outcomes, slower)")
    p.add_argument("--scenarios", type=Path, help="scenario folder (default: scenarios/)")
    p.add_argument("--stage-timeout", type=seconds, default=2.0,
                   help="cap on each probe stage's timeout, seconds (a timeout is still a timeout)")
    p.add_argument("--with-xfreerdp", action="store_true",
                   help="also run real xfreerdp at reproduce and verify and compare")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the matrix JSON here")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report here")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    p.add_argument("--journals", type=Path, metavar="DIR",
                   help="where cell journals go (default: beside --json, else a temp folder)")
    p.add_argument("--pcap", action="store_true",
                   help="write a pcapng (TLS keys embedded) and key log of every probe "
                        "connection, beside the journals")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="write a self-contained HTML report (heat map, each cell's evidence)")
    p.add_argument("--summary", action="store_true",
                   help="print per fault the fixes that work instead of the full matrix")
    ci = p.add_argument_group("CI")
    ci.add_argument("--baseline", type=Path, metavar="OLD.json",
                    help="compare with an earlier --json (or a golden file): exit 3 when a fixed "
                         "cell is not any more or a fault lost its last fix")
    ci.add_argument("--fail-on", metavar="OUTCOMES", default=None,
                    help="outcomes that make the exit 1, e.g. not-fixed,lab-error,not-emulated "
                         "(default: lab-error; 'none': never)")
    ci.add_argument("--shard", metavar="K/N",
                    help="run only shard K of N (deterministic, balanced); join with rdplab merge")
    ci.add_argument("--update-golden", action="store_true",
                    help="write the pinned matrix tests/golden/<lab>-<backend>.json; without "
                         "--lab/--backend: every shipped lab on every backend that runs here")
    ci.add_argument("--golden-dir", type=Path, default=None, help=argparse.SUPPRESS)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The matrix, or with --update-golden every pinned matrix it is asked for."""
    args.lab_given = args.lab is not None
    if not args.update_golden:
        return run_one(args)
    if args.shard or args.faults or args.remediations or args.profile:
        print("rdplab matrix: --update-golden pins whole matrices with the lab's own profile: "
              "drop --shard, --faults, --remediations and --profile\nnothing was run.",
              file=sys.stderr)
        return 2
    labs = [args.lab] if args.lab_given else golden.shipped_labs()
    skipped = {name: why for name in registry.AUTO_ORDER
               if (why := registry.backend_class(name).availability()) is not None}
    backends = [args.backend] if args.backend != "auto" else [
        name for name in reversed(registry.AUTO_ORDER) if name not in skipped]
    status = 0
    for lab in labs:
        for backend in backends:
            one = argparse.Namespace(**{**vars(args), "lab": lab, "backend": backend})
            status = max(status, run_one(one))
    if args.backend == "auto":
        for name, why in skipped.items():
            print(f"{name} golden files not updated: {why}", file=sys.stderr)
    return status


def run_one(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    args.lab = args.lab or "default"
    try:
        fail_on = parse_fail_on(args.fail_on)
        shard = parse_shard(args.shard) if args.shard else None
        baseline = load_outcomes(args.baseline) if args.baseline else None
        spec = load_lab(args.lab)
        catalog = load_catalog(args.scenarios).select(_ids(args.faults), _ids(args.remediations))
        catalog, left_out = catalog.for_lab(spec.name)
        if args.profile:
            load_profile(args.profile)
    except (ConfigError, DocumentError, ValueError) as exc:
        print(f"rdplab matrix: {exc}\nnothing was run.", file=sys.stderr)
        return 2
    try:
        backend = registry.resolve(args.backend)
        backend_class = registry.backend_class(backend)
        backend_class.preflight(spec)
    except BackendUnavailable as exc:
        print(f"rdplab matrix: {exc}\nnothing was run.", file=sys.stderr)
        return 2
    note = registry.auto_fallback_note(args.backend, backend)
    if note:
        print(note, file=sys.stderr)
    if args.jobs is None:
        args.jobs = backend_class.default_jobs(os.cpu_count() or 1)
    limit = backend_class.max_concurrent_labs(spec)
    if limit is not None and args.jobs > limit:
        err.print(f"the {backend} backend runs at most {limit} lab(s) at once: --jobs {limit}")
        args.jobs = limit
    journals = args.journals or (args.json.parent / f"{args.json.stem}-journals" if args.json
                                 else Path(tempfile.mkdtemp(prefix="rdplab-journals-")))
    opts = CellOptions(lab=str(spec.path), backend=backend,
                       scenarios=str(args.scenarios) if args.scenarios else None,
                       profile=args.profile, stage_timeout=args.stage_timeout,
                       with_xfreerdp=args.with_xfreerdp, journal_dir=str(journals),
                       lifecycle=args.lifecycle, pcap=args.pcap)
    if left_out:
        err.print(f"faults not written for lab {spec.name} (their 'labs' field): "
                  f"{', '.join(left_out)}")
    if not catalog.faults or not catalog.remediations:
        err.print("[bold red]rdplab matrix:[/] no cell to run for this selection")
        return 2
    pairs = shard_pairs(catalog, *shard) if shard else None
    cells = len(pairs) if pairs is not None else len(catalog.faults) * len(catalog.remediations)
    err.print(f"lab {spec.name} on the {backend} backend: {len(catalog.faults)} faults × "
              f"{len(catalog.remediations)} remediations"
              + (f", shard {shard[0]}/{shard[1]}: {cells} cells" if shard else f" = {cells} cells")
              + f", {args.jobs} workers")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        task = bar.add_task("cells", total=cells)

        def progress(cell, done, total):  # type: ignore[no-untyped-def]
            bar.update(task, completed=done,
                       description=f"{cell.fault[:24]:24} × {cell.remediation[:24]:24}")

        try:
            result = run_matrix(opts, catalog, jobs=args.jobs, progress=progress, pairs=pairs)
        except KeyboardInterrupt:
            err.print("interrupted: no matrix written")
            return 130
    doc = as_document(result)
    if shard:
        doc["shard"] = {"index": shard[0], "of": shard[1]}
    return finish(doc, args, fail_on, baseline, err, journals=journals, backend=backend)
