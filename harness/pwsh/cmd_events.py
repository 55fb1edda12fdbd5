"""Get-WinEvent and Get-EventLog: the node's event log (System and Application), newest first,
as the Event Viewer entries a student reads (1057, 1058, 36870, 7036, ...)."""

from __future__ import annotations

import fnmatch
from typing import Any

from .commands import P, as_int, as_list, as_str, cmdlet
from .objects import PsObject


class EventObject(PsObject):
    type_name = "System.Diagnostics.Eventing.Reader.EventLogRecord"

    def __init__(self, event: Any) -> None:
        self.event = event

    def props(self) -> dict[str, Any]:
        e = self.event
        return {"TimeCreated": e.time, "Id": e.event_id, "InstanceId": e.event_id,
                "EventID": e.event_id, "LevelDisplayName": e.level, "EntryType": e.level,
                "ProviderName": e.source, "Source": e.source, "LogName": e.log,
                "Message": e.message}

    def __str__(self) -> str:
        e = self.event
        return f"{e.time:<20} {e.event_id:>6} {e.level:<12} {e.source}: {e.message}"


def _events(ctx: Any, logs: list[str], sources: list[str], ids: list[int],
            levels: list[str], newest: int | None) -> list[EventObject]:
    found = []
    for event in reversed(ctx.node.eventlog.entries):
        if logs and not any(fnmatch.fnmatchcase(event.log.lower(), g.lower()) for g in logs):
            continue
        if sources and not any(fnmatch.fnmatchcase(event.source.lower(), s.lower())
                               for s in sources):
            continue
        if ids and event.event_id not in ids:
            continue
        if levels and event.level.lower() not in levels:
            continue
        found.append(EventObject(event))
        if newest is not None and len(found) >= newest:
            break
    return found


@cmdlet("Get-WinEvent", P("LogName", position=0), P("ProviderName"), P("MaxEvents"),
        P("FilterXPath"), P("FilterHashtable"), P("Oldest", switch=True))
def get_winevent(ctx: Any, args: dict[str, Any]) -> list[Any]:
    for unmodelled in ("FilterXPath", "FilterHashtable"):
        if unmodelled in args:
            raise ctx.not_emulated(f"Get-WinEvent -{unmodelled}",
                                   "use -LogName / -ProviderName / -MaxEvents, or Get-EventLog "
                                   "-InstanceId")
    logs = [as_str(v) for v in as_list(args.get("LogName"))]
    sources = [as_str(v) for v in as_list(args.get("ProviderName"))]
    newest = as_int(args["MaxEvents"], "MaxEvents") if "MaxEvents" in args else None
    found = _events(ctx, logs, sources, [], [], newest)
    if not found:
        raise ctx.fail("No events were found that match the specified selection criteria.",
                       "ObjectNotFound")
    return list(reversed(found)) if args.get("Oldest") else list(found)


@cmdlet("Get-EventLog", P("LogName", position=0), P("InstanceId", position=1), P("Newest"),
        P("Source"), P("EntryType"))
def get_eventlog(ctx: Any, args: dict[str, Any]) -> list[Any]:
    if "LogName" not in args:
        raise ctx.fail("Cannot process command because of one or more missing mandatory "
                       "parameters: LogName.")
    logs = [as_str(v) for v in as_list(args.get("LogName"))]
    sources = [as_str(v) for v in as_list(args.get("Source"))]
    ids = [as_int(v, "InstanceId") for v in as_list(args.get("InstanceId"))]
    levels = [as_str(v).lower() for v in as_list(args.get("EntryType"))]
    newest = as_int(args["Newest"], "Newest") if "Newest" in args else None
    return list(_events(ctx, logs, sources, ids, levels, newest))
