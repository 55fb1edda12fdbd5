"""`rdplab diff A.json B.json`: the regression gate's comparison of two matrix documents (or
golden files), for people: outcome by outcome, no paths or timings.

Exit status 0 when B has no regression against A, 3 when it has (a fixed cell that is not any
more, or a fault that lost its last fix), 2 for a file that is not a matrix document.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ci.compare import EXIT_REGRESSION, compare, format_comparison
from ..ci.document import DocumentError, load_outcomes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="compare two matrix documents outcome by outcome",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", type=Path, metavar="A.json", help="the baseline (--json or golden)")
    p.add_argument("new", type=Path, metavar="B.json", help="the run to check")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        old, new = load_outcomes(args.old), load_outcomes(args.new)
    except DocumentError as exc:
        print(f"rdplab diff: {exc}", file=sys.stderr)
        return 2
    comparison = compare(old, new)
    print(format_comparison(comparison, old_name=str(args.old), new_name=str(args.new)), end="")
    return EXIT_REGRESSION if comparison.regressed else 0
