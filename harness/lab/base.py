"""The lab interface every backend implements, and what they share: the Windows nodes, the
client's view of the network (resolver, connection target), and building a probe from the
client machine's state.

A backend only decides how bytes travel (loopback sockets, kernel namespaces, real VMs); what
the nodes do comes from the Windows model in every case.

With a gateway node (labs/default.yaml: client -> VPN -> RD Gateway -> host), the client goes
through the RD Gateway its mstsc settings name (Default.rdp); the emulated GatewayServer reads
`gateway_policy()` from the gateway's model at each connection and reaches the host with
`gateway_connect()`: the gateway's resolver and outbound firewall (model), then the backend's
own `connect_from("gateway", ...)`, so every host-side fault acts through the gateway as well.
A backend runs the gateway with `serve_gateway(listener)` while `gateway_serving()` says so.

`Lab` implements the contract (harness/lab/contract.py) for every backend whose machines are the
Windows model: snapshot() / restore() copy the nodes (and their files on disk: keys,
certificates) and bring them back, and sync() then makes the network follow.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import os
import socket
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotEmulated
from ..gateway.policy import GatewayPolicy
from ..host.policy import HostPolicy
from ..net.state import LabState
from ..probe.kerberos import KerberosClient
from ..probe.profiles import ClientProfile
from ..probe.result import ProbeResult
from ..probe.runner import ProbeOptions, ProbeTarget, run_probe
from ..rdp import events as ev
from ..rdp.x224 import Protocol
from ..windows.gateway import HTTPS_PORT
from ..windows.node import WindowsNode
from .contract import ClientEndpoint, DomainController, LabBackend, LabSnapshot
from .definition import ADDRESSES as ADDRESSES  # re-exported: backends import it from here
from .definition import LabSpec
from .kdc import Kdc
from .modelstate import FileTree, freeze

if TYPE_CHECKING:
    from ..gateway.server import GatewayServer
    from ..pwsh.remediation import Remediation
    from ..pwsh.result import RemediationResult

RDP_PORT = 3389
GATEWAY_PORT = HTTPS_PORT
GATEWAY_IDLE_TIMEOUT = 15.0


class Lab(LabBackend):
    """A running lab: nodes (the model) plus a network that carries real RDP between them."""

    def __init__(self, spec: LabSpec, workdir: Path, nodes: dict[str, WindowsNode]) -> None:
        super().__init__(spec, workdir, nodes)
        self.host_connections = 0
        self.gateway_connections = 0
        self.kdc: Kdc | None = None  # the domain controller's KDC, while the lab runs
        self._gateway_not_emulated: NotEmulated | None = None

    # -- what a backend provides ---------------------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Bring the network and the emulated servers up."""

    @abstractmethod
    def sync(self) -> None:
        """Apply the model's network-visible state (listening, firewall, MTU) to the network."""

    @abstractmethod
    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection from the client node to address:port, as the client's stack makes it."""

    def connect_from(self, role: str, address: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection from the node in `role` (the gateway reaching the host). Default:
        the client's path, right on loopback where every node is this process; the netns
        backend overrides it with a socket in that role's namespace."""
        return self.connect(address, port, timeout)

    @abstractmethod
    def close(self) -> None:
        """Tear everything down; safe to call twice."""

    def inject(self, role: str, action: str, args: dict[str, Any] | None = None) -> None:
        """Apply one fault action to a node (the model; the Vagrant backend does it for real)."""
        from ..windows.faults import inject

        inject(self.nodes[role], action, dict(args or {}))
        return None

    def run_remediation(self, remediation: Remediation) -> RemediationResult:
        """Run a remediation's script on its target nodes (interpreted on the model here)."""
        from ..pwsh.remediation import run_remediation

        if getattr(remediation, "target", None) == "network":
            from .network_remedies import run_network_remediation

            return run_network_remediation(self, remediation)
        return run_remediation(remediation, self.nodes)

    def client_endpoint(self) -> ClientEndpoint:
        """Where a real client program on the client node connects (see the contract)."""
        raise NotEmulated(f"the {self.backend} backend gives no place to run a real client")

    def client_target(self) -> tuple[str, str | None]:
        """The name the client connects to and the address its resolver gives (None: fails)."""
        settings = self.client.client_settings()
        name = settings.connection_target or self.host.fqdn
        return name, settings.resolve(name)

    def unsupported(self, requirement: str) -> str | None:
        """Why this backend cannot meet a scenario requirement ('netns', 'gateway'), or None."""
        why = self.lacks(requirement)
        if why is not None:
            return why
        if requirement == "gateway" and not self.spec.has_gateway:
            return "the lab has no RD Gateway node"
        return None

    def install_os(self, role: str, os_profile: str) -> None:
        """The machine in `role` is (re)installed with another OS build."""
        from .factory import reinstall_node

        reinstall_node(self.spec, self.nodes, role, os_profile, self.workdir)
        self.sync()

    def apply_network_fault(self, action: str, args: dict[str, Any]) -> None:
        """A fault on the network between the nodes (the VPN path)."""
        raise NotEmulated(f"network fault {action!r} needs the netns backend", needs="netns")

    # -- shared --------------------------------------------------------------------------------

    @property
    def client_program(self) -> str | None:
        """The client profile the user runs (a fault may change it, installing the current
        client changes it back); None: the lab's decision profile. Kept on the client node."""
        return self.client.client_program

    @client_program.setter
    def client_program(self, profile: str | None) -> None:
        with self.client.lock:
            before, self.client.client_program = self.client.client_program, profile
            self.client.journal.record("client", "RDP client program", before, profile)

    def client_connect(self, address: str, port: int, timeout: float) -> socket.socket:
        """A connection the user's RDP client makes: the client machine's own stack first (a
        corrupt Winsock catalog, an outbound filter on mstsc.exe), then the backend's path."""
        error = self.client.client_socket_error(address, port)
        if error is not None:
            raise error
        return self.connect(address, port, timeout)

    @property
    def host(self) -> WindowsNode:
        return self.nodes["host"]

    @property
    def client(self) -> WindowsNode:
        return self.nodes["client"]

    @property
    def gateway(self) -> WindowsNode | None:
        return self.nodes.get("gateway")

    # -- the RD Gateway ------------------------------------------------------------------------

    def gateway_policy(self) -> GatewayPolicy:
        """Read from the gateway's model at every connection, as host_policy() is."""
        if self.gateway is None:
            raise NotEmulated("the lab has no RD Gateway node")
        self.gateway_connections += 1
        return self.gateway.gateway_policy()

    def gateway_serving(self) -> bool:
        """Whether the gateway answers on 443 at all: TSGateway runs (its model)."""
        return self.gateway is not None and self.gateway.gateway_listening()

    def gateway_resolve(self, name: str) -> str | None:
        """The gateway's resolver: its hosts file, cache, then the lab's DNS server (the same
        server the client asks: the lab shares the records, see factory.link_nodes)."""
        node = self.gateway
        if node is None:
            return None
        try:
            return str(ipaddress.ip_address(name))
        except ValueError:
            pass
        key = name.lower().rstrip(".")
        with node.lock:
            for table in (node.network.hosts, node.network.dns_cache, node.network.dns_records):
                if key in table:
                    return str(table[key])
        return None

    def gateway_connect(self, name: str, port: int, timeout: float) -> socket.socket:
        """How the gateway reaches a resource: its resolver, its outbound firewall (a block is
        WSAEACCES at once, as Windows' firewall does it), then the backend's connect_from."""
        gateway = self.gateway
        assert gateway is not None
        address = self.gateway_resolve(name)
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: no such host (gateway resolver)")
        if gateway.outbound_verdict(address, port) == "block":
            raise PermissionError(errno.EACCES, "An attempt was made to access a socket in a way "
                                  "forbidden by its access permissions (outbound firewall rule "
                                  f"on {gateway.name}, {address}:{port})")
        try:
            return self.connect_from("gateway", address, port, timeout)
        except NotEmulated as exc:  # e.g. a silent drop on loopback: the probe raises it
            self._gateway_not_emulated = exc
            raise ConnectionAbortedError(f"not emulated: {exc.reason}") from exc

    def gateway_event(self, event: ev.HostLog) -> None:
        gateway = self.gateway
        if event.event_id is None or gateway is None:
            return
        schannel = event.event_id in (36870, 36871)
        gateway.eventlog.write(event.event_id, event.message,
                               level="Error" if event.event_id in (201, 301) or schannel
                               else "Information",
                               source="Schannel" if schannel
                               else "Microsoft-Windows-TerminalServices-Gateway")

    @property
    def gateway_server(self) -> GatewayServer | None:
        """The emulated RD Gateway while it serves (None: no gateway, or not serving)."""
        return None

    def settle(self, since: float) -> None:
        """After a client closed: wait (bounded) until the emulated servers have finished the
        connections made since `since` (time.monotonic()) and logged their end, so that what a
        connection writes is in the stage that made it."""
        server = self.gateway_server
        if server is not None:
            server.wait_idle(since, timeout=2.0)

    def serve_gateway(self, listener: socket.socket) -> GatewayServer:
        """The emulated RD Gateway on a listening socket the backend made (and closes)."""
        from ..gateway.server import GatewayServer

        server = GatewayServer(listener, self.gateway_policy, connect=self.gateway_connect,
                               timeout=10.0, idle_timeout=GATEWAY_IDLE_TIMEOUT,
                               log=self.gateway_event)
        return server.start()

    def host_policy(self) -> HostPolicy:
        """Read from the model at every connection: the host is the model."""
        self.host_connections += 1
        policy = self.host.host_policy()
        if self.kdc is not None:  # a domain member: its TERMSRV keys from the DC
            policy = replace(policy, kerberos_keytab=str(self.kdc.keytab(self.host.fqdn)))
        return policy

    # -- the domain controller ------------------------------------------------------------------

    def start_domain(self, *, address: str = "127.0.0.1", port: int | None = None,
                     prefix: Sequence[str] = (), state: LabState | None = None) -> None:
        """Run the DC's KDC (labs with a `dc` node): realm, users and the host's TERMSRV key.
        `prefix` runs it elsewhere (`ip netns exec <dc namespace>`)."""
        if not self.spec.has_domain_controller or self.kdc is not None:
            return
        kdc = Kdc(self.spec.realm, self.spec.users, [self.host.fqdn], address=address,
                  port=port, parent=self.workdir, prefix=prefix, state=state)
        self.kdc = kdc
        kdc.start()

    def stop_domain(self) -> None:
        kdc, self.kdc = self.kdc, None
        if kdc is not None:
            kdc.stop()

    def domain_controller(self) -> DomainController | None:
        kdc = self.kdc
        if kdc is None or kdc.dir is None or kdc.port is None:
            return None
        return DomainController(kdc.realm, kdc.krb5_conf, kdc.address, kdc.port,
                                kdc.dir / "kdc.log")

    def kerberos_client(self) -> KerberosClient | None:
        """The client machine's Kerberos (its clock, the DC's KDC), None outside a domain."""
        if self.kdc is None:
            return None
        settings = self.client.client_settings()
        return KerberosClient(self.spec.realm, self.kdc.krb5_conf, self.workdir / "client-krb5",
                              settings.clock_offset, tuple(self.client_exec_prefix()))

    def client_exec_prefix(self) -> list[str]:
        """How to run a program on the client machine (netns: in its namespace); default none."""
        return []

    def host_event(self, event: ev.HostLog) -> None:
        if event.event_id is not None:
            self.host.eventlog.write(event.event_id, event.message, level="Error",
                                     source="Schannel" if event.event_id in (36870, 36871)
                                     else "TermService")

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot(self, name: str) -> LabSnapshot:
        """The model now: a private copy of every node, and every file under the work directory
        (the nodes' C: drives, the lab CA); backends add what they derive outside the model."""
        state = {"nodes": freeze(self.nodes),
                 "files": FileTree(self.workdir, self._service_dirs()),
                 "counters": (self.host_connections, self.gateway_connections)}
        return LabSnapshot(name, self.backend, state,
                           dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))

    def _service_dirs(self) -> frozenset[str]:
        """Folders of the work directory that running services own (the DC's KDC): not part
        of a snapshot, never rewritten by restore()."""
        if self.kdc is not None and self.kdc.dir is not None:
            return frozenset({os.path.relpath(self.kdc.dir, self.workdir)})
        return frozenset()

    def restore(self, snapshot: LabSnapshot) -> None:
        """The nodes and files exactly as at snapshot(), then the network follows (sync)."""
        if snapshot.backend != self.backend:
            raise ValueError(f"a {snapshot.backend} snapshot cannot restore a {self.backend} lab")
        state = snapshot.state
        state["files"].restore()
        fresh = state["nodes"].thaw()
        self.nodes.clear()
        self.nodes.update(fresh)
        self.host_connections, self.gateway_connections = state["counters"]
        self._gateway_not_emulated = None
        snapshot.restores += 1
        self.sync()

    def probe_setup(self, profile: ClientProfile, *, usable_window: float | None = None,
                    adaptive_floor: float | None = None, overall_timeout: float = 30.0
                    ) -> tuple[ProbeTarget, ProbeOptions]:
        """The probe as the client machine would run this client program now."""
        settings = self.client.client_settings()
        effective = profile
        if profile.os_security:
            requested = profile.requested_protocols
            if not settings.nla_capable:
                requested &= ~(Protocol.HYBRID | Protocol.HYBRID_EX)
            effective = profile.with_overrides(
                requested_protocols=int(requested),
                tls_min=settings.tls_min or profile.tls_min,
                tls_max=settings.tls_max or profile.tls_max,
                credssp_version=settings.credssp_version if settings.nla_capable else None,
                allow_encryption_oracle=settings.allow_encryption_oracle,
            )

        user, password = self.spec.user
        target = ProbeTarget(settings.connection_target or self.host.fqdn, RDP_PORT, user,
                             password, self.spec.domain)
        options = ProbeOptions(effective, trust_pem=settings.trusted_ca_pem,
                               clock_offset=settings.clock_offset, connect=self.client_connect,
                               resolve=settings.resolve_or_raise, usable_window=usable_window,
                               adaptive_floor=adaptive_floor, overall_timeout=overall_timeout,
                               kerberos=self.kerberos_client())
        if settings.gateway:
            from ..gateway.probe_support import gateway_connector

            # Through the RD Gateway: the client resolves and reaches the gateway, and hands
            # the computer name, unresolved, to the gateway (which resolves it itself).
            options.connect = gateway_connector(f"https://{settings.gateway}", target, options,
                                                connect=self.client_connect,
                                                resolve=settings.resolve_or_raise)
            options.resolve = None
        return target, options

    def probe(self, profile: ClientProfile, *, usable_window: float | None = None,
              adaptive_floor: float | None = None, overall_timeout: float = 30.0) -> ProbeResult:
        self.sync()
        self._gateway_not_emulated = None
        target, options = self.probe_setup(profile, usable_window=usable_window,
                                           adaptive_floor=adaptive_floor,
                                           overall_timeout=overall_timeout)
        started = time.monotonic()
        result = run_probe(target, options)
        self.settle(started)
        if self._gateway_not_emulated is not None:
            raise self._gateway_not_emulated
        return result

