"""A cell's evidence for people, taken from its journal: the stage trace before and after the
remediation, the script and its output, the model changes, the node events, the codes each
client showed. Bounded in size, so a report of hundreds of cells stays one light file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_TEXT = 400  # characters of one detail value
MAX_SCRIPT = 20_000


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _probe(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    if not probe:
        return None
    failure = probe.get("failure") or {}
    return {
        "ok": probe.get("ok"),
        "profile": probe.get("profile"),
        "symptom": (f"{failure['stage']}/{failure['event']}" if failure else
                    next((f"{w['stage']}/{w['event']}" for w in probe.get("warnings", [])),
                         None)),
        "reason": failure.get("reason") or next((w.get("message") for w in
                                                 probe.get("warnings", [])), None),
        "stages": [{"stage": s["stage"], "outcome": s["outcome"],
                    "ms": round(1000 * float(s.get("seconds", 0.0)), 2),
                    "detail": _short(s.get("detail", {}))} for s in probe.get("stages", [])],
        "codes": probe.get("codes", {}),
    }


def _changes(effects: dict[str, Any] | None) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    changes, events = [], []
    for role, got in (effects or {}).items():
        for c in got.get("changes", []):
            changes.append({"node": role, "component": str(c.get("component", "")),
                            "what": _short(c.get("what", "")),
                            "before": _short(c.get("before")), "after": _short(c.get("after"))})
        for e in got.get("events", []):
            events.append({"node": role, **{k: _short(v) for k, v in e.items()}})
    return changes, events


def _script_output(script: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for result in (script or {}).get("results", []):
        out.append({
            "file": result.get("file"), "node": result.get("node"),
            "commands": [{"line": e.get("line"), "command": _short(e.get("command", "")),
                          "effects": [_short(x) for x in e.get("effects", [])],
                          "error": e.get("error")} for e in result.get("effects", [])],
            "output": [_short(x) for x in result.get("output", [])][:200],
            "errors": [_short(x) for x in result.get("errors", [])][:50],
            "exit_code": result.get("exit_code"),
        })
    return out


def cell_evidence(journal: dict[str, Any]) -> dict[str, Any]:
    stages = {s["stage"]: s for s in journal.get("stages", [])}
    inject_changes, inject_events = _changes(stages.get("inject", {}).get("effects"))
    fix_changes, fix_events = _changes(stages.get("remediate", {}).get("effects"))
    reproduce = stages.get("reproduce", {})
    return {
        "stages": [{"stage": s["stage"], "status": s.get("status"),
                    "ms": round(1000 * float(s.get("seconds", 0.0)), 1),
                    "error": s.get("error")} for s in journal.get("stages", [])],
        "baseline": _probe(stages.get("baseline", {}).get("probe")),
        "before": _probe(reproduce.get("probe")),
        "before_profiles": {name: _probe(p) for name, p in reproduce.get("profiles", {}).items()},
        "after": _probe(stages.get("verify", {}).get("probe")),
        "inject": {"steps": stages.get("inject", {}).get("steps", []),
                   "changes": inject_changes, "events": inject_events},
        "remediate": {"output": _script_output(stages.get("remediate", {}).get("script")),
                      "error": stages.get("remediate", {}).get("script_error"),
                      "changes": fix_changes, "events": fix_events},
        "pcaps": _captures(journal),
    }


def _captures(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """The capture of every probe connection of the cell, labelled by stage and client."""
    out = []
    for stage in journal.get("stages", []):
        probes = [stage.get("probe"), *stage.get("profiles", {}).values()]
        for probe in probes:
            if probe and probe.get("capture"):
                capture = probe["capture"]
                out.append({"pcap": capture["pcap"], "keylog": capture.get("keylog"),
                            "label": f"{stage['stage']}, {probe.get('profile', '?')}"})
    return out


def load_evidence(cell: dict[str, Any]) -> dict[str, Any] | None:
    path = cell.get("journal")
    if not path or not Path(path).is_file():
        return None
    try:
        return cell_evidence(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def script_text(remediation: dict[str, Any]) -> str | None:
    path = remediation.get("script")
    if not path or not Path(path).is_file():
        return None
    return Path(path).read_text(encoding="utf-8-sig", errors="replace")[:MAX_SCRIPT]
