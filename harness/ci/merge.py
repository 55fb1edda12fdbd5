"""`rdplab merge`: shard documents (`rdplab matrix --shard K/N --json PART.json`) joined into the
document a single run gives: the same lab, faults, remediations and cells in the same order.

Every part must come from the same lab and catalog, and together the parts must be shards 1..N
of one plan, each once; anything else is an error naming the file (nothing is written).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .document import DocumentError, load_document


def _ids(doc: dict[str, Any], key: str) -> list[str]:
    return [x["id"] for x in doc.get(key, [])]


def merge_documents(parts: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    if not parts:
        raise DocumentError("merge: no part given")
    first_path, first = parts[0]
    faults, rems = _ids(first, "faults"), _ids(first, "remediations")
    seen_shards: dict[int, Path] = {}
    total = None
    for path, doc in parts:
        if doc.get("lab", {}).get("name") != first["lab"].get("name"):
            raise DocumentError(f"{path}: lab {doc.get('lab', {}).get('name')!r}, but "
                                f"{first_path} is lab {first['lab'].get('name')!r}")
        if _ids(doc, "faults") != faults or _ids(doc, "remediations") != rems:
            raise DocumentError(f"{path}: another catalog than {first_path} (fault or "
                                "remediation ids differ): merge parts of one run only")
        shard = doc.get("shard")
        if shard:
            k, n = int(shard["index"]), int(shard["of"])
            if total is not None and n != total:
                raise DocumentError(f"{path}: shard {k}/{n}, but other parts are out of {total}")
            total = n
            if k in seen_shards:
                raise DocumentError(f"{path}: shard {k}/{n} again (also {seen_shards[k]})")
            seen_shards[k] = path
    if total is not None:
        missing = [str(k) for k in range(1, total + 1) if k not in seen_shards]
        if missing:
            raise DocumentError(f"merge: shard(s) {', '.join(missing)} of {total} missing")

    order = {(f, r): i for i, (f, r) in enumerate((f, r) for f in faults for r in rems)}
    cells: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
    for part_index, (path, doc) in enumerate(parts):
        for cell in doc["cells"]:
            key = (cell["fault"], cell["remediation"])
            if key in cells:
                raise DocumentError(f"{path}: cell {key[0]} × {key[1]} is in two parts")
            if key not in order:
                raise DocumentError(f"{path}: cell {key[0]} × {key[1]} is not in the catalog")
            cells[key] = (cell, part_index)

    merged_faults = []
    for i, fault in enumerate(first["faults"]):
        # The row's codes come from the part holding the fault's first cell that has them, as
        # a single run takes them from its first cell that reproduced.
        owners = sorted((order[k], p) for k, (_, p) in cells.items() if k[0] == fault["id"])
        best = dict(fault)
        for _, part_index in owners:
            candidate = parts[part_index][1]["faults"][i]
            if candidate.get("codes"):
                best = dict(candidate)
                break
        merged_faults.append(best)

    mismatches: dict[tuple[str, str], dict[str, Any]] = {}
    for _, doc in parts:
        for m in doc.get("expectation_mismatches", []):
            mismatches.setdefault((m["fault"], m["profile"]), m)
    fault_order = {f: i for i, f in enumerate(faults)}
    runs = [x for _, doc in parts for x in doc.get("xfreerdp_runs", [])]
    ordered = [c for c, _ in sorted(cells.values(), key=lambda cp: order[(cp[0]["fault"],
                                                                          cp[0]["remediation"])])]
    seconds = [float(c.get("seconds", 0.0)) for c in ordered] or [0.0]
    timings = [doc.get("timing", {}) for _, doc in parts]
    merged = {k: v for k, v in first.items() if k != "shard"}
    merged.update({
        "faults": merged_faults,
        "cells": ordered,
        "expectation_mismatches": sorted(mismatches.values(),
                                         key=lambda m: fault_order.get(m["fault"], 0)),
        "xfreerdp_disagreements": [x for x in runs if x.get("agree") is False],
        "xfreerdp_runs": runs,
        "timing": {"cells": len(ordered),
                   "total_seconds": max(float(t.get("total_seconds", 0.0)) for t in timings),
                   "median_cell_seconds": round(statistics.median(seconds), 4),
                   "max_cell_seconds": round(max(seconds), 4),
                   "jobs": sum(int(t.get("jobs", 1)) for t in timings)},
    })
    return merged


def merge_files(paths: list[Path]) -> dict[str, Any]:
    return merge_documents([(Path(p), load_document(Path(p))) for p in paths])
