"""`check`: the probe as the lab's client, and the verdict a trainer grades by.

exit 0 fixed (a usable session, no symptom, nothing weaker), 1 still broken (the stage, and
what the lab's client shows), 3 fixed but security weakened (naming what). Weaker is the
matrix's computed assessment (harness/matrix/aftermath.py): security properties of the nodes and
of the user's client weaker now than after the break, and not already weaker at the healthy
baseline (the fault's own weakening is not the student's).
"""

from __future__ import annotations

from typing import Any

from ..lab.base import Lab, NotEmulated
from ..matrix.aftermath import Capture, assess, capture
from ..probe.profiles import ClientProfile, load_profile

EXIT_FIXED, EXIT_BROKEN, EXIT_WEAKENED = 0, 1, 3
STAGE_TIMEOUT = 3.0


def describe_codes(profile: str, codes: dict[str, Any]) -> str:
    """What a user of that client sees, in words."""
    if codes.get("result") == "connected":
        return f"{profile}: connects"
    if codes.get("prompt"):
        return f"{profile}: {codes['prompt']}"
    parts = []
    if codes.get("disconnect"):
        parts.append(f"error code {codes['disconnect']}")
    if codes.get("extended"):
        parts.append(f"extended error code {codes['extended']}")
    if codes.get("exit") is not None:
        parts.append(f"exit {codes['exit']} {codes.get('error', '')}".strip())
    if codes.get("message"):
        parts.append(str(codes["message"]))
    return f"{profile}: " + (", ".join(parts) or "fails")


def bounded_profile(profile: ClientProfile) -> ClientProfile:
    stages = ("tcp", "negotiation", "tls", "credssp", "mcs", "client_info", "licensing",
              "capabilities", "finalisation")
    timeouts = {s: min(profile.timeout(s), STAGE_TIMEOUT) for s in stages}
    return profile.with_overrides(timeouts={**profile.timeouts, **timeouts})


def check_lab(lab: Lab, healthy: Capture | None = None, broken: Capture | None = None
              ) -> dict[str, Any]:
    """Probe as the lab's client (its program and machine state) and decide; `healthy` and
    `broken` are the captures at `up` and right after the break."""
    name = lab.client_program or lab.spec.profile
    profile = bounded_profile(load_profile(name))
    try:
        result = lab.probe(profile, usable_window=1.5, overall_timeout=20.0)
    except NotEmulated as exc:
        return {"verdict": "broken", "exit": EXIT_BROKEN, "symptom": None, "stage": None,
                "client_shows": f"not emulated on this backend: {exc.reason}", "weakened": [],
                "profile": name}
    codes = result.codes.get(name, {})
    out: dict[str, Any] = {"profile": name, "symptom": result.symptom,
                           "stage": result.failed_stage,
                           "client_shows": describe_codes(name, codes), "codes": codes,
                           "weakened": []}
    if result.symptom is not None:
        if result.failure is None and result.warnings:
            out["stage"] = result.warnings[0]["stage"]
        out.update(verdict="broken", exit=EXIT_BROKEN)
        return out
    weaker: list[str] = []
    if healthy is not None:
        weaker = assess(healthy, broken or healthy, capture(lab), False).weakened
    out["weakened"] = weaker
    out.update(verdict="weakened" if weaker else "fixed",
               exit=EXIT_WEAKENED if weaker else EXIT_FIXED)
    return out
