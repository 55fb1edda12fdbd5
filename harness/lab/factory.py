"""Building a lab: the Windows nodes from a LabSpec, then a backend chosen by name
(harness/lab/registry.py: `loopback`, `netns`, `vagrant`; `auto` picks netns when this process
may create namespaces, loopback otherwise)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from ..windows.gateway import DEFAULT_GROUP
from ..windows.node import WindowsNode
from . import registry
from .contract import LabBackend
from .definition import ADDRESSES, LabSpec

BACKENDS = registry.BACKENDS


_ROLE_ORDER = ("client", "gateway", "host", "dc")


def build_node(spec: LabSpec, role: str, lab_dir: Path, os_profile: str | None = None
               ) -> WindowsNode:
    """Install one machine of the lab (the CA in lab_dir is the lab's, created on first use)."""
    node = spec.nodes[role]
    return WindowsNode(
        node.name, role, lab_dir, os_profile=os_profile or node.os, domain=spec.domain,  # type: ignore[arg-type]
        dns_domain=spec.dns_domain, users=dict(spec.users), addresses=[ADDRESSES[role]],
        installed_updates=list(node.updates) if os_profile is None else [],
        seed=spec.seed + _ROLE_ORDER.index(role), rdp_certificate_issuer=node.rdp_certificate,
    )


def point_client_dns(nodes: dict[str, WindowsNode]) -> None:
    """The lab's DNS: the client resolves the host's and gateway's names to their addresses.

    The client's DNS server records stand for the lab's one DNS server: a gateway asks the same
    server, so it shares those records (a stale record misleads the gateway as well)."""
    client = nodes["client"]
    for role in ("host", "gateway"):
        if role in nodes:
            client.network.set_dns_record(nodes[role].fqdn, ADDRESSES[role])
    for role in ("gateway", "host"):  # one DNS server: `ipconfig /registerdns` updates it
        if role in nodes:
            nodes[role].network.dns_records = client.network.dns_records


def set_up_gateway(nodes: dict[str, WindowsNode], fresh: tuple[str, ...]) -> None:
    """What the lab's administrator did once the RD Gateway was installed: the session host's
    names in the RAP's computer group (a fresh gateway), and mstsc on a fresh client set to
    always go through the gateway by its FQDN (Default.rdp)."""
    gateway = nodes.get("gateway")
    if gateway is None or gateway.gateway is None:
        return
    if "gateway" in fresh:
        group = gateway.gateway.group(DEFAULT_GROUP)
        if group is not None:
            host = nodes["host"]
            for name in (host.fqdn, host.computer_name):
                gateway.gateway.add_computer(group, name)
    if "client" in fresh:
        nodes["client"].set_rd_gateway(gateway.fqdn)


def build_nodes(spec: LabSpec, workdir: Path) -> dict[str, WindowsNode]:
    """Install the lab's machines (a fresh state in workdir)."""
    nodes = {role: build_node(spec, role, workdir) for role in spec.nodes}
    if spec.vpn:
        # The client reaches the lab through its VPN adapter (the route NIC the scripts name).
        nodes["client"].network.add_nic("VPN", spec.vpn_mtu, [ADDRESSES["client"]], route=True)
    point_client_dns(nodes)
    set_up_gateway(nodes, tuple(nodes))
    for node in nodes.values():
        node.journal.entries.clear()
    return nodes


def reinstall_node(spec: LabSpec, nodes: dict[str, WindowsNode], role: str, os_profile: str,
                   workdir: Path) -> WindowsNode:
    """Replace one machine by a fresh install of another OS build (same name and users)."""
    fresh_dir = workdir / f"reinstall-{role}-{len(list(workdir.glob('reinstall-*')))}"
    fresh_dir.mkdir(parents=True)
    shutil.copytree(workdir / "lab-ca", fresh_dir / "lab-ca")  # the lab's CA stays the same
    nodes[role] = build_node(spec, role, fresh_dir, os_profile)
    point_client_dns(nodes)
    set_up_gateway(nodes, (role,))
    return nodes[role]


def resolve_backend(name: str) -> str:
    """A registered backend name (`auto` resolved); see registry.resolve."""
    return registry.resolve(name)


def netns_reason() -> str | None:
    """Why the netns backend cannot run here (None when it can): no namespaces, or no ip/nft/tc."""
    from ..net import missing_tools, netns_available

    ok, why = netns_available()
    if not ok:
        return why
    missing = missing_tools()
    if missing:
        return f"missing {', '.join(missing)} (Debian: iproute2, nftables)"
    return None


def backend_class(name: str) -> type[LabBackend]:
    return registry.backend_class(name)


class LabHandle:
    """A lab with its own work directory, removed on close (also after a failure)."""

    def __init__(self, spec: LabSpec, backend: str = "auto", *, workdir: Path | None = None,
                 nodes: dict[str, WindowsNode] | None = None) -> None:
        self._own_dir = workdir is None
        self._state = None
        self.workdir = workdir or self._make_workdir(spec.name)
        try:
            nodes = nodes if nodes is not None else build_nodes(spec, self.workdir)
            self.lab = backend_class(backend)(spec, self.workdir, nodes)
        except BaseException:
            self._cleanup_dir()
            raise

    def _make_workdir(self, name: str) -> Path:
        """A private work directory (it will hold the lab CA's key), recorded in a state file
        before it exists, so that `rdplab down --all` removes it after a SIGINT or kill -9 at
        any moment; without a writable state directory it is only removed on close."""
        from ..net.signals import signals_deferred
        from ..net.state import LabState, default_state_dir

        path = Path(tempfile.gettempdir()) / f"rdplab-{name}-{secrets.token_hex(6)}"
        with signals_deferred():
            with contextlib.suppress(OSError):
                self._state = LabState.new(default_state_dir(),
                                           f"rdplab-workdir-{os.getpid()}-{path.name}")
                self._state.add({"kind": "tempdir", "path": str(path)})
            try:
                path.mkdir(mode=0o700)
            except BaseException:
                self._forget_state()
                raise
        return path

    def _forget_state(self) -> None:
        if self._state is not None:
            self._state.remove()
            self._state = None

    def _cleanup_dir(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if not self.workdir.exists():
                self._forget_state()

    def __enter__(self) -> LabBackend:
        try:
            return self.lab.__enter__()  # closes the lab itself when start() fails
        except BaseException:
            self._cleanup_dir()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.lab.__exit__(None, None, None)
        finally:
            self._cleanup_dir()
