"""The matrix on a terminal, fitted to its width (80 columns and up): every cell shows.

One line of glyphs per fault under numbered remediation headers; when the remediations do not
fit beside the fault names, they are split into blocks that do. Codes and the legend follow as
wrapped lines. `print_summary` prints, per fault, the fixes that work.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .codes import claimed_text, code_text, user_profile

SYMBOL = {
    "fixed": ("✔", "bold green"),
    "fixed-weakens-security": ("⚠", "bold yellow"),
    "not-fixed": ("✘", "red"),
    "not-broken": ("○", "green"),
    "not-emulated": ("–", "dim"),
    "lab-error": ("!", "bold magenta"),
}
LEGEND = ("✔ fixed  ⚠ fixed, weakens security  ✘ not fixed  ○ not broken (nothing to fix)  "
          "– not emulated  ! lab error")
CELL = 3  # columns per cell: up to two digits of header and a space


def _grid(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(c["fault"], c["remediation"]): c["outcome"] for c in doc["cells"]}


def glyph_blocks(doc: dict[str, Any], width: int) -> list[Text]:
    """The glyph grid as lines no wider than `width`, every cell in one of the blocks."""
    faults = [f["id"] for f in doc["faults"]]
    rems = [r["id"] for r in doc["remediations"]]
    grid = _grid(doc)
    name_width = min(max((len(f) for f in faults), default=5), max(12, width - 12 * CELL))
    per_block = max(1, (width - name_width - 1) // CELL)
    lines: list[Text] = []
    for start in range(0, len(rems), per_block):
        block = range(start, min(len(rems), start + per_block))
        header = Text(f"{'fault':<{name_width}} ", style="bold")
        for i in block:
            header.append(f"{i + 1:>2} ", style="bold")
        lines.append(header)
        for fault in faults:
            line = Text(f"{fault[:name_width]:<{name_width}} ")
            for i in block:
                outcome = grid.get((fault, rems[i]))
                sym, style = SYMBOL.get(outcome or "", (" ", ""))
                line.append(f" {sym} ", style=style)
            lines.append(line)
        lines.append(Text(""))
    return lines


def print_matrix(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    width = max(80, console.width)
    lab = doc["lab"]
    backends = sorted({c["backend"] for c in doc["cells"]})
    console.print(Text(f"Validated fix matrix: {lab['name']} (decides: {lab['profile']}; "
                       f"backend: {', '.join(backends) or '-'})", style="bold"))
    for line in glyph_blocks(doc, width):
        console.print(line, no_wrap=True, crop=False)
    rems = [r["id"] for r in doc["remediations"]]
    console.print(Text("remediations: ", style="bold")
                  + Text("  ".join(f"{i}={r}" for i, r in enumerate(rems, 1))))
    console.print(LEGEND)
    profiles = list(lab.get("code_profiles", []))
    table = Table(title="codes: claimed by the articles, measured per client", expand=False,
                  title_justify="left")
    table.add_column("fault", overflow="fold")
    table.add_column("claimed")
    table.add_column("user's client", overflow="fold")
    for p in profiles:
        table.add_column(p, overflow="fold")
    for fault in doc["faults"]:
        codes = fault.get("codes") or {}
        user = user_profile(fault)
        table.add_row(fault["id"], claimed_text(fault.get("claimed", {})),
                      f"{user}: {code_text(codes[user])}" if user else "?",
                      *[code_text(codes.get(p)) for p in profiles])
    console.print(table)
    for m in doc.get("expectation_mismatches", []):
        console.print(f"[yellow]differs from the fault file[/]: {m['fault']} with "
                      f"{m['profile']}: expected {m['expected']} ({m['provenance']}), "
                      f"saw {m['actual']}")
    runs = doc.get("xfreerdp_runs", [])
    if runs:
        compared = [r for r in runs if r.get("agree") is not None]
        random = sum("not_compared" in r for r in runs)
        skipped = sum("skipped" in r for r in runs)
        console.print(f"real xfreerdp: {len(runs)} runs, {len(compared)} compared with the "
                      f"freerdp2 profile, {sum(r['agree'] for r in compared)} agree"
                      + (f"; {random} on a random path recorded, not compared" if random else "")
                      + (f"; {skipped} skipped" if skipped else ""))
    for d in doc.get("xfreerdp_disagreements", []):
        console.print(f"[bold red]xfreerdp disagrees[/]: {d['fault']} × {d['remediation']} "
                      f"at {d['step']}: exit {d['xfreerdp_exit']}, predicted "
                      f"{d['predicted_exit']}")
    for c in doc["cells"]:
        if c["outcome"] == "lab-error":
            console.print(f"[magenta]lab error[/]: {c['fault']} × {c['remediation']}: "
                          f"{c['reason']}")
    for c in doc["cells"]:
        if c.get("collateral"):
            console.print(f"[red]collateral[/]: {c['fault']} × {c['remediation']} "
                          f"({c['outcome']}): {'; '.join(c['collateral'])}")
        if c.get("security_disagreement"):
            console.print(f"[yellow]security verdict[/]: {c['fault']} × {c['remediation']}: "
                          f"{c['security_disagreement']}")
    for c in doc["cells"]:
        if c["outcome"] == "not-emulated":
            console.print(f"[dim]not emulated[/]: {c['fault']} × {c['remediation']}: "
                          f"{c['reason']}")
    t = doc.get("timing", {})
    console.print(f"{t.get('cells', len(doc['cells']))} cells in {t.get('total_seconds')} s; "
                  f"median {t.get('median_cell_seconds')} s per cell; {t.get('jobs')} workers")


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Per fault: the fixes that work, those that weaken security, or that nothing fixes it."""
    grid = _grid(doc)
    rems = [r["id"] for r in doc["remediations"]]
    out = []
    for fault in doc["faults"]:
        fid = fault["id"]
        fixed = [r for r in rems if grid.get((fid, r)) == "fixed"]
        weak = [r for r in rems if grid.get((fid, r)) == "fixed-weakens-security"]
        other = {o for r in rems if (o := grid.get((fid, r))) in ("not-emulated", "lab-error")}
        parts = []
        if fixed:
            parts.append("fixed by " + ", ".join(fixed))
        if weak:
            parts.append("fixed, weakening security, by " + ", ".join(weak))
        if not parts and any(grid.get((fid, r)) == "not-broken" for r in rems):
            parts.append("not broken: the client keeps a usable session, nothing to fix")
        if not parts:
            parts.append("nothing fixes it" + (f" (cells {', '.join(sorted(other))})"
                                               if other else ""))
        out.append(f"{fid}: " + "; ".join(parts))
    return out


def print_summary(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(Text(f"What fixes what: lab {doc['lab']['name']}", style="bold"))
    for line in summary_lines(doc):
        fid, _, rest = line.partition(": ")
        console.print(Text(fid, style="bold") + Text(": " + rest))
