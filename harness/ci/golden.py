"""The pinned matrix: `tests/golden/<lab>-<backend>.json`, the expected outcome of every cell of
a shipped lab on a backend. Stable content only (ids and outcomes, no paths or timings), so a
diff of two golden files is a diff of outcomes. A run that differs fails the suite (and a
collected pytest cell) until someone updates the file deliberately with
`rdplab matrix --update-golden` and commits it with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..lab.definition import LAB_DIR
from .document import Outcomes

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden"
UPDATE_COMMAND = "rdplab matrix --update-golden"


def golden_path(lab: str, backend: str, directory: Path | None = None) -> Path:
    return (directory or GOLDEN_DIR) / f"{lab}-{backend}.json"


def shipped_labs() -> list[str]:
    """The labs the project ships (labs/*.yaml), by name."""
    return sorted(p.stem for p in LAB_DIR.glob("*.yaml"))


def golden_document(doc: dict[str, Any], backend: str) -> dict[str, Any]:
    """The stable part of a matrix document: lab, backend, ids in order, outcome per cell."""
    lab = doc["lab"]["name"] if isinstance(doc["lab"], dict) else doc["lab"]
    faults = [f["id"] for f in doc["faults"]]
    rems = [r["id"] for r in doc["remediations"]]
    cells: dict[str, dict[str, str]] = {f: {} for f in faults}
    for c in doc["cells"]:
        cells.setdefault(c["fault"], {})[c["remediation"]] = c["outcome"]
    return {"lab": lab, "backend": backend,
            "update": f"{UPDATE_COMMAND} (commit the change with the reason)",
            "faults": faults, "remediations": rems, "cells": cells}


def dumps(golden: dict[str, Any]) -> str:
    """One line per fault row, so a git diff of a golden file shows the cells that moved."""
    head = {k: v for k, v in golden.items() if k != "cells"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "cells": {\n'
    rows = [f"  {json.dumps(f)}: {json.dumps(row)}" for f, row in golden["cells"].items()]
    return text + ",\n".join(rows) + "\n }\n}\n"


def write_golden(doc: dict[str, Any], backend: str, directory: Path | None = None) -> Path:
    golden = golden_document(doc, backend)
    path = golden_path(golden["lab"], backend, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(golden))
    return path


def load_golden(lab: str, backend: str, directory: Path | None = None) -> dict[str, Any] | None:
    path = golden_path(lab, backend, directory)
    return json.loads(path.read_text()) if path.exists() else None


def pinned_outcome(golden: dict[str, Any] | None, fault: str, remediation: str) -> str | None:
    if golden is None:
        return None
    return golden.get("cells", {}).get(fault, {}).get(remediation)


def differences(pinned: Outcomes, run: Outcomes) -> list[str]:
    """Every way a run differs from the pinned matrix (cells, and ids on either side)."""
    out = [f"fault {f}: not pinned (new)" for f in run.faults if f not in pinned.faults]
    out += [f"fault {f}: pinned but not run" for f in pinned.faults if f not in run.faults]
    out += [f"remediation {r}: not pinned (new)" for r in run.remediations
            if r not in pinned.remediations]
    out += [f"remediation {r}: pinned but not run" for r in pinned.remediations
            if r not in run.remediations]
    for key, outcome in run.cells.items():
        expected = pinned.cells.get(key)
        if expected is not None and expected != outcome:
            reason = run.reasons.get(key)
            out.append(f"{key[0]} × {key[1]}: pinned {expected}, ran {outcome}"
                       + (f" ({reason})" if reason else ""))
    return out


def explain(path: Path, diffs: list[str]) -> str:
    return (f"the run differs from the pinned matrix {path} in {len(diffs)} place(s):\n  "
            + "\n  ".join(diffs) + f"\nIf the change is deliberate, run `{UPDATE_COMMAND}` "
            "(every shipped lab and backend) and commit the golden files with the reason.")
