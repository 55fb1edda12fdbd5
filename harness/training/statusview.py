"""`status`: what a lab is, from its record and (when up) its supervisor. Never the password,
never a hidden fault's name."""

from __future__ import annotations

from typing import Any

from . import control
from .connect import connect_info, endpoints
from .errors import LabFailed, TrainingError
from .labdir import LabDir
from .lifecycle import supervisor_alive


def fault_label(record: dict[str, Any]) -> str | None:
    fault = record.get("fault")
    if not fault:
        return None
    if fault.get("hidden"):
        return "hidden"
    return str(fault["id"])


def commands_since_break(labdir: LabDir) -> list[dict[str, Any]]:
    entries = labdir.commands()
    start = max((i for i, e in enumerate(entries) if e.get("kind") == "break"), default=-1)
    return [e for e in entries[start + 1:] if e.get("kind") in ("exec", "shell", "check",
                                                                   "reset")]


def lab_status(labdir: LabDir) -> dict[str, Any]:
    record = labdir.read()
    alive = supervisor_alive(record)
    state = record.get("state", "unknown")
    if alive and state == "running":
        try:
            state = control.call(labdir.socket_path, "status", timeout=10.0)["state"]
        except (TrainingError, LabFailed):
            state = "unresponsive"
    elif not alive and state in ("running", "starting"):
        state = "dead (supervisor gone; `rdplab down` removes what is left)"
    up = "publish_bound" in record and "names" in record
    return {
        "name": record["name"], "backend": record["backend"], "state": state,
        "fault": fault_label(record),
        "endpoints": endpoints(record) if up else {"gateway": None, "host": None},
        "user": record.get("user"), "password_file": str(labdir.password_file),
        "connect": connect_info(labdir, record) if up else None,
        "commands": [{k: v for k, v in e.items() if k in ("time", "kind", "node", "file", "line",
                                                         "ok", "verdict")}
                     for e in commands_since_break(labdir)],
    }
