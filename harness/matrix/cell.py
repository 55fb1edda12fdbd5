"""One cell of the matrix: create → baseline → inject → reproduce → remediate → verify → destroy.

Two lifecycles give the same outcomes and the same journal content:
- fresh: every cell builds its own lab and runs every stage (`run_cell`);
- snapshot (the default of `run_fault`): per fault, one lab is built, the baseline proved, the
  fault injected and reproduced with every code profile, once; then the lab is snapshotted
  (`LabBackend.snapshot`) and every remediation cell starts from that snapshot (`restore`),
  remediates and verifies. Each cell's journal holds the shared stages and says which snapshot
  it started from (header `lifecycle`, `snapshot`).

Every outcome is computed from what the probe saw on the wire:
- lab-error: the baseline was not a clean, usable session, or the fault did not reproduce;
- not-emulated: this backend cannot do what the fault or the script needs (said why);
- not-broken: the fault leaves the user's client a usable session, as its file expects (a
  variant below the level that breaks anything): nothing to fix;
- fixed / fixed-weakens-security: after the remediation the session is usable with no symptom
  left (the latter when the nodes' state is weaker than after the fault, computed by
  aftermath.py: NLA off, a vulnerable CredSSP policy, a firewall off...);
- not-fixed: any symptom remains (a failure, or a warning a user would have to click through).
Each cell also carries what the remediation broke besides RDP (collateral) and where the
sidecar's security_impact disagrees with the computed verdict.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..capture.session import probe_capture
from ..errors import FaultError, NotEmulated, PwshError, ScriptNotEmulated
from ..lab.contract import LabBackend, LabSnapshot
from ..lab.definition import LabSpec, load_lab
from ..lab.factory import LabHandle
from ..probe.profiles import ClientProfile, bounded, load_profile
from ..probe.result import ProbeResult
from ..pwsh.remediation import Remediation
from ..scenario.actions import apply_step
from ..scenario.catalog import Catalog, Fault, load_catalog
from . import aftermath
from .journal import CellJournal, StageEntry
from .realclient import compare_with_xfreerdp

OUTCOMES = ("fixed", "fixed-weakens-security", "not-fixed", "not-broken", "not-emulated",
            "lab-error")
LIFECYCLES = ("snapshot", "fresh")
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
    # Each wait for the server adapts to how fast it answered on that connection (10x its
    # slowest answer, within [adaptive_floor, the stage's limit]); None: the limits only.
    adaptive_floor: float | None = 0.5
    with_xfreerdp: bool = False
    journal_dir: str | None = None
    pcap: bool = False  # a pcap and TLS key log of every probe connection, beside the journals
    lifecycle: str = "snapshot"  # or "fresh": how run_fault runs a fault's cells


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
        self.xfreerdp: list[dict[str, Any]] = []  # real xfreerdp runs made before the stop


def _catalog(directory: str | None) -> Catalog:
    key = directory or ""
    if key not in _catalogs:
        _catalogs[key] = load_catalog(Path(directory) if directory else None)
    return _catalogs[key]


def contention(loadavg: str | None = None, cores: int | None = None) -> float:
    """How many runnable tasks share each core now (at least 1): the 1-minute load average or
    the instantaneous run queue less the caller, whichever is higher (`/proc/loadavg`, or the
    text given); 1 where unknown."""
    cores = cores or os.cpu_count() or 1
    try:
        fields = (loadavg if loadavg is not None else Path("/proc/loadavg").read_text()).split()
        load = max(float(fields[0]), float(fields[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return 1.0
    return max(1.0, load / cores)


def _probe(lab: LabBackend, profile: ClientProfile, opts: CellOptions) -> ProbeResult:
    folder = str(Path(opts.journal_dir) / "pcaps") if opts.pcap and opts.journal_dir else None
    # An oversubscribed machine delays every answer by its run queue: past two runnable tasks
    # per core (which add milliseconds) the floor of the adaptive waits grows with it, up to
    # the stage limits, so a loaded CI runner waits as long as it must.
    floor = (None if opts.adaptive_floor is None
             else opts.adaptive_floor * max(1.0, contention() / 2))
    with probe_capture(folder, profile.name) as capture:
        result = lab.probe(bounded(profile, opts.stage_timeout), usable_window=opts.usable_window,
                           adaptive_floor=floor, overall_timeout=max(10.0, opts.stage_timeout * 6))
    if capture:
        result.capture = capture
    return result


def _changes(lab: LabBackend, marks: dict[str, tuple[int, int]]) -> dict[str, Any]:
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


def _marks(lab: LabBackend) -> dict[str, tuple[int, int]]:
    return {r: (len(n.journal.entries), len(n.eventlog.entries)) for r, n in lab.nodes.items()}


@dataclass
class Reproduced:
    """What the shared stages of a fault left for its remediation cells."""

    user_profile: ClientProfile
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    symptoms: dict[str, str | None] = field(default_factory=dict)
    xfreerdp: list[dict[str, Any]] = field(default_factory=list)
    states: list[aftermath.Capture] = field(default_factory=list)  # baseline, after the fault


@dataclass
class _Context:
    """One fault's cells: options, catalog entries, profiles."""

    opts: CellOptions
    spec: LabSpec
    fault: Fault
    decision: ClientProfile
    code_profiles: list[ClientProfile]

    @classmethod
    def load(cls, opts: CellOptions, fault_id: str) -> _Context:
        spec = load_lab(opts.lab)
        return cls(opts, spec, _catalog(opts.scenarios).faults[fault_id],
                   load_profile(opts.profile or spec.profile),
                   [load_profile(p) for p in (opts.code_profiles or spec.code_profiles)])

    def remediation(self, remediation_id: str) -> Remediation:
        return _catalog(self.opts.scenarios).remediations[remediation_id]

    def journal(self, remediation_id: str, lifecycle: str) -> CellJournal:
        journal = CellJournal(self.fault.id, remediation_id, self.opts.backend, self.spec.name)
        journal.header["lifecycle"] = lifecycle
        journal.header["snapshot"] = None
        return journal


def _stop(exc: BaseException) -> tuple[str, str]:
    """The outcome and reason a stage's exception gives the cell."""
    if isinstance(exc, CellStop):
        return exc.outcome, exc.reason
    if isinstance(exc, NotEmulated):
        return "not-emulated", str(exc)
    return "lab-error", f"{type(exc).__name__}: {exc}"


def _create(ctx: _Context, journal: CellJournal, result: CellResult,
            opened: list[LabHandle]) -> LabHandle:
    """The create stage: a lab of the chosen backend, started (appended to `opened`, which the
    caller destroys), and the fault's requirements met (else CellStop)."""
    with journal.stage("create") as st:
        handle = LabHandle(ctx.spec, ctx.opts.backend)
        lab = handle.__enter__()
        opened.append(handle)
        result.backend = lab.backend
        journal.header["backend"] = lab.backend
        st.evidence["workdir"] = str(handle.workdir)
        for requirement in ctx.fault.requires:
            why = lab.unsupported(requirement)
            if why:
                raise CellStop("not-emulated", why)
    return handle


def _destroy(handle: LabHandle, journal: CellJournal) -> None:
    with journal.stage("destroy"):
        handle.__exit__(None, None, None)


def _finish(ctx: _Context, journal: CellJournal, result: CellResult, t0: float,
            shared_seconds: float = 0.0) -> CellResult:
    journal.finish(result.outcome, result.reason)
    result.seconds = time.perf_counter() - t0 + shared_seconds
    if ctx.opts.journal_dir:
        path = Path(ctx.opts.journal_dir) / f"{result.fault}__{result.remediation}.json"
        result.journal = str(journal.write(path))
    return result


def run_cell(opts: CellOptions, fault_id: str, remediation_id: str) -> CellResult:
    """Run one cell in a fresh lab and return its outcome; never raises for a lab problem."""
    t0 = time.perf_counter()
    ctx = _Context.load(opts, fault_id)
    remediation = ctx.remediation(remediation_id)
    journal = ctx.journal(remediation_id, "fresh")
    result = CellResult(fault_id, remediation_id, "lab-error", "", opts.backend, 0.0)
    opened: list[LabHandle] = []
    try:
        handle = _create(ctx, journal, result, opened)
        seen = _reproduce(handle.lab, ctx, journal)
        _adopt(result, seen)
        _remediate_and_verify(handle.lab, ctx, remediation, seen, journal, result)
    except Exception as exc:  # a lab problem, recorded with its traceback in the journal
        result.outcome, result.reason = _stop(exc)
        if isinstance(exc, CellStop) and exc.xfreerdp:
            result.xfreerdp = [{**x, "remediation": remediation_id} for x in exc.xfreerdp]
    finally:
        for handle in opened:
            _destroy(handle, journal)
    return _finish(ctx, journal, result, t0)


def run_fault(opts: CellOptions, fault_id: str, remediation_ids: list[str] | tuple[str, ...]
              ) -> list[CellResult]:
    """Every given remediation cell of one fault, in `opts.lifecycle`; never raises for a lab
    problem. Snapshot: the shared stages run once and each cell starts from their snapshot."""
    if opts.lifecycle == "fresh":
        return [run_cell(opts, fault_id, r) for r in remediation_ids]
    if opts.lifecycle != "snapshot":
        raise ValueError(f"unknown lifecycle {opts.lifecycle!r}; use {', '.join(LIFECYCLES)}")
    t0 = time.perf_counter()
    ctx = _Context.load(opts, fault_id)
    shared = ctx.journal(None, "snapshot")  # type: ignore[arg-type]
    probe = CellResult(fault_id, "", "lab-error", "", opts.backend, 0.0)
    opened: list[LabHandle] = []
    handle: LabHandle | None = None
    results: list[CellResult] = []
    try:
        try:
            handle = _create(ctx, shared, probe, opened)
            seen = _reproduce(handle.lab, ctx, shared)
            snap = handle.lab.snapshot(f"{ctx.spec.name}/{fault_id}@reproduce")
        except Exception as exc:  # the shared stages stopped: every cell ends the same way
            outcome, reason = _stop(exc)
            handle = None
            while opened:
                _destroy(opened.pop(), shared)
            per_cell = (time.perf_counter() - t0) / max(1, len(remediation_ids))
            runs = exc.xfreerdp if isinstance(exc, CellStop) else []
            for remediation_id in remediation_ids:
                journal = _copy_journal(shared, ctx, remediation_id)
                result = CellResult(fault_id, remediation_id, outcome, reason, probe.backend, 0.0)
                result.xfreerdp = [{**x, "remediation": remediation_id} for x in runs]
                results.append(_finish(ctx, journal, result, time.perf_counter(), per_cell))
            return results
        per_cell = (time.perf_counter() - t0) / max(1, len(remediation_ids))
        for i, remediation_id in enumerate(remediation_ids):
            last = i == len(remediation_ids) - 1
            results.append(_snapshot_cell(handle, ctx, remediation_id, shared, snap, seen,
                                          first=i == 0, last=last, shared_seconds=per_cell))
            if last:
                opened.clear()  # destroyed in the last cell's journal
    finally:
        for left in opened:  # interrupted between cells
            left.__exit__(None, None, None)
    return results


def _snapshot_cell(handle: LabHandle, ctx: _Context, remediation_id: str, shared: CellJournal,
                   snap: LabSnapshot, seen: Reproduced, *, first: bool, last: bool,
                   shared_seconds: float) -> CellResult:
    """One remediation cell on the fault's snapshot (the first runs on the lab as it is, which
    is the snapshot's state)."""
    t0 = time.perf_counter()
    lab = handle.lab
    journal = _copy_journal(shared, ctx, remediation_id)
    result = CellResult(ctx.fault.id, remediation_id, "lab-error", "", lab.backend, 0.0)
    _adopt(result, seen)
    try:
        if not first:
            started = time.perf_counter()
            lab.restore(snap)
            journal.header["restore_seconds"] = round(time.perf_counter() - started, 4)
        journal.header["snapshot"] = snap.describe()
        _remediate_and_verify(lab, ctx, ctx.remediation(remediation_id), seen, journal, result)
    except Exception as exc:
        result.outcome, result.reason = _stop(exc)
    finally:
        if last:
            _destroy(handle, journal)
        else:
            with journal.stage("destroy") as st:
                st.evidence["kept"] = "the lab goes back to the snapshot for the next cell"
    return _finish(ctx, journal, result, t0, shared_seconds)


def _copy_journal(shared: CellJournal, ctx: _Context, remediation_id: str) -> CellJournal:
    journal = ctx.journal(remediation_id, "snapshot")
    journal.header.update({k: v for k, v in shared.header.items()
                           if k not in ("remediation", "started")})
    journal.header["remediation"] = remediation_id
    journal.stages = [StageEntry(e.stage, e.started, e.status, e.seconds, dict(e.evidence))
                      for e in shared.stages]
    return journal


def _adopt(result: CellResult, seen: Reproduced) -> None:
    result.codes = dict(seen.codes)
    result.symptoms = dict(seen.symptoms)
    result.xfreerdp = [{**x, "remediation": result.remediation} for x in seen.xfreerdp]


def _reproduce(lab: LabBackend, ctx: _Context, journal: CellJournal) -> Reproduced:
    """baseline → inject → reproduce; CellStop when the baseline is not clean or the fault does
    not show."""
    opts = ctx.opts
    with journal.stage("baseline") as st:
        base = _probe(lab, ctx.decision, opts)
        st.evidence["probe"] = base.as_dict()
        if base.symptom is not None:
            st.status = "failed"
            raise CellStop("lab-error", f"baseline not clean: {base.symptom}")
    states = [aftermath.capture(lab)]

    with journal.stage("inject") as st:
        marks = _marks(lab)
        lines = []
        try:
            for step in ctx.fault.inject:
                lines.append(apply_step(lab, step).line)
        except FaultError as exc:
            raise CellStop("lab-error", f"injection failed: {exc}") from exc
        finally:
            st.evidence["steps"] = lines
        lab.sync()
        st.evidence["effects"] = _changes(lab, marks)
    states.append(aftermath.capture(lab))

    user_profile = _user_profile(lab, ctx.decision)
    seen = Reproduced(user_profile, states=states)
    with journal.stage("reproduce") as st:
        first = _probe(lab, user_profile, opts)
        st.evidence["probe"] = first.as_dict()
        seen.symptoms[user_profile.name] = first.symptom
        seen.codes[user_profile.name] = first.codes[user_profile.name]
        for profile in ctx.code_profiles:
            if profile.name == user_profile.name:
                continue
            other = _probe(lab, profile, opts)
            st.evidence.setdefault("profiles", {})[profile.name] = other.as_dict()
            seen.symptoms[profile.name] = other.symptom
            seen.codes[profile.name] = other.codes[profile.name]
        if opts.with_xfreerdp:
            seen.xfreerdp.append(compare_with_xfreerdp(lab, "reproduce", ctx.fault.id, ""))
        if first.symptom is None:
            if _expects_none(ctx.fault, user_profile.name):
                stop = CellStop("not-broken", f"the fault leaves {user_profile.name} a usable "
                                "session, as its file expects: nothing to fix")
            else:
                st.status = "failed"
                stop = CellStop("lab-error",
                                f"the fault did not reproduce with {user_profile.name}")
            stop.xfreerdp = seen.xfreerdp  # real xfreerdp's run counts with the cells it ends
            raise stop
    return seen


def _expects_none(fault: Fault, profile: str) -> bool:
    """The fault file (or its variant) expects this client to connect untroubled."""
    symptom = fault.expected.get(profile, {}).get("symptom")
    return symptom == "none" or (isinstance(symptom, list) and "none" in symptom)


def _user_profile(lab: LabBackend, decision: ClientProfile) -> ClientProfile:
    """The client program the user runs now (the client machine's state: a fault may have
    changed it, a remediation may change it back), else the profile that decides."""
    return load_profile(lab.client_program) if lab.client_program else decision


def _remediate_and_verify(lab: LabBackend, ctx: _Context, remediation: Remediation,
                          seen: Reproduced, journal: CellJournal, result: CellResult) -> None:
    opts = ctx.opts
    with journal.stage("remediate") as st:
        marks = _marks(lab)
        try:
            outcome = lab.run_remediation(remediation)
            st.evidence["script"] = outcome.to_json()
            checks = lab.verify_state(remediation)  # a real VM: the state the script left
            if checks:
                st.evidence["checks"] = checks
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
        after = _probe(lab, _user_profile(lab, ctx.decision), opts)
        st.evidence["probe"] = after.as_dict()
        if opts.with_xfreerdp:
            result.xfreerdp.append(compare_with_xfreerdp(lab, "verify", result.fault,
                                                         result.remediation))
        verdict = aftermath.assess(*seen.states, aftermath.capture(lab),
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
