"""Recording a probe connection: `probe_capture(directory, label)` makes the probe's streams
recorded (`wrap_stream`, called where the probe opens its transport) and its TLS sessions log
their secrets (`keylog_path`, given to the client's configuration), then writes one pcap and
one key log for the probe's connections. Outside a capture both are no-ops."""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import itertools
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pcap import TcpFlow, pcapng_bytes

CLIENT_ADDRESS = "10.213.1.2"  # the lab's model addresses (harness.lab.base.ADDRESSES)
HOST_ADDRESS = "10.213.2.2"
GATEWAY_ADDRESS = "10.213.3.2"
_active: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("rdplab_capture",
                                                                         default=None)
_names = itertools.count(1)


@dataclass
class Capture:
    directory: Path
    label: str
    stem: str
    flows: list[TcpFlow] = field(default_factory=list)
    ports: itertools.count = field(default_factory=lambda: itertools.count(49700))

    @property
    def keylog(self) -> Path:
        return self.directory / f"{self.stem}.keys"

    @property
    def pcap(self) -> Path:
        return self.directory / f"{self.stem}.pcapng"

    relays: list[threading.Thread] = field(default_factory=list)

    def flow(self, server: tuple[str, int], client: str = CLIENT_ADDRESS) -> TcpFlow:
        flow = TcpFlow((client, next(self.ports)), server)
        self.flows.append(flow)
        return flow

    def relay(self, real: socket.socket, server: tuple[str, int]) -> socket.socket:
        """A TCP socket pair on loopback in front of `real`, pumped by a thread that records
        both directions: for a transport whose bytes this process cannot see otherwise (an
        ssl.SSLSocket to the RD Gateway). Resets and timeouts reach the client as before."""
        with socket.create_server(("127.0.0.1", 0)) as listener:
            near = socket.create_connection(listener.getsockname(), timeout=5)
            far, _ = listener.accept()
        near.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        near.settimeout(real.gettimeout())
        flow = self.flow(server)
        flow.connect(time.time())
        pump = threading.Thread(target=_pump, args=(far, real, flow), daemon=True,
                                name="rdplab-capture-relay")
        pump.start()
        self.relays.append(pump)
        return near

    def write(self) -> dict[str, Any]:
        frames = [f for flow in self.flows for f in flow.frames]
        if not self.keylog.exists():
            self.keylog.write_text("")
        self.pcap.write_bytes(pcapng_bytes(frames, self.keylog.read_bytes()))
        return {"pcap": str(self.pcap), "keylog": str(self.keylog), "label": self.label,
                "connections": len(self.flows), "frames": len(frames)}


class RecordingStream:
    """A probe transport whose bytes are also framed into a TcpFlow."""

    def __init__(self, inner: Any, flow: TcpFlow) -> None:
        self._inner, self._flow = inner, flow
        flow.connect(time.time())

    def sendall(self, data: bytes, /) -> Any:
        result = self._inner.sendall(data)
        self._flow.data(time.time(), True, bytes(data))
        return result

    def recv(self, n: int, /) -> bytes:
        data = self._inner.recv(n)
        if data:
            self._flow.data(time.time(), False, data)
        else:
            self._flow.close(time.time(), by_client=False)
        return data

    def settimeout(self, t: float | None, /) -> None:
        self._inner.settimeout(t)

    def close(self) -> None:
        self._flow.close(time.time())
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _model_address(address: str, default: str) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return default
    return default if ip.is_loopback else str(ip)


RELAY_LIMIT = 120.0  # seconds a relay may live (every probe stage is bounded far below)


def _pump(far: socket.socket, real: socket.socket, flow: TcpFlow) -> None:
    """Copy bytes between the client's end of the pair and the real connection, recording
    them; end on either side's close (a reset is passed on as a reset)."""
    deadline = time.monotonic() + RELAY_LIMIT
    real.settimeout(None)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([far, real], [], [], 0.5)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    if sock is real:  # the gateway reset: so does the client's end
                        far.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
                    return
                if not data:
                    flow.close(time.time(), by_client=sock is far)
                    return
                (real if sock is far else far).sendall(data)
                flow.data(time.time(), sock is far, data)
    except OSError:
        return
    finally:
        far.close()
        real.close()


def capture_connect(connect: Any) -> Any:
    """`connect(address, port, timeout)` whose connections are relayed and recorded while a
    capture is active (the RD Gateway leg, on its model address and port 443)."""

    def connect_recorded(address: str, port: int, timeout: float) -> Any:
        sock = connect(address, port, timeout)
        capture = _active.get()
        if capture is None:
            return sock
        return capture.relay(sock, (_model_address(address, GATEWAY_ADDRESS), port))

    return connect_recorded


def wrap_stream(stream: Any, address: str, port: int, *, via_gateway: bool = False) -> Any:
    """The probe's transport, recorded when a capture is active: host side on the model
    address of the host and the port the client asked for (3389). Through an RD Gateway the
    stream is the tunnel's payload, which the host receives from the gateway."""
    capture = _active.get()
    if capture is None:
        return stream
    if via_gateway:
        return RecordingStream(stream, capture.flow((HOST_ADDRESS, port), GATEWAY_ADDRESS))
    return RecordingStream(stream, capture.flow((_model_address(address, HOST_ADDRESS), port)))


def keylog_path() -> str | None:
    """Where the probe's TLS secrets go: the active capture's key log, else $SSLKEYLOGFILE
    (as browsers and curl do), else nowhere."""
    capture = _active.get()
    return str(capture.keylog) if capture is not None else os.environ.get("SSLKEYLOGFILE")


@contextlib.contextmanager
def probe_capture(directory: str | Path | None, label: str) -> Iterator[dict[str, Any]]:
    """Record the probe connections made inside; the yielded dict gets the files' paths."""
    info: dict[str, Any] = {}
    if directory is None:
        yield info
        return
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"probe-{os.getpid()}-{next(_names)}-{label}"
    capture = Capture(folder, label, stem)
    token = _active.set(capture)
    try:
        yield info
    finally:
        _active.reset(token)
        for pump in capture.relays:
            pump.join(timeout=2.0)
        info.update(capture.write())
