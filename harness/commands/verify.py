"""`rdplab verify SCRIPT.ps1 --fault ID`: does this script fix that fault? It runs as a
remediation in a fresh lab (create, baseline, inject, reproduce, run the script, verify), with
no sidecar: the node comes from --node or a comment header (`# node: host`).

Exit status: 0 fixed; 1 not fixed (or not emulated, or a lab error), with the reason;
3 fixed but it weakens security (`# security-impact: weakens` in the script, or as computed);
2 bad input. With --all-faults, the script's column of the matrix: 0 when it fixes at least one
fault without weakening security, 3 when its only fixes weaken security, 1 when it fixes none.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from ..ci.adhoc import ScriptInputError, adhoc_scenarios
from ..ci.compare import EXIT_REGRESSION
from ..lab import registry
from ..lab.definition import load_lab
from ..matrix.cell import CellOptions, CellResult, run_cell
from ..matrix.console import SYMBOL
from ..matrix.runner import default_jobs, run_matrix
from ..pki import KeyPool
from ..probe.profiles import ProfileError
from ..scenario.catalog import load_catalog
from ..scenario.source import ScenarioFileError
from .options import seconds

EXIT_WEAKENS = EXIT_REGRESSION  # 3, as the gate: a fix that is not acceptable as it stands


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check that a script fixes a fault", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", type=Path, metavar="SCRIPT.ps1")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--fault", metavar="ID", help="the fault to fix")
    target.add_argument("--all-faults", action="store_true",
                        help="every fault of the lab: the script's column of the matrix")
    p.add_argument("--node", choices=("client", "host", "gateway", "both"),
                   help="where the script runs (default: its '# node: ...' header)")
    p.add_argument("--lab", default="default", help="lab name or file")
    p.add_argument("--backend", default="auto", choices=registry.choices())
    p.add_argument("--scenarios", type=Path, help="fault folder (default: scenarios/)")
    p.add_argument("--stage-timeout", type=seconds, default=2.0,
                   help="cap on each probe stage's timeout, seconds (above 0)")
    p.add_argument("--journals", type=Path, metavar="DIR", help="keep the cell journals here")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = Console(soft_wrap=True)
    try:
        spec = load_lab(args.lab)
        backend = registry.resolve(args.backend)
        with adhoc_scenarios(args.script, args.node, args.scenarios) as (folder, rem_id):
            catalog, _ = load_catalog(folder).for_lab(spec.name)
            if args.fault and args.fault not in catalog.faults:
                raise ValueError(f"--fault {args.fault!r}: not a fault of lab {spec.name}; "
                                 f"known: {', '.join(catalog.faults)}")
            journals = args.journals or Path(tempfile.mkdtemp(prefix="rdplab-verify-journals-"))
            opts = CellOptions(lab=str(spec.path), backend=backend, scenarios=str(folder),
                               stage_timeout=args.stage_timeout, journal_dir=str(journals))
            if args.fault:
                with KeyPool(2):
                    cells = [run_cell(opts, args.fault, rem_id)]
            else:
                column = catalog.select(None, [rem_id])
                cells = run_matrix(opts, column, jobs=default_jobs(backend)).cells
    except (ScriptInputError, ScenarioFileError, ProfileError, ValueError) as exc:
        print(f"rdplab verify: {exc}\nnothing was run.", file=sys.stderr)
        return 2
    for cell in cells:
        _print_cell(out, args.script, cell)
    print(f"cell journals: {journals}", file=sys.stderr)
    return _status([c.outcome for c in cells], single=bool(args.fault))


def _print_cell(out: Console, script: Path, cell: CellResult) -> None:
    sym, style = SYMBOL[cell.outcome]
    out.print(f"[{style}]{sym} {cell.outcome}[/]: {script.name} against {cell.fault} "
              f"({cell.backend}): {cell.reason}", highlight=False)


def _status(outcomes: list[str], *, single: bool) -> int:
    if "fixed" in outcomes:
        return 0
    if "fixed-weakens-security" in outcomes:
        return EXIT_WEAKENS
    return 1
