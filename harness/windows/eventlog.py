"""The node's event log: System and Application entries as Event Viewer shows them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# Event ids the model writes, with the source Windows uses for each.
SOURCES = {
    1056: "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
    1057: "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
    1058: "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
    1006: "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
    36870: "Schannel",
    36871: "Schannel",
    7036: "Service Control Manager",
    6005: "EventLog",
    6006: "EventLog",
    35: "Microsoft-Windows-Time-Service",
    19: "Microsoft-Windows-WindowsUpdateClient",
    43: "Microsoft-Windows-WindowsUpdateClient",
}


@dataclass(frozen=True)
class Event:
    log: str  # System | Application
    event_id: int
    source: str
    level: str  # Information | Warning | Error
    message: str
    time: str  # ISO time on the node's own clock

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventLog:
    """Entries in write order; `clock` gives the node's local time."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self.entries: list[Event] = []

    def write(self, event_id: int, message: str, level: str = "Error", log: str = "System",
              source: str | None = None) -> Event:
        event = Event(log, event_id, source or SOURCES.get(event_id, "rdplab"), level, message,
                      self._clock().isoformat(timespec="seconds"))
        self.entries.append(event)
        return event

    def query(self, event_id: int | None = None, log: str | None = None,
              source: str | None = None) -> list[Event]:
        return [e for e in self.entries
                if (event_id is None or e.event_id == event_id)
                and (log is None or e.log.lower() == log.lower())
                and (source is None or e.source.lower() == source.lower())]

    def ids(self) -> list[int]:
        return [e.event_id for e in self.entries]

    def snapshot(self, last: int = 50) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries[-last:]]
