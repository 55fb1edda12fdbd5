"""`rdplab hint [--level 1-3]`: graded hints about the lab's fault: 1 the symptom, 2 where to
look, 3 the fix (with the remediations that fix it in the matrix, computed in fresh labs)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("hint", help="a graded hint about the lab's fault", description=__doc__)
    add_lab_args(p)
    p.add_argument("--level", type=int, choices=(1, 2, 3), default=1,
                   help="1 the symptom, 2 where to look, 3 the fix (default 1)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..scenario.catalog import load_catalog
    from ..training.cli_support import lab_from_args
    from ..training.errors import TrainingError
    from ..training.hints import hint

    labdir = lab_from_args(args)
    record = labdir.read()
    fault = record.get("fault")
    if not fault:
        raise TrainingError(f"lab {record['name']} has no fault; `rdplab break FAULT` first")
    entry = load_catalog().faults[fault["id"]]
    shows = fault.get("client_shows")
    validated = None
    if args.level == 3 and not entry.hints.get("fix"):
        import sys

        from ..training.fixes import validated_fixes

        print("computing which remediations fix it (the matrix row, in a fresh lab) ...",
              file=sys.stderr, flush=True)
        validated = validated_fixes(record, fault["id"])
    print(f"hint {args.level}/3: {hint(entry, args.level, shows, validated)}")
    return 0
