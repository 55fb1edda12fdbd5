"""`rdplab matrix`: run every fault × remediation cell and print the validated fix matrix.

Exit status 0 when every cell ran (whatever its outcome), 1 when any cell is a lab error,
2 for bad input (a scenario or lab file, an unknown id), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..lab.definition import load_lab
from ..lab.factory import netns_reason, resolve_backend
from ..matrix.cell import CellOptions
from ..matrix.report import print_matrix, write_json, write_junit, write_markdown
from ..matrix.runner import default_jobs, run_matrix
from ..probe.profiles import ProfileError, load_profile
from ..scenario.catalog import load_catalog
from ..scenario.source import ScenarioFileError
from .options import positive_int, seconds


def _ids(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="compute the validated fix matrix", description=__doc__)
    p.add_argument("--lab", default="default", help="lab name or file (default: labs/default.yaml)")
    p.add_argument("--faults", metavar="IDS", help="comma-separated fault ids (default: all)")
    p.add_argument("--remediations", metavar="IDS", help="comma-separated remediation ids")
    p.add_argument("--profile", help="client profile that decides each cell (default: the lab's)")
    p.add_argument("--backend", default="auto", choices=("auto", "loopback", "netns", "vagrant"),
                   help="auto: netns when namespaces can be created, else loopback")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="worker processes (default: one per core; six per core on netns)")
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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        spec = load_lab(args.lab)
        catalog = load_catalog(args.scenarios).select(_ids(args.faults), _ids(args.remediations))
        catalog, left_out = catalog.for_lab(spec.name)
        if args.profile:
            load_profile(args.profile)
        backend = resolve_backend(args.backend)
        if args.backend == "auto" and backend == "loopback":
            print(f"netns backend not available ({netns_reason()}): using loopback; cells that "
                  "need the kernel are reported as not emulated", file=sys.stderr)
    except (ScenarioFileError, ProfileError, ValueError) as exc:
        print(f"rdplab matrix: {exc}\nnothing was run.", file=sys.stderr)
        return 2
    if backend == "netns" and args.backend == "netns" and (why := netns_reason()):
        print(f"rdplab matrix: the netns backend cannot run here: {why}\nnothing was run.",
              file=sys.stderr)
        return 2
    if backend == "vagrant":
        from ..lab.vagrant import LabError, VagrantOptions, preflight, required_boxes

        try:
            options = VagrantOptions.from_env()
            preflight(options.root)
            required_boxes(spec, options)
        except LabError as exc:
            print(f"rdplab matrix: the vagrant backend cannot run here: {exc}\nnothing was run.",
                  file=sys.stderr)
            return 2
    if args.jobs is None:
        args.jobs = default_jobs(backend)
    if backend == "vagrant" and args.jobs > 1:
        err.print("the vagrant backend runs one cell at a time (the VMs are shared): --jobs 1")
        args.jobs = 1
    journals = args.journals or (args.json.parent / f"{args.json.stem}-journals" if args.json
                                 else Path(tempfile.mkdtemp(prefix="rdplab-journals-")))
    opts = CellOptions(lab=str(spec.path), backend=backend,
                       scenarios=str(args.scenarios) if args.scenarios else None,
                       profile=args.profile, stage_timeout=args.stage_timeout,
                       with_xfreerdp=args.with_xfreerdp, journal_dir=str(journals))
    if left_out:
        err.print(f"faults not written for lab {spec.name} (their 'labs' field): "
                  f"{', '.join(left_out)}")
    if not catalog.faults or not catalog.remediations:
        err.print("[bold red]rdplab matrix:[/] no cell to run for this selection")
        return 2
    cells = len(catalog.faults) * len(catalog.remediations)
    err.print(f"lab {spec.name} on the {backend} backend: {len(catalog.faults)} faults × "
              f"{len(catalog.remediations)} remediations = {cells} cells, {args.jobs} workers")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        task = bar.add_task("cells", total=cells)

        def progress(cell, done, total):  # type: ignore[no-untyped-def]
            bar.update(task, completed=done,
                       description=f"{cell.fault[:24]:24} × {cell.remediation[:24]:24}")

        try:
            result = run_matrix(opts, catalog, jobs=args.jobs, progress=progress)
        except KeyboardInterrupt:
            err.print("interrupted: no matrix written")
            return 130
    print_matrix(result)
    for target, writer in ((args.json, write_json), (args.markdown, write_markdown),
                           (args.junit, write_junit)):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            writer(result, target)
            err.print(f"wrote {target}")
    err.print(f"cell journals: {journals}")
    return 1 if result.lab_errors else 0
