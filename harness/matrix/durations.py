"""What each fault's cells cost last time, so the next run starts the longest work first.

Longest-processing-time-first ordering (as CI test splitters do with recorded durations): a
fault whose cells wait out network timeouts goes into the queue before quick ones, and the run
does not end with one long fault on one worker while the others idle. Kept per lab, backend and
lifecycle in `$XDG_CACHE_HOME/rdplab/durations.json` (else ~/.cache); a missing, unreadable or
damaged file only means the catalog's own hint is used (`Fault.waits`). Never more than
MAX_ENTRIES faults are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

MAX_ENTRIES = 4096
MAX_FILE_BYTES = 1 << 20


class _Cell(Protocol):
    fault: str
    seconds: float


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rdplab" / "durations.json"


def _key(lab: str, backend: str, lifecycle: str, fault: str) -> str:
    return f"{lab}|{backend}|{lifecycle}|{fault}"


def _read(path: Path) -> dict[str, float]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and v >= 0}


def per_cell_seconds(lab: str, backend: str, lifecycle: str,
                     path: Path | None = None) -> dict[str, float]:
    """fault id -> seconds one of its cells took last time (its share of the shared stages
    included), for this lab, backend and lifecycle."""
    prefix = f"{lab}|{backend}|{lifecycle}|"
    return {k[len(prefix):]: v for k, v in _read(path or cache_file()).items()
            if k.startswith(prefix)}


def record(lab: str, backend: str, lifecycle: str, cells: Iterable[_Cell],
           path: Path | None = None) -> None:
    """Remember each fault's mean cell seconds from a finished run (best effort, atomic)."""
    path = path or cache_file()
    totals: dict[str, list[float]] = {}
    for cell in cells:
        totals.setdefault(cell.fault, []).append(cell.seconds)
    if not totals:
        return
    data = _read(path)
    for fault, seconds in totals.items():
        data[_key(lab, backend, lifecycle, fault)] = round(sum(seconds) / len(seconds), 4)
    if len(data) > MAX_ENTRIES:
        data = dict(list(data.items())[-MAX_ENTRIES:])
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".durations-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
