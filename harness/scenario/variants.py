"""Fault variants: one fault file, one row per value of its parameter (`<id>@<variant>`).

A variant's `args` are merged into one inject step (`step`, default 0); its `expected` replaces
the file's expected symptoms for that row. `mtu-blackhole@1300`, `@1380` and `@1420` then show
what one file with one value cannot: which MTU fix works for which bottleneck.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from ..windows.faults import ACTIONS as NODE_ACTIONS


def variant_errors(inject: list[dict[str, Any]], variants: list[dict[str, Any]]
                   ) -> list[tuple[tuple[Any, ...], str]]:
    """(field path, message) for every variant that cannot apply to the inject steps."""
    errors: list[tuple[tuple[Any, ...], str]] = []
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        if variant["id"] in seen:
            errors.append((("variants", i, "id"), f"duplicate variant {variant['id']!r}"))
        seen.add(variant["id"])
        step_index = variant.get("step", 0)
        if step_index >= len(inject):
            errors.append((("variants", i, "step"), f"there are {len(inject)} inject steps"))
            continue
        step = inject[step_index]
        fn = NODE_ACTIONS.get(step["action"]) if step["node"] != "network" else None
        if fn is not None:
            try:
                inspect.signature(fn).bind(None, **{**(step.get("args") or {}),
                                                    **variant["args"]})
            except TypeError as exc:
                errors.append((("variants", i, "args"), f"{step['action']}: {exc}"))
    return errors


def expand(fault: Any) -> list[Any]:
    """The fault itself when it has no variants, else one fault per variant."""
    if not fault.variants:
        return [fault]
    rows = []
    for variant in fault.variants:
        index = variant.get("step", 0)
        inject = [dict(step) for step in fault.inject]
        inject[index] = {**inject[index],
                         "args": {**(inject[index].get("args") or {}), **variant["args"]}}
        label = variant.get("title") or ", ".join(f"{k}={v}" for k, v in variant["args"].items())
        rows.append(dataclasses.replace(
            fault, id=f"{fault.id}@{variant['id']}", title=f"{fault.title} ({label})",
            inject=tuple(inject), expected=variant.get("expected") or fault.expected,
            variants=(), variant={"of": fault.id, "id": variant["id"], "args": variant["args"],
                                  "title": label}))
    return rows
