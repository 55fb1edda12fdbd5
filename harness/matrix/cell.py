"""One cell of the matrix: create → baseline → inject → reproduce → remediate → verify → destroy.

Every outcome is computed from what the probe saw on the wire in this cell's own fresh lab:
- lab-error: the baseline was not a clean, usable session, or the fault did not reproduce;
- not-emulated: this backend cannot do what the fault or the script needs (said why);
- fixed / fixed-weakens-security: after the remediation the session is usable with no symptom
  left (the latter when the remediation lowers security, e.g. disabling NLA);
- not-fixed: any symptom remains (a failure, or a warning a user would have to click through).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..lab.base import Lab, NotEmulated
from ..lab.definition import load_lab
from ..lab.factory import LabHandle
from ..probe.profiles import ClientProfile, load_profile
from ..probe.result import ProbeResult
from ..pwsh.errors import NotEmulated as ScriptNotEmulated
from ..pwsh.errors import PwshError
from ..scenario.actions import apply_step
from ..scenario.catalog import Catalog, load_catalog
from ..windows.faults import FaultError
from . import aftermath
from .journal import CellJournal
from .realclient import compare_with_xfreerdp

OUTCOMES = ("fixed", "fixed-weakens-security", "not-fixed", "not-broken", "not-emulated",
            "lab-error")
_catalogs: dict[str, Catalog] = {}


@dataclass(frozen=True)
class CellOptions:
    """Everything a cell needs; plain values so cells can run in worker processes."""

    lab: str
    backend: str = "loopback"
    scenarios: str | None = None
    profile: str | None = None  # the profile that decides; default: the lab's
    code_profiles: tuple[str, ...] | None = None  # default: the lab's
    stage_timeout: float = 2.0
    usable_window: float = 1.5
    with_xfreerdp: bool = False
    journal_dir: str | None = None


@dataclass
class CellResult:
    fault: str
    remediation: str
    outcome: str
    reason: str
    backend: str
    seconds: float
    journal: str | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    symptoms: dict[str, str | None] = field(default_factory=dict)
    xfreerdp: list[dict[str, Any]] = field(default_factory=list)
    collateral: list[str] = field(default_factory=list)  # other services the remediation broke
    weakened: list[str] = field(default_factory=list)  # computed from the nodes' state
    security_disagreement: str | None = None  # the sidecar's claim vs the computed verdict

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class CellStop(Exception):
    """Ends a cell early with an outcome (lab error, not emulated)."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


def _catalog(directory: str | None) -> Catalog:
    key = directory or ""
    if key not in _catalogs:
        _catalogs[key] = load_catalog(Path(directory) if directory else None)
    return _catalogs[key]


def bounded(profile: ClientProfile, stage_timeout: float) -> ClientProfile:
    """The profile with every stage timeout capped: a timeout is classified the same, sooner."""
    stages = ("tcp", "negotiation", "tls", "credssp", "mcs", "client_info", "licensing",
              "capabilities", "finalisation")
    timeouts = {s: min(profile.timeout(s), stage_timeout) for s in stages}
    return profile.with_overrides(timeouts={**profile.timeouts, **timeouts})


def _probe(lab: Lab, profile: ClientProfile, opts: CellOptions) -> ProbeResult:
    return lab.probe(bounded(profile, opts.stage_timeout), usable_window=opts.usable_window,
                     overall_timeout=max(10.0, opts.stage_timeout * 6))


def _changes(lab: Lab, marks: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """What each node's journal and event log gained since `marks`."""
    out: dict[str, Any] = {}
    for role, node in lab.nodes.items():
        j0, e0 = marks.get(role, (0, 0))
        entries = [e.to_dict() for e in node.journal.entries[j0:]]
        events = [_event_dict(e) for e in node.eventlog.entries[e0:]]
        if entries or events:
            out[role] = {"changes": entries, "events": events}
    return out


def _event_dict(event: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    return asdict(event) if is_dataclass(event) else {"event": str(event)}


def _marks(lab: Lab) -> dict[str, tuple[int, int]]:
    return {r: (len(n.journal.entries), len(n.eventlog.entries)) for r, n in lab.nodes.items()}


def run_cell(opts: CellOptions, fault_id: str, remediation_id: str) -> CellResult:
    """Run one cell in a fresh lab and return its outcome; never raises for a lab problem."""
    t0 = time.perf_counter()
    spec = load_lab(opts.lab)
    catalog = _catalog(opts.scenarios)
    fault = catalog.faults[fault_id]
    remediation = catalog.remediations[remediation_id]
    decision = load_profile(opts.profile or spec.profile)
    code_profiles = [load_profile(p) for p in (opts.code_profiles or spec.code_profiles)]
    journal = CellJournal(fault_id, remediation_id, opts.backend, spec.name)
    result = CellResult(fault_id, remediation_id, "lab-error", "", opts.backend, 0.0)
    handle: LabHandle | None = None
    try:
        with journal.stage("create") as st:
            handle = LabHandle(spec, opts.backend)
            lab = handle.__enter__()
            result.backend = lab.backend
            journal.header["backend"] = lab.backend
            st.evidence["workdir"] = str(handle.workdir)
            for requirement in fault.requires:
                why = lab.unsupported(requirement)
                if why:
                    raise CellStop("not-emulated", why)
        _run_stages(lab, opts, fault, remediation, decision, code_profiles, journal, result)
    except CellStop as stop:
        result.outcome, result.reason = stop.outcome, stop.reason
    except (NotEmulated, ScriptNotEmulated) as exc:
        result.outcome, result.reason = "not-emulated", str(exc)
    except Exception as exc:  # a lab problem, recorded with its traceback in the journal
        result.outcome, result.reason = "lab-error", f"{type(exc).__name__}: {exc}"
    finally:
        if handle is not None:
            with journal.stage("destroy"):
                handle.__exit__(None, None, None)
    journal.finish(result.outcome, result.reason)
    result.seconds = time.perf_counter() - t0
    if opts.journal_dir:
        path = Path(opts.journal_dir) / f"{fault_id}__{remediation_id}.json"
        result.journal = str(journal.write(path))
    return result


def _expects_none(fault: Any, profile: str) -> bool:
    """The fault file (or its variant) expects this client to connect untroubled."""
    symptom = fault.expected.get(profile, {}).get("symptom")
    return symptom == "none" or (isinstance(symptom, list) and "none" in symptom)


def _run_stages(lab: Lab, opts: CellOptions, fault: Any, remediation: Any,
                decision: ClientProfile, code_profiles: list[ClientProfile],
                journal: CellJournal, result: CellResult) -> None:
    with journal.stage("baseline") as st:
        base = _probe(lab, decision, opts)
        st.evidence["probe"] = base.as_dict()
        if base.symptom is not None:
            st.status = "failed"
            raise CellStop("lab-error", f"baseline not clean: {base.symptom}")
        states = [aftermath.capture(lab)]  # baseline, then after the fault, after the fix

    with journal.stage("inject") as st:
        marks = _marks(lab)
        try:
            st.evidence["steps"] = [apply_step(lab, step) for step in fault.inject]
        except FaultError as exc:
            raise CellStop("lab-error", f"injection failed: {exc}") from exc
        lab.sync()
        st.evidence["effects"] = _changes(lab, marks)
        states.append(aftermath.capture(lab))

    user_profile = load_profile(lab.client_program) if lab.client_program else decision
    with journal.stage("reproduce") as st:
        seen = _probe(lab, user_profile, opts)
        st.evidence["probe"] = seen.as_dict()
        result.symptoms[user_profile.name] = seen.symptom
        result.codes[user_profile.name] = seen.codes[user_profile.name]
        for profile in code_profiles:
            if profile.name == user_profile.name:
                continue
            other = _probe(lab, profile, opts)
            st.evidence.setdefault("profiles", {})[profile.name] = other.as_dict()
            result.symptoms[profile.name] = other.symptom
            result.codes[profile.name] = other.codes[profile.name]
        if opts.with_xfreerdp:
            result.xfreerdp.append(compare_with_xfreerdp(lab, "reproduce", result))
        if seen.symptom is None:
            if _expects_none(fault, user_profile.name):
                raise CellStop("not-broken", f"the fault leaves {user_profile.name} a usable "
                               "session, as its file expects: nothing to fix")
            st.status = "failed"
            raise CellStop("lab-error", f"the fault did not reproduce with {user_profile.name}")

    with journal.stage("remediate") as st:
        marks = _marks(lab)
        try:
            outcome = lab.run_remediation(remediation)
            st.evidence["script"] = outcome.to_json()
            if hasattr(lab, "verify"):  # a real VM: testinfra checks of the state it left
                st.evidence["checks"] = lab.verify(remediation)
        except ScriptNotEmulated:
            raise
        except PwshError as exc:
            st.status = "failed"
            st.evidence["script_error"] = str(exc)
            raise CellStop("not-fixed", f"the script failed: {exc}") from exc
        finally:
            st.evidence["effects"] = _changes(lab, marks)
        lab.sync()

    with journal.stage("verify") as st:
        # the remediation may have the user run another client (the current mstsc)
        user_profile = load_profile(lab.client_program) if lab.client_program else decision
        after = _probe(lab, user_profile, opts)
        st.evidence["probe"] = after.as_dict()
        if opts.with_xfreerdp:
            result.xfreerdp.append(compare_with_xfreerdp(lab, "verify", result))
        verdict = aftermath.assess(*states, aftermath.capture(lab),
                                   sidecar_weakens=remediation.security_impact == "weakens")
        st.evidence["aftermath"] = verdict.__dict__
        result.collateral, result.weakened = verdict.collateral, verdict.weakened
        result.security_disagreement = verdict.disagreement
        if after.symptom is None:
            result.outcome = "fixed-weakens-security" if verdict.weakened else "fixed"
            result.reason = "usable session, no symptom left" + (
                f" (weakens: {'; '.join(verdict.weakened)})" if verdict.weakened else "")
        else:
            result.outcome = "not-fixed"
            result.reason = f"still {after.symptom}"
        if verdict.collateral:
            result.reason += f"; collateral: {'; '.join(verdict.collateral)}"
