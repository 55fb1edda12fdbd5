"""What a matrix run ends with, for `rdplab matrix` and `rdplab merge` alike: the console view,
the files asked for (JSON, Markdown, JUnit, HTML, a golden file), the `--fail-on` policy and the
`--baseline` gate. Everything works on the matrix document."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from ..matrix.console import print_matrix, print_summary
from ..matrix.report import write_junit, write_markdown
from . import golden
from .compare import EXIT_REGRESSION, compare, format_comparison
from .document import Outcomes, outcomes


def finish(doc: dict[str, Any], args: argparse.Namespace, fail_on: tuple[str, ...],
           baseline: Outcomes | None, err: Console, *, journals: Path | None = None,
           backend: str | None = None) -> int:
    """Print, write the files asked for, gate; shared by `matrix` and `merge`."""
    (print_summary if getattr(args, "summary", False) else print_matrix)(doc)
    comparison = compare(baseline, outcomes(doc)) if baseline is not None else None
    regressed = ({(c.fault, c.remediation): c.before for c in comparison.regressions}
                 if comparison else {})
    for target, writer in ((getattr(args, "json", None), write_document),
                           (getattr(args, "markdown", None), write_markdown),
                           (getattr(args, "junit", None), lambda d, t: write_junit(
                               d, t, fail_on=fail_on, regressed=regressed)),
                           (getattr(args, "html", None), write_html)):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            writer(doc, target)
            err.print(f"wrote {target}")
    if getattr(args, "update_golden", False) and backend:
        path = golden.write_golden(doc, backend, args.golden_dir)
        err.print(f"wrote the pinned matrix {path}")
    if journals is not None:
        err.print(f"cell journals: {journals}")
    status = 0
    failing = [c for c in doc["cells"] if c["outcome"] in fail_on]
    if failing:
        err.print(f"{len(failing)} cell(s) with an outcome in --fail-on "
                  f"({', '.join(fail_on)})")
        status = 1
    if comparison is not None:
        text = format_comparison(comparison, old_name=f"baseline {args.baseline}")
        print(text, end="", file=sys.stderr if not comparison.regressed else sys.stdout)
        if comparison.regressed:
            status = EXIT_REGRESSION
    return status


def write_document(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def write_html(doc: dict[str, Any], path: Path) -> None:
    from ..matrix.html import write_html as write

    write(doc, path)
