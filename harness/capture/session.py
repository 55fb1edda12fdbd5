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

    def flow(self, server: tuple[str, int]) -> TcpFlow:
        flow = TcpFlow((CLIENT_ADDRESS, next(self.ports)), server)
        self.flows.append(flow)
        return flow

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


def wrap_stream(stream: Any, address: str, port: int, *, via_gateway: bool = False) -> Any:
    """The probe's transport, recorded when a capture is active (host side: the model address
    of the host, the port the client asked for, 3389)."""
    capture = _active.get()
    if capture is None:
        return stream
    server = HOST_ADDRESS if via_gateway else _model_address(address, HOST_ADDRESS)
    return RecordingStream(stream, capture.flow((server, port)))


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
        info.update(capture.write())
