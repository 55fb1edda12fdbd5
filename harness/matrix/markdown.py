"""The matrix as a Markdown report people read: the table, then per fault its title, the claim
with its sources, the code each client showed (with provenance), what fixes it and why every
other remediation did not; then the remediations with their sources."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .codes import claimed_text, code_text, user_profile
from .console import SYMBOL

LEGEND = ("✔ fixed · ⚠ fixed but weakens security · ✘ not fixed · ○ not broken (nothing to "
          "fix) · – not emulated · ! lab error")


def _esc(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: dict[str, Any]) -> str:
    lab = doc["lab"]
    rems = doc["remediations"]
    grid = {(c["fault"], c["remediation"]): c for c in doc["cells"]}
    counts = Counter(c["outcome"] for c in doc["cells"])
    backends = ", ".join(sorted({c["backend"] for c in doc["cells"]})) or "-"
    out = [
        f"# Validated fix matrix: lab `{lab['name']}`",
        "",
        f"{lab.get('description', '')}. Decision profile: `{lab['profile']}`; backend: "
        f"{backends}. Every cell was computed by running it (each cell's journal is named "
        "below its reason in the JSON).",
        "",
        f"{len(doc['faults'])} faults × {len(rems)} remediations = {len(doc['cells'])} cells: "
        + ", ".join(f"{n} {o}" for o, n in counts.most_common()) + ".",
        "",
        f"Legend: {LEGEND}. Columns are numbered; see [Remediations](#remediations).",
        "",
        "| fault | " + " | ".join(str(i) for i in range(1, len(rems) + 1)) + " |",
        "|---" + "|:-:" * len(rems) + "|",
    ]
    for fault in doc["faults"]:
        row = [SYMBOL[grid[(fault["id"], r["id"])]["outcome"]][0]
               if (fault["id"], r["id"]) in grid else " " for r in rems]
        out.append(f"| [`{fault['id']}`](#{fault['id']}) | " + " | ".join(row) + " |")
    out += ["", "## Faults: the claim, the codes measured, what fixes it", ""]
    profiles = list(lab.get("code_profiles", []))
    for fault in doc["faults"]:
        fid = fault["id"]
        claimed = fault.get("claimed", {})
        out += [f"### {fid}", "", f"**{_esc(fault['title'])}**", ""]
        out.append(f"- Claim: {claimed.get('text', '')} (code {claimed_text(claimed)})")
        for source in claimed.get("sources", []):
            out.append(f"  - source: {source}")
        out += ["", "| client | code measured | symptom | confidence | source |",
                "|---|---|---|---|---|"]
        codes = fault.get("codes") or {}
        symptoms = fault.get("symptoms") or {}
        user = user_profile(fault)
        for profile in dict.fromkeys([*([user] if user else []), *profiles]):
            c = codes.get(profile)
            who = f"{profile} (user's client)" if profile == user else profile
            out.append(f"| {who} | {_esc(code_text(c, full=True))} | "
                       f"`{symptoms.get(profile) or '-'}` | {(c or {}).get('confidence', '?')} | "
                       f"{_esc((c or {}).get('source', ''))} |")
        if not codes:
            out.append("| (no cell reproduced the fault) | | | | |")
        fixed = [r["id"] for r in rems if grid.get((fid, r["id"]), {}).get("outcome") == "fixed"]
        weak = [r["id"] for r in rems
                if grid.get((fid, r["id"]), {}).get("outcome") == "fixed-weakens-security"]
        out.append("")
        out.append("- Fixed by: " + (", ".join(f"`{r}`" for r in fixed) or "nothing"))
        if weak:
            out.append("- Fixed, but weakening security, by: "
                       + ", ".join(f"`{r}`" for r in weak))
        keys = ("collateral", "weakened", "security_disagreement")
        marked = [grid[(fid, r["id"])] for r in rems if (fid, r["id"]) in grid
                  and any(grid[(fid, r["id"])].get(k) for k in keys)]
        if marked:
            out.append("- Collateral damage and weakened security (computed):")
            for c in marked:
                parts = [f"weakens: {'; '.join(c['weakened'])}"] if c.get("weakened") else []
                if c.get("collateral"):
                    parts.append(f"collateral: {'; '.join(c['collateral'])}")
                if c.get("security_disagreement"):
                    parts.append(c["security_disagreement"])
                out.append(f"  - `{c['remediation']}` ({c['outcome']}): {_esc(' | '.join(parts))}")
        others = [grid[(fid, r["id"])] for r in rems if (fid, r["id"]) in grid
                  and grid[(fid, r["id"])]["outcome"] not in ("fixed", "fixed-weakens-security")]
        if others:
            out.append("- Not fixed by:")
            for c in others:
                out.append(f"  - `{c['remediation']}`: {c['outcome']}: {_esc(c['reason'])}")
        out.append("")
    out += ["## Remediations", ""]
    for i, r in enumerate(rems, 1):
        weak = " **weakens security**" if r.get("weakens_security") else ""
        out.append(f"{i}. `{r['id']}`: {_esc(r['title'])} (runs on {r['node']}){weak}")
        for source in r.get("source", []):
            out.append(f"   - source: {source}")
    mism = doc.get("expectation_mismatches", [])
    if mism:
        out += ["", "## Where the run differs from the fault file's expectation", ""]
        out += [f"- `{m['fault']}` with {m['profile']}: expected {m['expected']} "
                f"({m['provenance']}), saw {m['actual']}" for m in mism]
    t = doc.get("timing", {})
    out += ["", f"{t.get('cells')} cells in {t.get('total_seconds')} s (median "
            f"{t.get('median_cell_seconds')} s per cell, {t.get('jobs')} workers).", ""]
    return "\n".join(out)
