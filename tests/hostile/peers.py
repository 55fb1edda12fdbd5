"""Misbehaving peers on loopback.

`HostileServer` is the real emulated host's protocol core until the connection reaches the stage
under attack, then it misbehaves there in one of these ways:

- ``stall``: stops sending and reading (the socket stays open);
- ``trickle``: sends garbage one byte every 50 ms;
- ``oversize``: sends a length claim far over the budget of that stage's framing;
- ``garbage``: sends bytes that are no PDU of that stage;
- ``reset``: resets the connection (RST);
- ``wrong_pdu``: sends a well-formed PDU that does not belong there;
- ``corrupt_record``: sends a TLS record that does not decrypt (stages after TLS).

Client-side attacks on the host are plain functions returning an open socket.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator

from harness.host.policy import HostPolicy
from harness.host.server import listen
from harness.rdp import events as ev
from harness.rdp.server import ServerConnection
from harness.rdp.tpkt import encode_tpkt
from harness.rdp.x224 import ConnectionRequest, Protocol

BEHAVIOURS = ("stall", "trickle", "oversize", "garbage", "reset", "wrong_pdu")
PROBE_STAGES = ("tcp", "negotiation", "tls", "credssp", "mcs", "licensing")

# an X.224 Connection Confirm with a TPKT length claim of 65535 and nothing after it
TPKT_CLAIM = b"\x03\x00\xff\xff"
TSREQUEST_100MB = b"\x30\x84\x05\xf5\xe1\x00"  # SEQUENCE claiming 100,000,000 bytes
TSREQUEST_16MB = b"\x30\x84\x01\x00\x00\x00"
# a TLS ServerHello record header claiming 2^16-1 bytes, far over the 2^14+2048 TLS maximum
TLS_RECORD_CLAIM = b"\x16\x03\x03\xff\xff"
WRONG_PDU = encode_tpkt(b"\x02\xf0\x80" + b"\x68\x00\x01\x03\xeb\x70\x00")  # MCS SDrq, too early


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class HostileServer:
    """Serves one misbehaviour at one stage to every client, in a thread, until closed."""

    def __init__(self, policy: HostPolicy, stage: str, behaviour: str,
                 *, hold: float = 30.0) -> None:
        self.policy, self.stage, self.behaviour, self.hold = policy, stage, behaviour, hold
        self._listener = listen("127.0.0.1", 0)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._accept = threading.Thread(target=self._loop, daemon=True, name="hostile-server")
        self._accept.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._stop.set()
        self._accept.join(5)
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(5)
        self._listener.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(self.hold)
            if self.stage == "tcp":
                self._attack(sock, None)
                return
            conn = ServerConnection(self.policy)
            patch = getattr(self, "patch_send", None)
            if patch is not None:
                conn._send = patch.__get__(conn)  # type: ignore[method-assign]
            while not self._stop.is_set():
                while (event := conn.next_event()) is not None:
                    if isinstance(event, ev.StageFailed):
                        return
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
                if self._reached(conn) and self._ready(conn):
                    self._attack(sock, conn)
                    return
                if conn.should_close:
                    return
                data = sock.recv(65536)
                if not data:
                    return
                conn.receive_data(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _reached(self, conn: ServerConnection) -> bool:
        from harness.rdp.events import STAGES

        if self.stage not in STAGES or conn.stage not in STAGES:
            return False
        return STAGES.index(conn.stage) >= STAGES.index(self.stage)

    def _ready(self, conn: ServerConnection) -> bool:
        """Attack once the stage has begun on the server's side (its first bytes are due)."""
        if self.stage == "negotiation":
            return True
        if self.stage == "tls":
            return conn._tls is not None  # the Connection Confirm has gone out
        return True

    def _encrypt(self, conn: ServerConnection | None, data: bytes) -> bytes:
        if conn is not None and conn._tls is not None and conn._tls.handshake_done:
            conn._tls.write(data)
            return conn._tls.outgoing()
        return data

    def _attack(self, sock: socket.socket, conn: ServerConnection | None) -> None:
        b = self.behaviour
        deadline = time.monotonic() + self.hold
        if b == "reset":
            _reset(sock)
            return
        if b == "stall":
            self._stop.wait(self.hold)
            return
        if b == "trickle":
            while time.monotonic() < deadline and not self._stop.is_set():
                sock.sendall(self._encrypt(conn, b"\x03") if conn and conn._tls else b"\x03")
                self._stop.wait(0.05)
            return
        if b == "garbage":
            sock.sendall(self._encrypt(conn, bytes(range(256)) * 64))
        elif b == "oversize":
            sock.sendall(self._oversize(conn))
        elif b == "wrong_pdu":
            sock.sendall(self._encrypt(conn, WRONG_PDU))
        elif b == "corrupt_record":
            sock.sendall(b"\x17\x03\x03\x00\x40" + bytes(64))
        self._stop.wait(self.hold)

    def _oversize(self, conn: ServerConnection | None) -> bytes:
        if self.stage in ("tcp", "negotiation"):
            return TPKT_CLAIM
        if self.stage == "tls":
            return TLS_RECORD_CLAIM
        if self.stage == "credssp":
            return self._encrypt(conn, TSREQUEST_100MB)
        return self._encrypt(conn, TPKT_CLAIM)


@contextlib.contextmanager
def hostile_server(policy: HostPolicy, stage: str, behaviour: str,
                   hold: float = 30.0) -> Iterator[HostileServer]:
    server = HostileServer(policy, stage, behaviour, hold=hold)
    try:
        yield server
    finally:
        server.close()


def big_tsrequest_server(policy: HostPolicy, size: int) -> HostileServer:
    """A server that answers the client's first TSRequest with a real `size`-byte TSRequest."""
    server = HostileServer(policy, "credssp", "stall")
    body = b"\x04\x84" + (size - 12).to_bytes(4, "big") + bytes(size - 12)
    blob = b"\x30\x84" + len(body).to_bytes(4, "big") + body

    def attack(sock: socket.socket, conn: ServerConnection | None) -> None:
        assert conn is not None
        sock.sendall(server._encrypt(conn, blob))
        server._stop.wait(server.hold)

    server._attack = attack  # type: ignore[method-assign]
    return server


# -- hostile clients of the host -------------------------------------------------------------


def connection_request() -> bytes:
    return ConnectionRequest(int(Protocol.SSL | Protocol.HYBRID), "mstshash=mallory").encode()


def tls_client(port: int, timeout: float = 10.0) -> ssl.SSLSocket:
    """Connect, negotiate HYBRID and finish TLS: what a client has before CredSSP."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.sendall(connection_request())
    cc = b""
    while len(cc) < 19:
        chunk = raw.recv(19 - len(cc))
        if not chunk:
            raise ConnectionError("host closed before the Connection Confirm")
        cc += chunk
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(raw)


def hold_idle(port: int) -> socket.socket:
    """A socket that connects and says nothing (a held pre-authentication connection)."""
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def slowloris(port: int, stop: threading.Event, interval: float = 0.5) -> Callable[[], None]:
    """Start sending a Connection Request one byte per `interval`; returns a joiner."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = connection_request()

    def run() -> None:
        with sock:
            for b in data:
                if stop.wait(interval):
                    return
                try:
                    sock.send(bytes([b]))
                except OSError:
                    return
            stop.wait()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return lambda: t.join(5)


class TlsOnlyServer:
    """Negotiates HYBRID and completes TLS with the given certificate, then reads and says
    nothing (the probe meets the certificate and its own CredSSP step)."""

    def __init__(self, cert_pem: bytes, key_pem: bytes) -> None:
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="rdplab-hostile-")
        cert, key = f"{self._dir.name}/c.pem", f"{self._dir.name}/k.pem"
        with open(cert, "wb") as f:
            f.write(cert_pem)
        with open(key, "wb") as f:
            f.write(key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self._listener = listen("127.0.0.1", 0)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _loop(self) -> None:
        from harness.rdp.x224 import ConnectionConfirm

        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                sock.settimeout(5)
                sock.recv(4096)
                sock.sendall(ConnectionConfirm(selected_protocol=int(Protocol.HYBRID)).encode())
                tls = self.ctx.wrap_socket(sock, server_side=True)
                while tls.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                sock.close()

    def __enter__(self) -> TlsOnlyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        self._dir.cleanup()


# -- mutations of real messages -------------------------------------------------------------

LONG_AV_FLAGS = b"\x06\x00\x05\x00\x02\x00\x00\x00\x00"  # MsvAvFlags with a 5-byte value


def with_long_av_flags(challenge: bytes) -> bytes:
    """An NTLM CHALLENGE with a 5-byte MsvAvFlags put in front of its target info."""
    info_len = int.from_bytes(challenge[40:42], "little")
    info_off = int.from_bytes(challenge[44:48], "little")
    assert info_off + info_len == len(challenge), "target info is expected last"
    new_len = info_len + len(LONG_AV_FLAGS)
    head = bytearray(challenge[:info_off])
    head[40:44] = new_len.to_bytes(2, "little") * 2
    return bytes(head) + LONG_AV_FLAGS + challenge[info_off:]


def _long_flags_token(token: bytes) -> bytes:
    """The CHALLENGE in a negoToken given a long MsvAvFlags, raw NTLM or inside SPNEGO."""
    import dataclasses

    from harness.rdp import spnego

    if token[:8] == b"NTLMSSP\x00":
        return with_long_av_flags(token) if token[8:12] == b"\x02\x00\x00\x00" else token
    resp = spnego.decode_token(token)
    inner = getattr(resp, "response_token", None)
    if not inner or inner[8:12] != b"\x02\x00\x00\x00":
        return token
    return dataclasses.replace(resp, response_token=with_long_av_flags(inner)).encode()


def long_av_flags_server(policy: HostPolicy) -> HostileServer:
    """The real host, except that its NTLM CHALLENGE carries a 5-byte MsvAvFlags."""
    from harness.rdp.credssp import TSRequest

    server = HostileServer(policy, "never", "stall")
    original = ServerConnection._send

    def send(self: ServerConnection, data: bytes) -> None:
        if self.stage == "credssp" and data[:1] == b"\x30":
            req = TSRequest.decode(data)
            if req.nego_tokens:
                req.nego_tokens = [_long_flags_token(req.nego_tokens[0])]
                data = req.encode()
        original(self, data)

    server.patch_send = send  # type: ignore[attr-defined]
    return server


class ScriptedGateway:
    """An HTTPS 'RD Gateway' answering each request head with `respond(request_head)`."""

    def __init__(self, cert_pem: bytes, key_pem: bytes,
                 respond: Callable[[bytes], bytes]) -> None:
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="rdplab-hostile-")
        cert, key = f"{self._dir.name}/c.pem", f"{self._dir.name}/k.pem"
        with open(cert, "wb") as f:
            f.write(cert_pem)
        with open(key, "wb") as f:
            f.write(key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.respond = respond
        self._listener = listen("127.0.0.1", 0)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(5)
            tls = self.ctx.wrap_socket(sock, server_side=True)
            buf = b""
            while not self._stop.is_set():
                chunk = tls.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    tls.sendall(self.respond(head + b"\r\n\r\n"))
        except OSError:
            pass
        finally:
            sock.close()

    def __enter__(self) -> ScriptedGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for t in self._threads:
            t.join(5)
        self._listener.close()
        self._dir.cleanup()


def ntlm_gateway_responder(users: dict[str, str],
                           mutate: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """401 with NTLM, then the acceptor's CHALLENGE passed through `mutate`."""
    import base64

    from harness.rdp.ntlm import NtlmAcceptor
    from harness.rdp.tsgu import parse_ntlm_value, parse_request

    def respond(head: bytes) -> bytes:
        request = parse_request(head)
        token = parse_ntlm_value(request.header("Authorization"))
        if token is None:
            return (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\n"
                    b"Content-Length: 0\r\n\r\n")
        acceptor = NtlmAcceptor(users, nb_domain="LAB", nb_computer="RDGW",
                                dns_domain="lab.test", dns_computer="rdgw.lab.test")
        challenge = acceptor.step(token) or b""
        value = base64.b64encode(mutate(challenge))
        return (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM " + value +
                b"\r\nContent-Length: 0\r\n\r\n")

    return respond


class HostileClient:
    """The probe's real client until it reaches `stage` against a host, then one misbehaviour
    there (stall, trickle, oversize, garbage, reset, wrong_pdu); returns when the host closes
    or `hold` passes. `closed_after` is how long the host took to drop it after the attack."""

    def __init__(self, port: int, stage: str, behaviour: str, hold: float = 10.0) -> None:
        self.port, self.stage, self.behaviour, self.hold = port, stage, behaviour, hold
        self.closed_after: float | None = None
        self.reached = False

    def run(self) -> HostileClient:
        from harness.rdp.client import ClientConfig, ClientConnection
        from harness.rdp.events import STAGES

        conn = ClientConnection(ClientConfig(username="alice", password="Secret1!",
                                             cert_policy="ignore", target_name="localhost"))
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.hold)
        try:
            if self.stage != "tcp":
                conn.start()
                while STAGES.index(conn.stage) < STAGES.index(self.stage) and not conn.closed:
                    out = conn.data_to_send()
                    if out:
                        sock.sendall(out)
                    data = sock.recv(65536)
                    if not data:
                        return self
                    conn.receive_data(data)
                    while conn.next_event() is not None:
                        pass
            self.reached = True
            self._attack(sock, conn)
        except OSError:
            pass
        finally:
            sock.close()
        return self

    def _encrypt(self, conn: object, data: bytes) -> bytes:
        tls = getattr(conn, "_tls", None)
        if tls is not None and tls.handshake_done:
            tls.write(data)
            return tls.outgoing()
        return data

    def _attack(self, sock: socket.socket, conn: object) -> None:
        b = self.behaviour
        t0 = time.monotonic()
        if b == "reset":
            _reset(sock)
            self.closed_after = 0.0
            return
        if b == "garbage":
            sock.sendall(self._encrypt(conn, bytes(range(256)) * 64))
        elif b == "oversize":
            claim = TSREQUEST_100MB if self.stage == "credssp" else TPKT_CLAIM
            sock.sendall(self._encrypt(conn, claim + bytes(4096)))
        elif b == "wrong_pdu":
            sock.sendall(self._encrypt(conn, WRONG_PDU))
        sock.settimeout(0.05 if b == "trickle" else self.hold)
        deadline = t0 + self.hold
        while time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    break
            except TimeoutError:
                if b == "trickle":
                    sock.sendall(self._encrypt(conn, b"\x03"))
                continue
            except OSError:
                break
        else:
            return
        self.closed_after = time.monotonic() - t0
