"""The regression gate: two matrix documents compared outcome by outcome.

A regression is a cell that was `fixed` or `fixed-weakens-security` and is now anything else,
or a fault that had at least one fix and now has none. New faults and remediations, cells that
improved, and cells only one side ran are listed, never failures. The text is stable (ids and
outcomes only: no paths, no timings) so two identical runs compare as "no change".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .document import FIXED, Outcomes

EXIT_REGRESSION = 3


@dataclass(frozen=True)
class Change:
    fault: str
    remediation: str
    before: str
    after: str
    reason: str = ""

    @property
    def cell(self) -> str:
        return f"{self.fault} × {self.remediation}"


@dataclass
class Comparison:
    old: Outcomes
    new: Outcomes
    regressions: list[Change] = field(default_factory=list)
    lost_last_fix: dict[str, list[str]] = field(default_factory=dict)  # fault -> old fixes
    changes: list[Change] = field(default_factory=list)  # every other outcome change
    new_faults: list[str] = field(default_factory=list)
    new_remediations: list[str] = field(default_factory=list)
    removed_faults: list[str] = field(default_factory=list)
    removed_remediations: list[str] = field(default_factory=list)
    compared: int = 0

    @property
    def regressed(self) -> bool:
        return bool(self.regressions or self.lost_last_fix)

    def regressed_cells(self) -> set[tuple[str, str]]:
        return {(c.fault, c.remediation) for c in self.regressions}


def compare(old: Outcomes, new: Outcomes) -> Comparison:
    out = Comparison(old, new)
    out.new_faults = [f for f in new.faults if f not in old.faults]
    out.removed_faults = [f for f in old.faults if f not in new.faults]
    out.new_remediations = [r for r in new.remediations if r not in old.remediations]
    out.removed_remediations = [r for r in old.remediations if r not in new.remediations]
    for fault in new.faults:
        for rem in new.remediations:
            key = (fault, rem)
            if key not in old.cells or key not in new.cells:
                continue
            out.compared += 1
            before, after = old.cells[key], new.cells[key]
            if before == after:
                continue
            change = Change(fault, rem, before, after, new.reasons.get(key, ""))
            (out.regressions if before in FIXED else out.changes).append(change)
        if fault in old.faults and old.fixes(fault) and not new.fixes(fault):
            out.lost_last_fix[fault] = old.fixes(fault)
    return out


def _side(o: Outcomes) -> str:
    return (f"lab {o.lab}, backend {o.backend}, {len(o.faults)} faults × "
            f"{len(o.remediations)} remediations, {len(o.cells)} cells")


def format_comparison(cmp: Comparison, *, old_name: str = "baseline",
                      new_name: str = "this run") -> str:
    """The comparison for people (and CI logs): stable, ids and outcomes only."""
    lines = [f"{old_name}: {_side(cmp.old)}", f"{new_name}: {_side(cmp.new)}"]
    if cmp.old.lab != cmp.new.lab:
        lines.append(f"note: different labs ({cmp.old.lab} vs {cmp.new.lab})")
    if cmp.old.backend != cmp.new.backend:
        lines.append(f"note: different backends ({cmp.old.backend} vs {cmp.new.backend})")

    def block(title: str, items: list[str]) -> None:
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {item}" for item in items)

    block("REGRESSIONS: cells that were fixed and are not any more",
          [f"{c.cell}: {c.before} → {c.after}" + (f" ({c.reason})" if c.reason else "")
           for c in cmp.regressions])
    block("REGRESSIONS: faults that lost their last fix",
          [f"{f}: was fixed by {', '.join(fixes)}; now nothing fixes it"
           for f, fixes in cmp.lost_last_fix.items()])
    block("other changes", [f"{c.cell}: {c.before} → {c.after}" for c in cmp.changes])
    block("new faults", cmp.new_faults)
    block("new remediations", cmp.new_remediations)
    block("faults not in " + new_name, cmp.removed_faults)
    block("remediations not in " + new_name, cmp.removed_remediations)
    verdict = (f"{len(cmp.regressions)} regressed cell(s), {len(cmp.lost_last_fix)} fault(s) "
               "without a fix any more" if cmp.regressed else "no regression")
    unchanged = cmp.compared - len(cmp.regressions) - len(cmp.changes)
    lines.append(f"{verdict}; {cmp.compared} cells compared, {unchanged} unchanged")
    return "\n".join(lines) + "\n"
