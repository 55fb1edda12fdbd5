"""The loopback backend: every node in this process, RDP over 127.0.0.1.

Faithful for everything above TCP. Of the network faults it does only what the kernel does for
it on loopback: a host that does not listen (or a firewall that rejects) gives a real RST. A
silent drop, MTU and path faults need the netns backend and are reported as not emulated.

With an RD Gateway node, the emulated gateway listens on its own loopback port while the model
says it serves (TSGateway running) and its firewall lets 443 in; connect() maps the gateway's
model address and port onto it, as it maps the host's.
"""

from __future__ import annotations

import socket
from pathlib import Path

from ..gateway.server import GatewayServer
from ..host.server import EmulatedHost, listen
from ..windows.node import WindowsNode
from .base import ADDRESSES, GATEWAY_PORT, Lab, NotEmulated
from .contract import ClientEndpoint, GatewayEndpoint
from .definition import LabSpec


class LoopbackLab(Lab):
    backend = "loopback"
    trainable = True

    @classmethod
    def default_jobs(cls, cores: int) -> int:
        """Three workers per core (at most 8): a cell is CPU work, or a wait (a stalled
        session's window) that another worker's cell fills (bench_matrix.py: 2 workers 14 s,
        4 9 s, 6 8 s for the default matrix on 2 cores)."""
        return max(1, min(8, cores * 3))

    def __init__(self, spec: LabSpec, workdir: Path, nodes: dict[str, WindowsNode]) -> None:
        super().__init__(spec, workdir, nodes)
        self._host: EmulatedHost | None = None
        self._port = 0
        self._closed_port: socket.socket | None = None  # bound, never listening: a sure RST
        self._gateway: GatewayServer | None = None
        self._gateway_listener: socket.socket | None = None
        self._gateway_port = 0

    def start(self) -> None:
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        self._closed_port = hole
        self.start_domain()
        self.sync()

    def _listen(self) -> None:
        sock = listen("127.0.0.1", self._port)
        self._port = sock.getsockname()[1]
        self._host = EmulatedHost(self.host_policy, on_event=self.host_event, idle_timeout=15)
        self._host.start(sock)

    def _unlisten(self) -> None:
        if self._host is not None:
            self._host.stop()
            self._host = None

    def _gateway_listen(self) -> None:
        sock = listen("127.0.0.1", self._gateway_port)
        self._gateway_port = sock.getsockname()[1]
        self._gateway_listener = sock
        self._gateway = self.serve_gateway(sock)

    def _gateway_unlisten(self) -> None:
        server, self._gateway = self._gateway, None
        listener, self._gateway_listener = self._gateway_listener, None
        if server is not None:
            server.stop()
        if listener is not None:
            listener.close()

    def sync(self) -> None:
        host = self.host
        verdict = host.firewall_verdict()
        want = host.is_listening() and verdict == "allow"
        if want and self._host is None:
            self._listen()
        elif not want and self._host is not None:
            self._unlisten()
        gateway = self.gateway
        if gateway is not None:
            want = self.gateway_serving() and gateway.firewall_verdict(GATEWAY_PORT) == "allow"
            if want and self._gateway is None:
                self._gateway_listen()
            elif not want and self._gateway is not None:
                self._gateway_unlisten()

    @property
    def gateway_server(self) -> GatewayServer | None:
        """The emulated RD Gateway while the model serves (its log has the gateway's events)."""
        return self._gateway

    @property
    def host_server(self) -> EmulatedHost | None:
        """The emulated host while the model listens (its stats count activations)."""
        return self._host

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        host = self.host
        target = ("127.0.0.1", self._closed_port.getsockname()[1]) if self._closed_port else None
        if address == ADDRESSES["host"] and port == host.listening_port():
            verdict = host.firewall_verdict(port)
            if verdict == "drop":
                raise NotEmulated("a firewall that silently drops SYNs needs the netns backend",
                                  needs="netns")
            if self._host is not None:
                target = ("127.0.0.1", self._port)
        gateway = self.gateway
        if gateway is not None and address == ADDRESSES["gateway"] and port == GATEWAY_PORT:
            if self.gateway_serving() and gateway.firewall_verdict(port) == "drop":
                raise NotEmulated("a firewall that silently drops SYNs needs the netns backend",
                                  needs="netns")
            if self._gateway is not None:
                target = ("127.0.0.1", self._gateway_port)
        if target is None:
            raise ConnectionRefusedError(f"{address}:{port}")
        sock = socket.create_connection(target, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def xfreerdp_endpoint(self) -> tuple[str, int, list[str] | None, str]:
        """Where the client's own resolution leads, mapped onto loopback as connect() does."""
        name, address = self.client_target()
        closed = self._closed_port.getsockname()[1] if self._closed_port else 1
        host = self.host
        if (address == ADDRESSES["host"] and self._host is not None
                and host.firewall_verdict(host.listening_port()) == "allow"):
            return "127.0.0.1", self._port, None, name
        return "127.0.0.1", closed, None, name

    def xfreerdp_gateway(self) -> tuple[str, int, str] | None:
        """(address, port, name in the client's settings) of the RD Gateway a real xfreerdp on
        the client would use (`/g:address:port`, `/v:<computer name>`), None for direct."""
        gateway_name = self.client.client_settings().gateway
        if not gateway_name:
            return None
        name = gateway_name.rsplit(":", 1)[0] if gateway_name.count(":") == 1 else gateway_name
        address = self.client.client_settings().resolve(name)
        if address == ADDRESSES["gateway"] and self._gateway is not None:
            return "127.0.0.1", self._gateway_port, name
        closed = self._closed_port.getsockname()[1] if self._closed_port else 1
        return "127.0.0.1", closed, name

    def client_endpoint(self) -> ClientEndpoint:
        """In this process's network: the client's names map onto loopback ports (a real
        client gets them through a private hosts file)."""
        address, port, _, name = self.xfreerdp_endpoint()
        gateway = self.xfreerdp_gateway()
        return ClientEndpoint(address, port, name, None,
                              GatewayEndpoint(*gateway) if gateway is not None else None)

    @classmethod
    def lacks(cls, requirement: str) -> str | None:
        if requirement == "netns":
            return "needs the netns backend (kernel network faults)"
        return None

    def close(self) -> None:
        self._gateway_unlisten()
        self._unlisten()
        if self._closed_port is not None:
            self._closed_port.close()
            self._closed_port = None
        self.stop_domain()
