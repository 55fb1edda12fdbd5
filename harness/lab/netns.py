"""The netns backend: the lab's network made real in kernel namespaces (harness/net).

client — router ("the VPN") — host (and — gateway), with the model's addresses (base.ADDRESSES)
on real veths. The emulated host serves from a socket inside the host namespace, the emulated RD
Gateway from one inside the gateway namespace; the probe connects from a socket inside the client
namespace (the gateway reaches the host from its own), so refused / timed out / unreachable, MTU
black holes and netem come from the kernel, not from a rule in Python. sync() makes the kernel
follow the Windows model:

- listening: the host's listener exists exactly when the model listens (TermService running,
  Remote Desktop enabled), on the model's port; otherwise a SYN meets the kernel's RST. The
  gateway listens on 443 while TSGateway runs;
- firewall: the model's verdict for the RDP port (and the listening port) becomes an nft table
  in the host namespace: `drop` (silence) or `reject` (TCP reset); the gateway's verdict for 443
  one in the gateway namespace;
- MTU: the MTU of each node's route NIC in the model is the MTU of its veth towards the router;
- names: the client namespace's hosts file (/etc/netns/<ns>/hosts, what a real xfreerdp started
  with `exec_prefix("client")` resolves through) holds the client model's view of every name
  (DNS server records, then cache, then its hosts file).

Faults on the path itself (black hole, netem, MSS clamping) come through apply_network_fault.
The VPN is the client's leg: a black hole limits traffic to and from the client only, so the
gateway reaches the host at full MTU, as on one site.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..host.server import EmulatedHost
from ..net import (
    Netem,
    NetLab,
    Topology,
    apply_firewall_ports,
    apply_mss_clamp,
    apply_mtu_blackhole,
    apply_netem,
    apply_outbound_blocks,
    flush_route_caches,
    remove_mss_clamp,
    remove_mtu_blackhole,
    remove_netem,
    set_mtu,
    write_hosts,
)
from ..net.dns import lab_hosts
from ..net.nsenter import ns_exec_argv
from ..windows.node import WindowsNode
from .base import ADDRESSES, GATEWAY_PORT, RDP_PORT, Lab, NotEmulated
from .contract import ClientEndpoint, GatewayEndpoint, LabSnapshot
from .definition import LabSpec

if TYPE_CHECKING:
    from ..gateway.server import GatewayServer

LINK_MTU = 1500
HOST_IDLE_TIMEOUT = 15.0
NETWORK_FAULTS = ("mtu_blackhole", "netem", "mss_clamp")
VPN_LEGS = ("client",)  # the endpoints on the far side of the VPN


class NetnsLab(Lab):
    backend = "netns"
    trainable = True

    @classmethod
    def availability(cls) -> str | None:
        """No namespaces (not root), or no ip/nft/tc: said why."""
        from .factory import netns_reason

        return netns_reason()

    @classmethod
    def default_jobs(cls, cores: int) -> int:
        """Eight workers per core (at most 16): network-fault cells mostly wait for timeouts
        (bench_matrix.py, default matrix on 2 cores: 12 workers 43 s, 16 38 s, 24 38 s)."""
        return max(1, min(16, cores * 8))

    def __init__(self, spec: LabSpec, workdir: Path, nodes: dict[str, WindowsNode], *,
                 state_dir: Path | None = None) -> None:
        super().__init__(spec, workdir, nodes)
        self._state_dir = state_dir  # None: $RDPLAB_STATE_DIR or /run/rdplab
        self._lock = threading.RLock()
        self._outbound: set[tuple[str, int]] = set()  # the client's own outbound blocks
        self._closing = threading.Event()  # wakes connects still waiting for a SYN-ACK
        self._net: NetLab | None = None
        self._host: EmulatedHost | None = None
        self._gateway: GatewayServer | None = None
        self._gateway_listener: socket.socket | None = None
        # What sync() last applied, so an unchanged model costs no kernel call.
        self._listen_port: int | None = None
        self._firewall: dict[str, dict[int, str]] = {}
        self._mtu: dict[str, int] = {}
        self._hosts: dict[str, str] | None = None
        self.network_faults: dict[str, dict[str, Any]] = {}
        self._fault_args: dict[str, dict[str, Any]] = {}  # as given, for restore()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def net(self) -> NetLab:
        """The kernel lab (namespaces); RuntimeError before start() or after close()."""
        if self._net is None:
            raise RuntimeError("the netns lab is not started")
        return self._net

    def start(self) -> None:
        with self._lock:
            if self._net is not None:
                raise RuntimeError("the netns lab is already started")
            topology = Topology.standard(gateway=self.spec.has_gateway, mtu=LINK_MTU,
                                         dc=self.spec.has_domain_controller)
            for role in topology.endpoints():
                if role in ADDRESSES and topology.address(role) != ADDRESSES[role]:
                    raise RuntimeError(f"topology puts {role} at {topology.address(role)}, "
                                       f"the model at {ADDRESSES[role]}")
            net = NetLab(topology, state_dir=self._state_dir, handle_signals=True)
            net.__enter__()  # creates it; SIGTERM/SIGHUP raise Terminated until close()
            self._net = net
            scratch = self._scratch_workdir()
            if scratch is not None:
                net.record(scratch)
            self._mtu = {role: LINK_MTU for role in topology.endpoints()}
            self._firewall = {role: {} for role in topology.endpoints()}
            try:
                # The DC's KDC in its own namespace, on Kerberos' port, recorded in the lab's state.
                if self.spec.has_domain_controller:  # only such a lab has a dc namespace
                    self.start_domain(address=ADDRESSES["dc"], port=88,
                                      prefix=ns_exec_argv(net.ns("dc"), []), state=net.state)
                self.sync()
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            try:
                self._gateway_unlisten()
            finally:
                try:
                    self._unlisten()
                finally:
                    self._teardown()

    def _teardown(self) -> None:
        self.stop_domain()
        net, self._net = self._net, None
        self._listen_port = None
        self._firewall = {}
        self._mtu = {}
        self._hosts = None
        self.network_faults.clear()
        self._fault_args.clear()
        if net is not None:
            scratch = self._scratch_workdir()
            if scratch is not None:
                net.forget(scratch)  # its owner (LabHandle) removes it, not destroy()
            net.__exit__(None, None, None)

    def _scratch_workdir(self) -> dict[str, str] | None:
        """LabHandle's own temporary work directory (tempdir/rdplab-<lab>-*) as a state-file
        resource: recorded while the lab runs so that `down_all` removes it after a SIGKILL, and
        forgotten before a normal destroy. A work directory the caller gave is never recorded."""
        workdir = Path(self.workdir)
        if (workdir.parent == Path(tempfile.gettempdir())
                and workdir.name.startswith(f"rdplab-{self.spec.name}-")):
            return {"kind": "tempdir", "path": str(workdir)}
        return None

    # -- the model applied to the kernel -------------------------------------------------------

    def sync(self) -> None:
        with self._lock:
            net = self.net
            host = self.host
            port = host.listening_port()
            if port != self._listen_port or (port is not None and self._host is None):
                self._unlisten()
                if port is not None:
                    self._listen(port)
            ports = {RDP_PORT} if port is None else {RDP_PORT, port}
            self._sync_firewall("host", host, ports)

            gateway = self.gateway
            if gateway is not None and "gateway" in net.topology.nodes:
                serving = self.gateway_serving()
                if serving and self._gateway is None:
                    self._gateway_listen()
                elif not serving and self._gateway is not None:
                    self._gateway_unlisten()
                self._sync_firewall("gateway", gateway, {GATEWAY_PORT})

            for role in net.topology.endpoints():
                node = self.nodes.get(role)
                if node is None:
                    continue
                with node.lock:
                    nic = node.network.route_nic()
                    mtu = nic.mtu if nic is not None else LINK_MTU
                if mtu != self._mtu.get(role):
                    if not 576 <= mtu <= 9000:
                        raise NotEmulated(f"{role} MTU {mtu} is outside what a veth takes "
                                          "(576..9000)")
                    set_mtu(net, role, mtu)
                    self._mtu[role] = mtu

            entries = self._client_names()
            if entries != self._hosts:
                write_hosts(net, "client", entries)
                self._hosts = entries
            self._sync_client_stack(set(entries.values()), ports | {GATEWAY_PORT})

    def _sync_client_stack(self, addresses: set[str], ports: set[int]) -> None:
        """The client machine's own stack in its namespace's kernel: every lab endpoint its RDP
        client may not connect to (a corrupt Winsock catalog, an outbound filter) is dropped in
        the output hook, so a real program run there (xfreerdp) meets it too. The probe meets
        it in the model first (client_socket_error), with Windows' own error."""
        blocked = {(a, p) for a in addresses for p in ports
                   if self.client.client_socket_error(a, p) is not None}
        if blocked != self._outbound:
            apply_outbound_blocks(self.net, blocked, node="client")
            self._outbound = blocked

    def _sync_firewall(self, role: str, node: WindowsNode, ports: set[int]) -> None:
        blocked = {p: v for p in sorted(ports) if (v := node.firewall_verdict(p)) != "allow"}
        if blocked != self._firewall.get(role):
            apply_firewall_ports(self.net, blocked, node=role)  # type: ignore[arg-type]
            self._firewall[role] = blocked

    def _client_names(self) -> dict[str, str]:
        """Every name the client model resolves, as a hosts file (IPv4 answers only)."""
        entries = lab_hosts(self.net.topology)
        network = self.client.network
        with self.client.lock:
            merged: dict[str, str] = {}
            for table in (network.dns_records, network.dns_cache, network.hosts):  # lowest first
                merged.update(table)
        for name, address in merged.items():
            key = str(name).lower().rstrip(".")
            try:
                ok = isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
            except ValueError:
                ok = False
            if ok and key and not any(c.isspace() or c == "#" for c in key):
                entries[key] = str(address)
        return entries

    def _listening_socket(self, role: str, port: int) -> socket.socket:
        sock = self.net.socket(role)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ADDRESSES[role], port))
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        return sock

    def _listen(self, port: int) -> None:
        sock = self._listening_socket("host", port)
        server = EmulatedHost(self.host_policy, on_event=self.host_event,
                              idle_timeout=HOST_IDLE_TIMEOUT)
        server.start(sock)
        self._host = server
        self._listen_port = port

    def _unlisten(self) -> None:
        server, self._host = self._host, None
        self._listen_port = None
        if server is not None:
            server.stop()

    def _gateway_listen(self) -> None:
        sock = self._listening_socket("gateway", GATEWAY_PORT)
        self._gateway_listener = sock
        self._gateway = self.serve_gateway(sock)

    def _gateway_unlisten(self) -> None:
        server, self._gateway = self._gateway, None
        listener, self._gateway_listener = self._gateway_listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the acceptor at once
        try:
            if server is not None:
                server.stop()
        finally:
            if listener is not None:
                listener.close()

    @property
    def host_server(self) -> EmulatedHost | None:
        """The emulated host while the model listens (its stats count connections)."""
        return self._host

    @property
    def gateway_server(self) -> GatewayServer | None:
        """The emulated RD Gateway while the model serves (its log has the gateway's events)."""
        return self._gateway

    # -- the nodes' stacks ---------------------------------------------------------------------

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        return self.connect_from("client", address, port, timeout)

    def connect_from(self, role: str, address: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection made in `role`'s namespace: the kernel answers as it would there."""
        sock = self.net.socket(role)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _connect_until(sock, (address, port), timeout, self._closing)
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def client_exec_prefix(self) -> list[str]:
        return self.exec_prefix("client")

    def exec_prefix(self, role: str = "client") -> list[str]:
        """`ip netns exec <ns>`: prefix an argv with it to run a real program on that node (it
        resolves names through the namespace's hosts file)."""
        return ns_exec_argv(self.net.ns(role), [])

    def xfreerdp_endpoint(self) -> tuple[str, int, list[str] | None, str]:
        """A real xfreerdp in the client namespace connects by the client's own name for the
        host; the namespace's hosts file (synced from the client model) resolves it."""
        self.sync()
        name, _ = self.client_target()
        return name, RDP_PORT, self.exec_prefix("client"), name

    def client_endpoint(self) -> ClientEndpoint:
        """A real client in the client namespace, by the client's own names."""
        name, port, prefix, server = self.xfreerdp_endpoint()
        gateway = self.xfreerdp_gateway()
        return ClientEndpoint(name, port, server, tuple(prefix),
                              GatewayEndpoint(*gateway) if gateway is not None else None)

    def xfreerdp_gateway(self) -> tuple[str, int, str] | None:
        """(address, port, name) of the RD Gateway the client's settings name, for `/g:`; the
        name itself as the address (the namespace resolves it); None for a direct connection."""
        gateway_name = self.client.client_settings().gateway
        if not gateway_name:
            return None
        name = gateway_name.rsplit(":", 1)[0] if gateway_name.count(":") == 1 else gateway_name
        return name, GATEWAY_PORT, name

    # -- faults on the path ---------------------------------------------------------------------

    def apply_network_fault(self, action: str, args: dict[str, Any]) -> None:
        """mtu_blackhole {mtu=1300, drop_icmp=true} on the VPN (the client's leg), netem
        {delay_ms, jitter_ms, loss_pct, reorder_pct} on the router's interfaces, mss_clamp {}
        (the router's fix for a black hole); anything else is not emulated."""
        args = dict(args or {})
        with self._lock:
            net = self.net
            self._fault_args[action] = dict(args)
            if action == "mtu_blackhole":
                mtu = int(args.get("mtu", 1300))
                drop_icmp = bool(args.get("drop_icmp", True))
                apply_mtu_blackhole(net, mtu=mtu, drop_icmp=drop_icmp, legs=VPN_LEGS)
                self.network_faults[action] = {"mtu": mtu, "drop_icmp": drop_icmp,
                                               "legs": list(VPN_LEGS)}
            elif action == "netem":
                netem = Netem(**{k: float(args.get(k, 0.0)) for k in
                                 ("delay_ms", "jitter_ms", "loss_pct", "reorder_pct")})
                backend = apply_netem(net, netem, seed=args.get("seed"),
                                      backend=str(args.get("backend", "auto")))  # type: ignore[arg-type]
                self.network_faults[action] = {**args, "backend": backend}
            elif action == "mss_clamp":
                apply_mss_clamp(net)
                self.network_faults[action] = {}
            else:
                self._fault_args.pop(action, None)
                raise NotEmulated(f"network fault {action!r} is not one the netns backend knows "
                                  f"({', '.join(NETWORK_FAULTS)})")

    def path_randomness(self) -> str | None:
        netem = self.network_faults.get("netem")
        if not netem:
            return None
        random = {k: netem[k] for k in ("loss_pct", "jitter_ms", "reorder_pct")
                  if float(netem.get(k, 0) or 0) > 0}
        if not random:
            return None
        return "netem on the VPN path: " + ", ".join(f"{k} {v:g}" for k, v in random.items())

    def clear_network_fault(self, action: str) -> None:
        """Undo apply_network_fault(action); nothing happens when it is not applied."""
        removers = {"mtu_blackhole": remove_mtu_blackhole, "netem": remove_netem,
                    "mss_clamp": remove_mss_clamp}
        if action not in removers:
            raise NotEmulated(f"network fault {action!r} is not one the netns backend knows "
                              f"({', '.join(NETWORK_FAULTS)})")
        with self._lock:
            removers[action](self.net)
            self.network_faults.pop(action, None)
            self._fault_args.pop(action, None)

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self, name: str) -> LabSnapshot:
        """The model (Lab.snapshot) and the faults on the path, which live in the kernel only."""
        snap = super().snapshot(name)
        with self._lock:
            snap.state["network_faults"] = {a: dict(v) for a, v in self._fault_args.items()}
        return snap

    def restore(self, snapshot: LabSnapshot) -> None:
        """The model, then the kernel: path faults cleared and re-applied as they were when the
        snapshot was taken (when they differ), learned path MTUs forgotten (kernel state no
        snapshot holds), listener/firewall/MTU/names by sync()."""
        wanted = snapshot.state.get("network_faults", {})
        with self._lock:
            if wanted != self._fault_args:
                for action in list(self._fault_args):
                    self.clear_network_fault(action)
                for action, args in wanted.items():
                    self.apply_network_fault(action, dict(args))
            flush_route_caches(self.net)
        super().restore(snapshot)

    def unsupported(self, requirement: str) -> str | None:
        if requirement == "netns":
            return None
        return super().unsupported(requirement)


def _connect_until(sock: socket.socket, target: tuple[str, int], timeout: float,
                   closing: threading.Event) -> None:
    """connect() bounded by `timeout` that also gives up when the lab is closing, so a thread
    waiting for a dropped SYN's answer (the gateway's, say) never outlives the lab."""
    sock.setblocking(False)
    err = sock.connect_ex(target)
    if err not in (0, errno.EINPROGRESS):
        raise OSError(err, os.strerror(err))
    deadline = time.monotonic() + timeout
    while err != 0:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        if closing.is_set():
            raise ConnectionAbortedError("the lab is closing")
        _, writable, _ = select.select([], [sock], [], min(0.1, left))
        if writable:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            break
    sock.setblocking(True)
