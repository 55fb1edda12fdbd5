"""Checking a fault against the catalog and the lab before the supervisor injects it."""

from __future__ import annotations

from typing import Any

from . import control
from .cli_support import running_record
from .errors import TrainingError
from .labdir import LabDir


def parse_fault(text: str) -> tuple[str, str | None]:
    fault, _, variant = text.partition("@")
    return fault, variant or None


def validate_fault(fault_id: str, variant: str | None, record: dict[str, Any]) -> Any:
    """The catalog's fault, or TrainingError (unknown id or variant, a backend or lab that
    cannot have it)."""
    from ..lab.definition import load_lab
    from ..scenario.catalog import load_catalog

    catalog = load_catalog()
    rows = [k for k in catalog.faults if k.startswith(f"{fault_id}@")]  # the file's variants
    key = f"{fault_id}@{variant}" if variant is not None else (rows[0] if rows else fault_id)
    fault = catalog.faults.get(key)
    if fault is None and variant is not None and (rows or fault_id in catalog.faults):
        raise TrainingError(f"fault {fault_id} has no variant {variant!r}; its variants: "
                            f"{', '.join(r.split('@', 1)[1] for r in rows) or 'none'}")
    if fault is None:
        raise TrainingError(f"unknown fault {fault_id!r}; known: "
                            f"{', '.join(sorted(catalog.faults))}")
    spec = load_lab(record["lab"])
    if not fault.applies_to(spec.name):
        raise TrainingError(f"fault {fault_id} is not written for the {spec.name} lab "
                            f"(labs: {', '.join(fault.labs)})")
    if "netns" in fault.requires and record["backend"] != "netns":
        raise TrainingError(f"fault {fault_id} needs the netns backend (kernel network faults); "
                            f"this lab runs on {record['backend']}: `rdplab up --backend netns`")
    if "gateway" in fault.requires and not spec.has_gateway:
        raise TrainingError(f"fault {fault_id} needs an RD Gateway; the {spec.name} lab has none")
    return fault


def break_lab(labdir: LabDir, text: str, *, hidden: bool) -> dict[str, Any]:
    fault_id, variant = parse_fault(text)
    with labdir.locked():
        record = running_record(labdir)
        if record.get("fault"):
            raise TrainingError(f"lab {record['name']} is already broken; `rdplab reset` "
                                "restores the broken state, `rdplab down` + `up` a healthy lab")
        validate_fault(fault_id, variant, record)
        return control.call(labdir.socket_path, "break", fault=fault_id, variant=variant,
                            hidden=hidden)
