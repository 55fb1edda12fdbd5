"""Checking a fault against the catalog and the lab before the supervisor injects it."""

from __future__ import annotations

from typing import Any

from . import control
from .cli_support import running_record
from .errors import TrainingError
from .labdir import LabDir


def validate_fault(text: str, record: dict[str, Any]) -> Any:
    """The catalog's fault row for FAULT or FAULT@VARIANT (a file with variants and no variant
    named: its first variant), or TrainingError (unknown id or variant, a backend or lab that
    cannot have it)."""
    from ..lab import registry
    from ..lab.definition import load_lab
    from ..scenario.catalog import load_catalog

    catalog = load_catalog()
    fault_id, _, variant = text.partition("@")
    rows = [k for k in catalog.faults if k.startswith(f"{fault_id}@")]  # the file's variants
    key = f"{fault_id}@{variant}" if variant else (rows[0] if rows else fault_id)
    fault = catalog.faults.get(key)
    if fault is None and variant and (rows or fault_id in catalog.faults):
        raise TrainingError(f"fault {fault_id} has no variant {variant!r}; its variants: "
                            f"{', '.join(r.split('@', 1)[1] for r in rows) or 'none'}")
    if fault is None:
        raise TrainingError(f"unknown fault {fault_id!r}; known: "
                            f"{', '.join(sorted(catalog.faults))}")
    spec = load_lab(record["lab"])
    if not fault.applies_to(spec.name):
        raise TrainingError(f"fault {fault_id} is not written for the {spec.name} lab "
                            f"(labs: {', '.join(fault.labs)})")
    cls = registry.backend_class(record["backend"])
    for requirement in fault.requires:
        why = cls.lacks(requirement)
        if why:
            raise TrainingError(f"fault {fault_id} {why}; this lab runs on {record['backend']}: "
                                "bring one up on a backend that has it (`rdplab up --backend`)")
    if "gateway" in fault.requires and not spec.has_gateway:
        raise TrainingError(f"fault {fault_id} needs an RD Gateway; the {spec.name} lab has none")
    return fault


def break_lab(labdir: LabDir, fault_id: str, *, hidden: bool) -> dict[str, Any]:
    with labdir.locked():
        record = running_record(labdir)
        if record.get("fault"):
            raise TrainingError(f"lab {record['name']} is already broken; `rdplab reset` "
                                "restores the broken state, `rdplab down` + `up` a healthy lab")
        fault = validate_fault(fault_id, record)
        reply = control.call(labdir.socket_path, "break", fault=fault.id, hidden=hidden)
        return {**reply, "fault": fault.id}
