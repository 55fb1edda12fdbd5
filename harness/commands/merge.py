"""`rdplab merge PART.json... --json ALL.json`: join shard documents (`rdplab matrix --shard K/N
--json PART.json`, one per machine) into the document a single run gives, then print it and
write any report, exactly as `rdplab matrix` would (same --fail-on and --baseline gate).

Exit status as `rdplab matrix`: 0, 1 (an outcome in --fail-on), 2 (parts that do not belong
together: another lab or catalog, a shard missing or twice), 3 (a regression against
--baseline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from ..ci.document import DocumentError, load_outcomes
from ..ci.merge import merge_files
from ..ci.outputs import finish
from ..ci.policy import parse_fail_on


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join shard documents into one matrix", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", type=Path, nargs="+", metavar="PART.json")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the merged matrix JSON here")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report here")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    p.add_argument("--summary", action="store_true", help="print per fault the fixes that work")
    p.add_argument("--baseline", type=Path, metavar="OLD.json",
                   help="gate against an earlier matrix: exit 3 on a regression")
    p.add_argument("--fail-on", metavar="OUTCOMES", default=None,
                   help="outcomes that make the exit 1 (default: lab-error)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        fail_on = parse_fail_on(args.fail_on)
        baseline = load_outcomes(args.baseline) if args.baseline else None
        doc = merge_files(args.parts)
    except (DocumentError, ValueError) as exc:
        print(f"rdplab merge: {exc}\nnothing was written.", file=sys.stderr)
        return 2
    return finish(doc, args, fail_on, baseline, Console(stderr=True))
