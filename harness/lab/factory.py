"""Building a lab: the Windows nodes from a LabSpec, then a backend chosen by name.

Backends form a registry, as testinfra's connection backends do: `loopback`, `netns`,
`vagrant`; `auto` picks netns when this process may create namespaces, loopback otherwise.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path

from ..windows.node import WindowsNode
from .base import ADDRESSES, Lab
from .definition import LabSpec

BACKENDS = {
    "loopback": "harness.lab.loopback:LoopbackLab",
    "netns": "harness.lab.netns:NetnsLab",
    "vagrant": "harness.lab.vagrant:VagrantLab",
}


def build_nodes(spec: LabSpec, workdir: Path) -> dict[str, WindowsNode]:
    """Install the lab's machines (a fresh state in workdir)."""
    nodes: dict[str, WindowsNode] = {}
    for offset, (role, node) in enumerate(sorted(spec.nodes.items())):
        nodes[role] = WindowsNode(
            node.name, role, workdir, os_profile=node.os, domain=spec.domain,
            dns_domain=spec.dns_domain, users=dict(spec.users), addresses=[ADDRESSES[role]],
            installed_updates=list(node.updates), seed=spec.seed + offset,
        )
    client = nodes["client"]
    for role in ("host", "gateway"):
        if role in nodes:
            client.network.set_dns_record(nodes[role].fqdn, ADDRESSES[role])
    for node in nodes.values():
        node.journal.entries.clear()
    return nodes


def resolve_backend(name: str) -> str:
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; use auto, {', '.join(BACKENDS)}")
        return name
    from ..net import netns_available

    ok, _ = netns_available()
    return "netns" if ok else "loopback"


def backend_class(name: str) -> type[Lab]:
    module, _, attr = BACKENDS[resolve_backend(name)].partition(":")
    return getattr(importlib.import_module(module), attr)


class LabHandle:
    """A lab with its own work directory, removed on close (also after a failure)."""

    def __init__(self, spec: LabSpec, backend: str = "auto", *, workdir: Path | None = None,
                 nodes: dict[str, WindowsNode] | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"rdplab-{spec.name}-"))
        try:
            nodes = nodes if nodes is not None else build_nodes(spec, self.workdir)
            self.lab = backend_class(backend)(spec, self.workdir, nodes)
        except BaseException:
            self._cleanup_dir()
            raise

    def _cleanup_dir(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Lab:
        try:
            self.lab.start()
        except BaseException:
            self.lab.close()
            self._cleanup_dir()
            raise
        return self.lab

    def __exit__(self, *exc: object) -> None:
        try:
            self.lab.close()
        finally:
            self._cleanup_dir()
