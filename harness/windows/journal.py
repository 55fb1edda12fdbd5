"""The action journal of one node: every state change as (what, before, after)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class JournalEntry:
    """One state change; before/after are JSON-able values (None = absent)."""

    seq: int
    time: str
    component: str
    what: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ActionJournal:
    """Append-only list of state changes, shared by all components of a node."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []

    def record(self, component: str, what: str, before: Any, after: Any) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        self.entries.append(JournalEntry(len(self.entries) + 1, now, component, what,
                                         before, after))

    def since(self, mark: int) -> list[JournalEntry]:
        """Entries recorded after `mark` (a previous len(journal))."""
        return self.entries[mark:]

    def __len__(self) -> int:
        return len(self.entries)
