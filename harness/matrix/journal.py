"""A cell's journal: every stage with its start, end, status and evidence (Chaos Toolkit style).

Reports are views of journals, never a second source: the matrix JSON points at each journal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CELL_STAGES = ("create", "baseline", "inject", "reproduce", "remediate", "verify", "destroy")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class StageEntry:
    stage: str
    started: str
    status: str = "running"
    seconds: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "started": self.started, "status": self.status,
                "seconds": round(self.seconds, 4), **self.evidence}


class CellJournal:
    """Collects the stages of one cell; `stage()` times one and records failures."""

    def __init__(self, fault: str, remediation: str | None, backend: str, lab: str) -> None:
        self.header = {"fault": fault, "remediation": remediation, "backend": backend,
                       "lab": lab, "started": _now()}
        self.stages: list[StageEntry] = []
        self.outcome: str | None = None
        self.reason: str | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageEntry]:
        assert name in CELL_STAGES, name
        entry = StageEntry(name, _now())
        self.stages.append(entry)
        t0 = time.perf_counter()
        try:
            yield entry
        except BaseException as exc:
            entry.status = "error"
            entry.evidence.setdefault("error", f"{type(exc).__name__}: {exc}")
            entry.evidence.setdefault("traceback", traceback.format_exc(limit=6))
            raise
        finally:
            entry.seconds = time.perf_counter() - t0
            if entry.status == "running":
                entry.status = "ok"

    def finish(self, outcome: str, reason: str) -> None:
        self.outcome, self.reason = outcome, reason

    def as_dict(self) -> dict[str, Any]:
        return {**self.header, "finished": _now(), "outcome": self.outcome,
                "reason": self.reason, "stages": [s.as_dict() for s in self.stages]}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One line, through the C encoder (indent= would use the pure-Python one, 10x slower).
        path.write_text(json.dumps(self.as_dict(), default=str))
        return path
