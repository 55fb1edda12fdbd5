"""The emulated RD Gateway: TLS, HTTP + NTLM, then the MS-TSGU tunnel, relaying to a target.

One thread per accepted connection does TLS (over memory BIOs, harness.rdp.tls) and the HTTP
exchange. Then either that thread runs the session (WebSocket: both directions on one
connection), or, for the HTTP transport, the RDG_OUT_DATA connection is parked under its
RDG-Connection-Id until the matching RDG_IN_DATA arrives, whose thread then runs the session with
both. A session is a single select() loop over the client connection(s) and the target socket, so
no TLS object is ever used by two threads. The policy is read once per accepted connection.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.rdp import tsgu
from harness.rdp.errors import ProtocolFailure, RdpError
from harness.rdp.events import HostLog
from harness.rdp.ntlm import host_acceptor
from harness.rdp.server_config import CredentialUnavailable
from harness.rdp.tls import TlsEndpoint, server_context

from .policy import GatewayPolicy, GatewayPolicySource

Connect = Callable[[str, int, float], socket.socket]

# Microsoft-Windows-TerminalServices-Gateway event ids the log entries stand for.
EVENT_CAP_OK, EVENT_CAP_FAILED, EVENT_RAP_FAILED = 200, 201, 301
EVENT_CONNECTED, EVENT_DISCONNECTED = 302, 303


def default_connect(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


class _ClientConn:
    """One accepted client connection with its TLS endpoint; blocking reads bounded by timeout."""

    def __init__(self, sock: socket.socket, tls: TlsEndpoint, timeout: float) -> None:
        self.sock, self.tls, self.timeout = sock, tls, timeout
        self.leftover = b""
        sock.settimeout(timeout)

    def flush(self) -> None:
        out = self.tls.outgoing()
        if out:
            self.sock.sendall(out)

    def handshake(self) -> None:
        try:
            while not self.tls.do_handshake():
                self.flush()
                raw = self.sock.recv(65536)
                if not raw:
                    raise ConnectionError("client closed during the TLS handshake")
                self.tls.feed(raw)
        finally:
            with contextlib.suppress(OSError):
                self.flush()
        # the client's first request may have come in the same read as its Finished
        self.leftover = self.tls.read()

    def read_some(self) -> bytes | None:
        """Plaintext after one raw read (may be b''); None at EOF."""
        raw = self.sock.recv(65536)
        if not raw:
            return None
        self.tls.feed(raw)
        data = self.tls.read()
        self.flush()
        return data

    def read_head(self) -> bytes | None:
        """The next HTTP head, keeping what follows it in `leftover`; None at EOF."""
        heads = tsgu.HeadBuffer()
        head = heads.feed(self.leftover)
        while head is None:
            data = self.read_some()
            if data is None:
                return None
            head = heads.feed(data)
        self.leftover = heads.leftover
        return head

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _peer_closed(sock: socket.socket) -> bool:
    """The peer closed its side (EOF waiting, nothing else): without consuming anything."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


@dataclass
class _Parked:
    """An authenticated RDG_OUT_DATA connection waiting for its RDG_IN_DATA."""

    conn: _ClientConn
    user: str
    domain: str
    taken: threading.Event = field(default_factory=threading.Event)


class GatewayServer:
    """A threaded RD Gateway on a listening socket the caller owns (and closes)."""

    def __init__(
        self,
        listener: socket.socket,
        policy: GatewayPolicySource | GatewayPolicy,
        *,
        connect: Connect = default_connect,
        timeout: float = 10.0,
        idle_timeout: float = 300.0,
        log: Callable[[HostLog], None] | None = None,
    ) -> None:
        self._listener = listener
        self._policy: GatewayPolicySource = (
            (lambda: policy) if isinstance(policy, GatewayPolicy) else policy
        )
        self._connect = connect
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._log_sink = log
        self.log: list[HostLog] = []
        self._lock = threading.Lock()
        self._parked: dict[str, _Parked] = {}
        self._threads: list[threading.Thread] = []
        self._started: dict[threading.Thread, float] = {}  # connection thread -> when accepted
        self._sockets: set[socket.socket] = set()
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._next_id = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> GatewayServer:
        self._listener.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept_loop, name="rdg-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection this server holds, join its threads.

        The listener is shut down (not closed: the caller owns it) so a thread blocked in
        accept() wakes at once."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        deadline = time.monotonic() + timeout
        for t in [self._acceptor, *self._threads]:
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))

    def wait_idle(self, since: float, timeout: float = 2.0) -> bool:
        """Wait (at most `timeout`) until every connection accepted at or after `since`
        (time.monotonic()) has ended and written its log entries; True when they all did.

        The lab calls it after its client closed: the gateway's "disconnected" entry (303) then
        belongs to the stage whose connection it ends, not to whichever stage runs next."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = [t for t, at in self._started.items() if at >= since]
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _note(self, message: str, event_id: int | None = None, **detail: object) -> None:
        entry = HostLog(message, event_id, dict(detail))
        with self._lock:
            self.log.append(entry)
        if self._log_sink is not None:
            self._log_sink(entry)

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.add(s)

    def _untrack_close(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(s)
        with contextlib.suppress(OSError):
            s.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, peer = self._listener.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except TimeoutError:
                continue
            except OSError:
                return
            self._track(sock)
            t = threading.Thread(target=self._serve, args=(sock, peer), daemon=True,
                                 name=f"rdg-conn-{peer[1]}")
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
                self._started = {x: self._started.get(x, time.monotonic())
                                 for x in self._threads}
            t.start()

    # -- one connection -----------------------------------------------------------------------

    def _serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        handed_off = False
        try:
            handed_off = self._serve_http(sock, peer)
        except (OSError, RdpError) as exc:
            if not self._stop.is_set():
                self._note(f"connection from {peer[0]} ended: {exc}", peer=peer[0])
        finally:
            if not handed_off:
                self._untrack_close(sock)

    def _serve_http(self, sock: socket.socket, peer: tuple[str, int]) -> bool:
        """True when the connection was handed to another thread (a parked OUT channel)."""
        policy = self._policy()
        try:
            if policy.load_credential is None:
                raise CredentialUnavailable("no gateway certificate configured")
            cred = policy.load_credential()
            ctx = server_context(cred.cert_pem, cred.key_pem, policy.tls_min, policy.tls_max)
        except (CredentialUnavailable, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", str(exc))
            self._note(f"gateway certificate unusable: {reason}", 36870, peer=peer[0])
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                sock.recv(4096)  # the ClientHello, then abort as Schannel does
            return False
        conn = _ClientConn(sock, TlsEndpoint(ctx, server_side=True), self._timeout)
        try:
            conn.handshake()
        except ProtocolFailure as exc:
            self._note(f"TLS handshake failed: {exc.reason}", peer=peer[0])
            return False
        http = tsgu.GatewayHttpServer(
            functools.partial(host_acceptor, policy.users, domain=policy.domain,
                              computer_name=policy.computer_name, dns_domain=policy.dns_domain),
            websocket_allowed=policy.websocket_allowed, http_allowed=policy.http_allowed)
        while not self._stop.is_set():
            head = conn.read_head()
            if head is None:
                return False
            step = http.receive_head(head)
            opened = step.opened
            if step.note:
                who = {"user": opened.user} if opened is not None else {}
                self._note(step.note, peer=peer[0], **who)
            if step.reply:
                conn.send(step.reply)
            if step.close:
                return False
            if opened is None:
                continue
            if opened.method == tsgu.RDG_OUT:
                return self._open_out(conn, opened, policy, peer)
            self._open_in(conn, opened, policy, peer)
            return False
        return False

    def _open_out(self, conn: _ClientConn, opened: tsgu.ChannelAccepted, policy: GatewayPolicy,
                  peer: tuple[str, int]) -> bool:
        """True when the OUT channel was parked and taken by its IN channel's thread."""
        user = (opened.user, opened.domain)
        if opened.websocket:
            _Session(self, policy, user, peer, conn, conn, conn.leftover, websocket=True).run()
            return False
        parked = _Parked(conn, *user)
        conn_id = opened.connection_id
        with self._lock:
            self._parked[conn_id] = parked
        deadline = time.monotonic() + self._timeout
        closed = False
        while time.monotonic() < deadline and not self._stop.is_set():
            if parked.taken.wait(0.02):
                return True
            if _peer_closed(conn.sock):  # the client gave up before its IN channel came
                closed = True
                break
        with self._lock:
            if self._parked.get(conn_id) is parked:
                del self._parked[conn_id]
        if parked.taken.is_set():  # taken between the wait and the lock
            return True
        self._note("RDG_OUT_DATA closed before its RDG_IN_DATA came" if closed
                   else "RDG_OUT_DATA without a matching RDG_IN_DATA", peer=peer[0])
        return False

    def _open_in(self, conn: _ClientConn, opened: tsgu.ChannelAccepted, policy: GatewayPolicy,
                 peer: tuple[str, int]) -> None:
        deadline = time.monotonic() + self._timeout
        parked = None
        while parked is None and time.monotonic() < deadline and not self._stop.is_set():
            with self._lock:
                parked = self._parked.pop(opened.connection_id, None)
                if parked is not None:
                    parked.taken.set()
            if parked is None:
                time.sleep(0.02)
        if parked is None:
            self._note("RDG_IN_DATA without a matching RDG_OUT_DATA", peer=peer[0])
            return
        user = (parked.user, parked.domain)
        try:
            _Session(self, policy, user, peer, conn, parked.conn, conn.leftover,
                     websocket=False).run()
        finally:
            self._untrack_close(parked.conn.sock)


class _Session:
    """The tunnel once HTTP is done: TSGU packets from the client, policy decisions, relay."""

    def __init__(
        self,
        server: GatewayServer,
        policy: GatewayPolicy,
        user: tuple[str, str],
        peer: tuple[str, int],
        inbound: _ClientConn,
        outbound: _ClientConn,
        initial: bytes,
        *,
        websocket: bool,
    ) -> None:
        self.server, self.policy, self.peer = server, policy, peer
        self.user, self.domain = user
        self.inbound, self.outbound, self.websocket = inbound, outbound, websocket
        self.machine = tsgu.TsguServer()
        self.chunks = tsgu.ChunkedDecoder()
        self.frames = tsgu.WsDecoder(masked=True)
        self.initial = initial
        self.target: socket.socket | None = None
        self.target_name = ""
        self.client_name = ""
        self.done = False
        self.connected = False  # 302 written: 303 follows however the tunnel ends
        self.closing_since: float | None = None
        self.sent = self.received = 0

    def _note(self, message: str, event_id: int | None = None, **detail: object) -> None:
        base = {"user": self.user, "client": self.client_name, "peer": self.peer[0]}
        self.server._note(message, event_id, **base, **detail)

    def run(self) -> None:
        try:
            self._feed_client(self.initial)
            self._flush()
            last = time.monotonic()
            while not self.done and not self.server._stop.is_set():
                socks = [self.inbound.sock]
                if self.outbound is not self.inbound:
                    socks.append(self.outbound.sock)
                if self.target is not None:
                    socks.append(self.target)
                readable, _, _ = select.select(socks, [], [], 0.25)
                now = time.monotonic()
                if readable:
                    last = now
                elif now - last > self.server._idle_timeout:
                    self._note("session idle, closing")
                    break
                if self.closing_since is not None and now - self.closing_since > 2.0:
                    break
                for s in readable:
                    self._on_readable(s)
                    if self.done:
                        break
                self._flush()
        except (OSError, RdpError) as exc:
            if not self.server._stop.is_set():
                self._note(f"session ended: {exc}")
        finally:
            if self.target is not None:
                self.server._untrack_close(self.target)
            if self.connected:  # whichever side closed first, as RD Gateway logs it
                self._note(f"disconnected from {self.target_name}", EVENT_DISCONNECTED,
                           sent=self.sent, received=self.received)
            self.inbound.close()
            if self.outbound is not self.inbound:
                self.outbound.close()

    def _on_readable(self, s: socket.socket) -> None:
        if s is self.target:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._target_gone()
                return
            self.received += len(data)
            self.machine.send_data(data)
            return
        conn = self.inbound if s is self.inbound.sock else self.outbound
        plain = conn.read_some()
        if plain is None:
            self.done = True
            return
        if conn is self.inbound:
            self._feed_client(plain)

    def _target_gone(self) -> None:
        assert self.target is not None
        self.server._untrack_close(self.target)
        self.target = None
        if self.machine.state == "open":
            self.machine.close(tsgu.S_OK)
            self.closing_since = time.monotonic()
        else:
            self.done = True

    def _feed_client(self, plain: bytes) -> None:
        if not plain:
            return
        if self.websocket:
            for frame in self.frames.feed(plain):
                if frame.opcode == tsgu.WS_BINARY:
                    self.machine.receive_data(frame.payload)
                elif frame.opcode == tsgu.WS_PING:
                    self.outbound.send(tsgu.encode_ws_frame(tsgu.WS_PONG, frame.payload, mask=None))
                elif frame.opcode == tsgu.WS_CLOSE:
                    self.outbound.send(tsgu.encode_ws_frame(tsgu.WS_CLOSE, frame.payload[:2],
                                                            mask=None))
                    self.done = True
        else:
            self.machine.receive_data(self.chunks.feed(plain))
            if self.chunks.finished:
                self.done = True
        self._handle_events()

    def _flush(self) -> None:
        packets = self.machine.packets_to_send()
        if not packets:
            return
        if self.websocket:
            wire = b"".join(tsgu.encode_ws_frame(tsgu.WS_BINARY, p, mask=None) for p in packets)
        else:
            wire = b"".join(packets)
        self.outbound.send(wire)
        if self.machine.state in ("failed", "closed"):
            self.done = True

    def _handle_events(self) -> None:
        m = self.machine
        while (event := m.next_event()) is not None:
            if isinstance(event, tsgu.HandshakeRequested):
                m.respond_handshake(tsgu.S_OK)
            elif isinstance(event, tsgu.TunnelCreateRequested):
                caps = event.request.caps & (
                    tsgu.HTTP_CAPABILITY_IDLE_TIMEOUT | tsgu.HTTP_CAPABILITY_MESSAGING_SERVICE_MSG
                )
                m.respond_tunnel(tsgu.S_OK, tunnel_id=self._tunnel_id(), caps=caps)
            elif isinstance(event, tsgu.TunnelAuthRequested):
                self.client_name = event.request.client_name
                self._authorize_tunnel()
            elif isinstance(event, tsgu.ChannelCreateRequested):
                self._create_channel(event.request)
            elif isinstance(event, tsgu.DataReceived) and self.target is not None:
                self.sent += len(event.data)
                self.target.sendall(event.data)
            elif isinstance(event, tsgu.ChannelClosed):
                self.done = True

    def _tunnel_id(self) -> int:
        with self.server._lock:
            self.server._next_id += 1
            return self.server._next_id

    def _authorize_tunnel(self) -> None:
        if not self.policy.user_allowed(self.user, self.domain):
            self._note(f"{self.domain}\\{self.user} does not meet the CAP", EVENT_CAP_FAILED)
            self.machine.respond_tunnel_auth(tsgu.E_PROXY_NAP_ACCESSDENIED)
            return
        self._note(f"{self.domain}\\{self.user} met the CAP", EVENT_CAP_OK)
        self.machine.respond_tunnel_auth(
            tsgu.S_OK, redir_flags=self.policy.redir_flags,
            idle_timeout=self.policy.idle_timeout_minutes,
        )

    def _create_channel(self, request: tsgu.ChannelCreate) -> None:
        names = [n for n in (*request.resources, *request.alt_resources) if n]
        allowed = [n for n in names
                   if self.policy.resource_allowed(n, request.port, self.user, self.domain)]
        if request.protocol != 3 or not allowed:
            self._note(f"resource {names[:1]} port {request.port} denied by the RAP",
                       EVENT_RAP_FAILED, resources=names, port=request.port)
            self.machine.respond_channel(tsgu.E_PROXY_RAP_ACCESSDENIED)
            return
        errors: list[str] = []
        if not self.policy.host_reachable:
            errors.append("gateway cannot reach the target network")
        else:
            for name in allowed:
                try:
                    target = self.server._connect(name, request.port, self.policy.connect_timeout)
                except OSError as exc:
                    errors.append(f"{name}:{request.port}: {exc.strerror or exc}")
                    continue
                self.server._track(target)
                self.target, self.target_name = target, f"{name}:{request.port}"
                break
        if self.target is None:
            self._note(f"could not connect to {allowed[0]}:{request.port}", errors=errors)
            self.machine.respond_channel(tsgu.E_PROXY_TS_CONNECTFAILED)
            return
        self.target.settimeout(self.server._timeout)
        self._note(f"connected to {self.target_name}", EVENT_CONNECTED)
        self.connected = True
        self.machine.respond_channel(tsgu.S_OK, channel_id=int.from_bytes(os.urandom(2), "big"))
