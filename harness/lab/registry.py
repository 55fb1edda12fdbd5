"""Backends by name, as pytest-testinfra's connection backends: name -> "module:Class".

A new backend is one module with a `LabBackend` subclass and one line in BACKENDS (or a call to
`register()` from a plugin); the CLI's choices, preflight and worker count all come from here and
the class, so nothing else changes. `auto` is the first backend of AUTO_ORDER that can run here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import BackendUnavailable

if TYPE_CHECKING:
    from .contract import LabBackend

BACKENDS: dict[str, str] = {
    "loopback": "harness.lab.loopback:LoopbackLab",
    "netns": "harness.lab.netns:NetnsLab",
    "vagrant": "harness.lab.vagrant:VagrantLab",
}
AUTO_ORDER: list[str] = ["netns", "loopback"]  # never auto: a backend that needs real VMs


def register(name: str, target: str, *, auto: bool = False) -> None:
    """Add a backend ("package.module:Class"); `auto=True` puts it first in AUTO_ORDER."""
    BACKENDS[name] = target
    if auto and name not in AUTO_ORDER:
        AUTO_ORDER.insert(0, name)


def names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def choices(*, trainable: bool = False) -> tuple[str, ...]:
    """What `--backend` accepts (for `up` and `classroom`: the backends a supervisor can hold)."""
    if not trainable:
        return ("auto", *BACKENDS)
    return ("auto", *(n for n in BACKENDS if backend_class(n).trainable))


def backend_class(name: str) -> type[LabBackend]:
    """The class registered as `name` (auto resolved first); ValueError for an unknown name."""
    name = resolve(name)
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def resolve(name: str, *, trainable: bool = False) -> str:
    """A registered name; `auto`: the first of AUTO_ORDER whose availability() is None (and,
    with `trainable`, that can run as a trainer's lab)."""
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; use {', '.join(choices())}")
        return name
    for candidate in AUTO_ORDER:
        cls = backend_class(candidate)
        if cls.availability() is None and (cls.trainable or not trainable):
            return candidate
    raise BackendUnavailable("no backend can run here: "
                             + "; ".join(f"{n}: {backend_class(n).availability()}"
                                         for n in AUTO_ORDER))


def auto_fallback_note(requested: str, chosen: str) -> str | None:
    """What `auto` passed over to reach `chosen` (None when it took the first choice)."""
    if requested != "auto" or not AUTO_ORDER or chosen == AUTO_ORDER[0]:
        return None
    first = AUTO_ORDER[0]
    return (f"{first} backend not available ({backend_class(first).availability()}): using "
            f"{chosen}; cells that need the kernel are reported as not emulated")


__all__ = ["AUTO_ORDER", "BACKENDS", "auto_fallback_note", "backend_class", "choices", "names",
           "register", "resolve"]
