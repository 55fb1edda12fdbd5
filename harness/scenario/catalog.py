"""The fault and remediation catalog: every file under scenarios/ loaded and checked first.

A bad file stops everything before any cell runs, with the file, line and field named. A user
adds a fault or a remediation by adding a file; no Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..probe.profiles import ProfileError, load_profile
from ..pwsh.remediation import Remediation, RemediationError, load_remediation
from .actions import args_schema, known_action
from .schema import check, check_part
from .source import ScenarioFileError, load_sourced
from .variants import expand as expand_variants
from .variants import variant_errors

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class Fault:
    id: str
    title: str
    description: str
    claim: dict[str, Any]
    inject: tuple[dict[str, Any], ...]
    expected: dict[str, dict[str, str]]
    tags: tuple[str, ...]
    requires: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()  # empty: written for every lab
    hints: dict[str, str] = field(default_factory=dict)  # symptom / where / fix (optional)
    variants: tuple[dict[str, Any], ...] = ()  # in the file; expanded into rows by load_catalog
    variant: dict[str, Any] | None = None  # this row's variant: {of, id, args, title}
    path: Path = field(default=Path(), compare=False)

    def applies_to(self, lab: str) -> bool:
        return not self.labs or lab in self.labs

    @property
    def waits(self) -> bool:
        """Its cells mostly wait out a timeout (a dropped path, a stalled session): the matrix
        spreads them over every worker instead of queueing them behind one."""
        if "netns" in self.requires:
            return True
        for exp in self.expected.values():
            symptoms = exp.get("symptom")
            for symptom in symptoms if isinstance(symptoms, list) else [symptoms]:
                if str(symptom).endswith(("/timeout", "/stalled")):
                    return True
        return False

    @property
    def claimed_codes(self) -> dict[str, str]:
        return dict(self.claim.get("codes", {}))


@dataclass(frozen=True)
class Catalog:
    faults: dict[str, Fault]
    remediations: dict[str, Remediation]

    def for_lab(self, lab: str) -> tuple[Catalog, list[str]]:
        """The faults written for this lab, and the ids of those left out."""
        kept = {i: f for i, f in self.faults.items() if f.applies_to(lab)}
        return Catalog(kept, self.remediations), sorted(set(self.faults) - set(kept))

    def select(self, faults: list[str] | None, remediations: list[str] | None) -> Catalog:
        """A sub-catalog; unknown ids are an error that lists the known ones."""
        return Catalog(_pick(self.faults, faults, "fault"),
                       _pick(self.remediations, remediations, "remediation"))


def _pick(table: dict[str, Any], ids: list[str] | None, what: str) -> dict[str, Any]:
    if not ids:
        return dict(table)
    # a fault file's id selects every variant row of it
    ids = [k for i in ids for k in ([i] if i in table else
                                     [k for k in table if k.startswith(f"{i}@")] or [i])]
    unknown = [i for i in ids if i not in table]
    if unknown:
        raise ValueError(f"unknown {what} id(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(table))}")
    return {i: table[i] for i in ids}


def load_fault(path: Path) -> Fault:
    doc = load_sourced(path)
    data = check(doc, "fault")
    if data["id"] != path.stem:
        raise doc.error(("id",), f"must match the file name ({path.stem})")
    for i, step in enumerate(data["inject"]):
        if not known_action(step["node"], step["action"]):
            raise doc.error(("inject", i, "action"),
                            f"unknown action {step['action']!r} for node {step['node']!r}")
        args = step.get("args") or {}
        schema = args_schema(step["node"], step["action"])
        if any(v.get("step", 0) == i for v in data.get("variants", [])):
            schema = {**schema, "required": []}  # the variants complete this step's args
        check_part(doc, ("inject", i, "args"), args, schema)
        _check_named(doc, ("inject", i, "args"), step["action"], args)
    for i, variant in enumerate(data.get("variants", [])):
        step = data["inject"][variant.get("step", 0)] if variant.get("step", 0) < len(
            data["inject"]) else None
        if step is not None:  # the variant's own args, as the action takes them
            merged = {**(step.get("args") or {}), **variant["args"]}
            check_part(doc, ("variants", i, "args"), merged,
                       args_schema(step["node"], step["action"]))
    expectations = [(("expected", name), name) for name in data["expected"]]
    for i, variant in enumerate(data.get("variants", [])):
        expectations += [(("variants", i, "expected", n), n) for n in variant.get("expected", {})]
    for where, name in expectations:
        try:
            load_profile(name)
        except ProfileError as exc:
            raise doc.error(where, str(exc)) from None
    for where, message in variant_errors(data["inject"], data.get("variants", [])):
        raise doc.error(where, message)
    return Fault(
        id=data["id"], title=data["title"], description=data["description"].strip(),
        claim=data["claim"], inject=tuple(data["inject"]), expected=data["expected"],
        tags=tuple(data["tags"]), requires=tuple(data.get("requires", [])),
        labs=tuple(data.get("labs", [])), hints=dict(data.get("hints") or {}), path=path,
        variants=tuple(data.get("variants", [])),
    )


def _check_named(doc: Any, key: tuple[str | int, ...], action: str, args: dict[str, Any]
                 ) -> None:
    """Arguments that name another file: the client profile or OS profile must exist."""
    try:
        if action == "use_client_program":
            load_profile(str(args["profile"]))
        elif action == "install_os":
            from ..windows.os_profiles import load_profile as load_os

            load_os(str(args["os"]))
    except ProfileError as exc:
        field = "profile" if action == "use_client_program" else "os"
        raise doc.error((*key, field), exc.message or str(exc)) from None


def load_remediation_checked(sidecar: Path) -> Remediation:
    doc = load_sourced(sidecar)
    check(doc, "remediation")
    try:
        remediation = load_remediation(sidecar)
    except RemediationError as exc:
        key = (exc.field,) if getattr(exc, "field", None) else ()
        raise doc.error(key, str(exc)) from None
    from ..lab.network_remedies import REMEDIES

    for i, step in enumerate(remediation.steps):
        if step["action"] not in REMEDIES:
            raise doc.error(("steps", i, "action"), f"unknown network step {step['action']!r}; "
                            f"known: {', '.join(sorted(REMEDIES))}")
    return remediation


def load_catalog(directory: Path | None = None) -> Catalog:
    """Every fault (scenarios/*.yaml) and remediation (scenarios/remediations/*.yaml)."""
    directory = directory or SCENARIO_DIR
    faults = {row.id: row for f in map(load_fault, sorted(directory.glob("*.yaml")))
              for row in expand_variants(f)}
    remediations = {
        r.id: r for r in map(load_remediation_checked,
                             sorted((directory / "remediations").glob("*.yaml")))
    }
    if not faults:
        raise ScenarioFileError(directory, None, None, "no fault files (*.yaml) here")
    return Catalog(faults, remediations)
