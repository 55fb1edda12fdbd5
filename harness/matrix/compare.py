"""Comparing two runs' journals cell by cell, without what differs between any two runs.

Two labs never share keys, certificate serials, ports, temporary folders or clocks; the
`lifecycle` header and the snapshot a cell started from differ by design. Everything else (the
outcome, reason, codes, every stage's status, the probe traces, the injected steps, every model
change, the script output, the checks) must be equal. Event-log entries written by the emulated
servers' own threads (the RD Gateway's connection log, Schannel's and TermService's errors) are
compared as one set per cell: their order against the probe's return, and hence the stage they
land in, is a race in every lifecycle. (The gateway's "disconnected" entry, written when its
tunnel thread notices the close, is in that set too: the lab waits for it, bounded, before a
probe returns, `Lab.settle`.)
"""

from __future__ import annotations

import re
from typing import Any

_VOLATILE_KEYS = frozenset({
    "started", "finished", "seconds", "time", "taken_at", "restores", "restore_seconds",
    "workdir", "traceback", "seq", "lifecycle", "snapshot", "journal", "sha256", "thumbprint",
    "serial", "key_name", "not_before", "not_after", "tunnel_id", "channel_id", "server_time",
    "skew_seconds", "address", "peer", "update_bytes", "kept", "duration", "wait_seconds",
})
_PATTERNS = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"), "<time>"),
    (re.compile(r"\b[0-9A-Fa-f]{16,}(_[0-9a-f-]{36})?\b"), "<hex>"),
    (re.compile(r"/tmp/[^\s'\"]+"), "<tmp>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\b\d+\.\d{2,}\b"), "<number>"),
)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        for pattern, placeholder in _PATTERNS:
            value = pattern.sub(placeholder, value)
        return value
    if isinstance(value, float):
        return "<number>"
    return value


def comparable(journal: dict[str, Any]) -> dict[str, Any]:
    """A cell journal without what differs between any two runs (see the module docstring)."""
    events: list[str] = []
    stages = []
    for stage in journal.get("stages", []):
        stage = dict(stage)
        effects = {}
        for role, change in (stage.pop("effects", None) or {}).items():
            events += [f"{role}:{e.get('event_id')}" for e in change.get("events", [])]
            if change.get("changes"):
                effects[role] = change["changes"]
        if effects:
            stage["effects"] = effects
        if stage.get("stage") == "destroy":
            stage = {"stage": "destroy", "status": stage.get("status")}
        stages.append(stage)
    return _scrub({**{k: v for k, v in journal.items() if k != "stages"},
                   "stages": stages, "server_events": sorted(set(events))})


def differences(left: dict[str, Any], right: dict[str, Any], path: str = "") -> list[str]:
    """Where two comparable() journals differ, as `path: left != right` lines."""
    if isinstance(left, dict) and isinstance(right, dict):
        out = []
        for key in sorted(set(left) | set(right), key=str):
            if key not in left or key not in right:
                out.append(f"{path}.{key}: only in {'right' if key not in left else 'left'}")
            else:
                out += differences(left[key], right[key], f"{path}.{key}")
        return out
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return [f"{path}: {len(left)} items != {len(right)} items"]
        return [d for i, (a, b) in enumerate(zip(left, right, strict=True))
                for d in differences(a, b, f"{path}[{i}]")]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]
