"""The probe's side of an RD Gateway: `open_tunnel` returns a socket-like tunnel to the target.

It speaks as FreeRDP 2.11 does (rdg.c): RDG_OUT_DATA with NTLM over HTTP (401 round), either
upgraded to a WebSocket or kept as the HTTP transport's OUT stream (200, 10-byte seed) with a
second, chunked RDG_IN_DATA connection; then handshake, tunnel, tunnel authorization and channel.
Stages recorded: gateway_tcp, gateway_tls, gateway_http, gateway_tunnel. Not thread-safe: one
thread uses a tunnel at a time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509

from harness.capture.session import keylog_path
from harness.rdp import tsgu
from harness.rdp.errors import RdpError
from harness.rdp.limits import MAX_HTTP_BODY, check_claim
from harness.rdp.ntlm import NtlmInitiator
from harness.rdp.waits import adaptive_limit

Record = Callable[[str, str, float, dict[str, Any]], None]
Transport = Literal["http", "websocket", "auto"]
Connect = Callable[[str, int, float], socket.socket]
# Verifies the gateway's certificate (DER) as the client would: None when acceptable, else the
# OpenSSL X509_V_ERR_* code and its message (harness.rdp.certverify gives both).
CertCheck = Callable[[bytes], tuple[int, str] | None]


class GatewayError(RdpError):
    """Opening the tunnel failed at `stage` (gateway_tcp, _tls, _http or _tunnel).

    `event` is the failure class a client profile maps to codes: refused, timeout, unreachable,
    cert_expired, cert_not_yet_valid, cert_untrusted, handshake_failed, http_<status>,
    websocket_refused, bad_upgrade, tsgu:<E_PROXY_...>, closed or failed; `detail` is what was
    recorded for the stage.
    """

    def __init__(
        self,
        stage: str,
        reason: str,
        http_status: int | None = None,
        tsgu_error: int | None = None,
        *,
        event: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        extra = f" (HTTP {http_status})" if http_status is not None else ""
        if tsgu_error is not None:
            extra += f" ({tsgu.status_name(tsgu_error)})"
        super().__init__(f"{stage}: {reason}{extra}")
        self.stage, self.reason = stage, reason
        self.http_status, self.tsgu_error = http_status, tsgu_error
        if event is None:
            if tsgu_error is not None:
                event = f"tsgu:{tsgu.status_name(tsgu_error)}"
            elif http_status is not None:
                event = f"http_{http_status}"
            else:
                event = "failed"
        self.event = event
        self.detail = dict(detail or {})


class _Stages:
    """Times stages and reports them through `record`."""

    def __init__(self, record: Record | None) -> None:
        self._record = record
        self.stage = ""
        self._t0 = time.monotonic()

    def begin(self, stage: str) -> None:
        self.stage, self._t0 = stage, time.monotonic()

    def ok(self, **detail: Any) -> None:
        if self._record is not None:
            self._record(self.stage, "ok", time.monotonic() - self._t0, detail)

    def fail(
        self,
        reason: str,
        http_status: int | None = None,
        tsgu_error: int | None = None,
        stage: str | None = None,
        event: str | None = None,
        **detail: Any,
    ) -> GatewayError:
        stage = stage or self.stage
        if http_status is not None:
            detail["http_status"] = http_status
        if tsgu_error is not None:
            detail["tsgu_error"] = tsgu.status_name(tsgu_error)
        err = GatewayError(stage, reason, http_status, tsgu_error, event=event, detail=detail)
        if self._record is not None:
            info = {"reason": reason, "event": err.event, **detail}
            self._record(stage, "failed", time.monotonic() - self._t0, info)
        return err


# X509_V_ERR_* codes; anything else (self-signed, unknown issuer, bad signature) is untrusted
_VERIFY_EVENTS = {9: "cert_not_yet_valid", 10: "cert_expired", 62: "cert_name_mismatch",
                  64: "cert_name_mismatch"}


def _connect_event(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "dns_failed"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "blocked"  # WSAEACCES: a local filter refused the connect
    if exc.errno == errno.EINVAL:
        return "socket_error"  # WSAEINVAL: the client's own network stack is broken
    return "failed"


class _HttpConn:
    """One TLS connection to the gateway: HTTP heads, then raw bytes."""

    def __init__(self, tls: ssl.SSLSocket) -> None:
        self.tls = tls
        self.buffer = b""

    def recv(self) -> bytes:
        if self.buffer:
            data, self.buffer = self.buffer, b""
            return data
        return self.tls.recv(65536)

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.tls.recv(65536)
            if not chunk:
                raise ConnectionError("gateway closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_response(self) -> tsgu.HttpResponse:
        heads = tsgu.HeadBuffer()
        head = heads.feed(self.buffer)
        while head is None:
            chunk = self.tls.recv(65536)
            if not chunk:
                raise ConnectionError("gateway closed the connection before answering")
            head = heads.feed(chunk)
        self.buffer = heads.leftover
        return tsgu.parse_response(head)

    def skip_body(self, response: tsgu.HttpResponse) -> None:
        length = (response.header("Content-Length") or "").strip()
        if length.isascii() and length.isdigit():
            self.read_exact(check_claim("HTTP body", int(length), MAX_HTTP_BODY))


def _context(
    ssl_context: ssl.SSLContext | None, cafile: str | None, verify: bool
) -> ssl.SSLContext:
    if ssl_context is not None:
        return ssl_context
    if verify:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    keylog = keylog_path()  # a capture's key log (--pcap), or $SSLKEYLOGFILE
    if keylog:
        ctx.keylog_filename = keylog
    return ctx


def _tls_detail(tls: ssl.SSLSocket) -> dict[str, Any]:
    detail: dict[str, Any] = {"version": tls.version(), "cipher": (tls.cipher() or ("?",))[0]}
    der = tls.getpeercert(binary_form=True)
    if der:
        cert = x509.load_der_x509_certificate(der)
        detail.update(subject=cert.subject.rfc4514_string(),
                      not_after=cert.not_valid_after_utc.isoformat())
    return detail


@dataclass
class _Opener:
    """The steps of open_tunnel, sharing settings and the stage recorder."""

    gateway_host: str
    gateway_port: int
    target_host: str
    target_port: int
    username: str
    password: str
    domain: str
    transport: Transport
    ctx: ssl.SSLContext
    server_hostname: str | None
    timeout: float
    record: Record | None
    workstation: str
    connect_fn: Connect | None = None
    cert_check: CertCheck | None = None
    # With a floor, the TLS handshake waits rdp.waits.TURN_FACTOR x the TCP connect's round
    # trip (within [floor, timeout]), as the probe's own stages do (ProbeOptions).
    adaptive_floor: float | None = None
    conn_id: str = field(default_factory=tsgu.new_connection_id)

    def __post_init__(self) -> None:
        self.stages = _Stages(self.record)
        self.host_header = self.server_hostname or self.gateway_host

    def connect(self, channel: str) -> _HttpConn:
        """TCP and TLS to the gateway; records gateway_tcp/gateway_tls for the OUT channel."""
        out = channel == "out"
        if out:
            self.stages.begin("gateway_tcp")
        started = time.monotonic()
        try:
            if self.connect_fn is not None:
                sock = self.connect_fn(self.gateway_host, self.gateway_port, self.timeout)
            else:
                sock = socket.create_connection((self.gateway_host, self.gateway_port),
                                                self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise self.stages.fail(f"TCP connect to the gateway failed: {reason}",
                                   stage="gateway_tcp", event=_connect_event(exc),
                                   channel=channel) from exc
        if out:
            self.stages.ok(peer=f"{self.gateway_host}:{self.gateway_port}")
            self.stages.begin("gateway_tls")
        if self.adaptive_floor is not None:
            turn = time.monotonic() - started
            sock.settimeout(adaptive_limit(self.timeout, self.adaptive_floor, turn))
        try:
            tls = self.ctx.wrap_socket(sock, server_hostname=self.host_header)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise self.stages.fail(
                f"certificate verification failed: {exc.verify_message}", stage="gateway_tls",
                event=_VERIFY_EVENTS.get(exc.verify_code, "cert_untrusted"),
                channel=channel, verify_code=exc.verify_code,
            ) from exc
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            # a handshake that stalls (no server flight through an MTU black hole) is a
            # timeout, which clients treat differently from a refused handshake
            event = "timeout" if isinstance(exc, TimeoutError) else "handshake_failed"
            raise self.stages.fail(f"TLS handshake failed: {reason}", stage="gateway_tls",
                                   event=event, channel=channel) from exc
        tls.settimeout(self.timeout)
        if self.cert_check is not None:
            der = tls.getpeercert(binary_form=True) or b""
            problem = self.cert_check(der)
            if problem is not None:
                code, message = problem
                tls.close()
                raise self.stages.fail(
                    f"certificate verification failed: {message}", stage="gateway_tls",
                    event=_VERIFY_EVENTS.get(code, "cert_untrusted"), channel=channel,
                    verify_code=code,
                )
        if out:
            self.stages.ok(**_tls_detail(tls))
        return _HttpConn(tls)

    def authenticate(self, conn: _HttpConn, method: str, ws_key: str | None) -> tsgu.HttpResponse:
        """The NTLM round: NEGOTIATE → 401 CHALLENGE → AUTHENTICATE; returns the last answer."""
        ntlm = NtlmInitiator(self.username, self.password, self.domain, self.workstation)
        fail = self.stages.fail
        try:
            negotiate = ntlm.step(None)
            req = tsgu.rdg_request(method, self.host_header, self.conn_id,
                                   authorization=tsgu.ntlm_authorization(negotiate),
                                   websocket_key=ws_key)
            conn.tls.sendall(req.encode())
            first = conn.read_response()
            if first.status == 404:
                raise fail("the gateway does not offer the HTTP transport", 404)
            token = tsgu.response_ntlm_token(first) if first.status == 401 else None
            if token is None:
                raise fail(f"expected a 401 with an NTLM challenge, got {first.status}",
                           first.status)
            conn.skip_body(first)
            authenticate = ntlm.step(token)
            req = tsgu.rdg_request(method, self.host_header, self.conn_id,
                                   authorization=tsgu.ntlm_authorization(authenticate),
                                   websocket_key=ws_key)
            conn.tls.sendall(req.encode())
            return conn.read_response()
        except GatewayError:
            raise
        except RdpError as exc:
            raise fail(f"NTLM/HTTP exchange failed: {exc}") from exc
        except OSError as exc:
            raise fail(f"connection lost during HTTP authentication: {exc}",
                       event="closed") from exc

    def open_http(self) -> GatewayTunnel:
        ws_key = tsgu.new_websocket_key() if self.transport != "http" else None
        out = self.connect("out")
        self.stages.begin("gateway_http")
        try:
            resp = self.authenticate(out, tsgu.RDG_OUT, ws_key)
            if resp.status == 101 and ws_key is not None:
                if resp.header("Sec-WebSocket-Accept") != tsgu.websocket_accept(ws_key):
                    raise self.stages.fail("bad Sec-WebSocket-Accept in the upgrade", 101,
                                           event="bad_upgrade")
                self.stages.ok(transport="websocket", status=101, user=self.username)
                return GatewayTunnel(out, None, websocket=True)
            if resp.status != 200:
                conn_reason = {401: "authentication failed", 403: "access denied"}
                raise self.stages.fail(conn_reason.get(resp.status, "unexpected HTTP answer"),
                                       resp.status)
            if self.transport == "websocket":
                raise self.stages.fail("WebSocket upgrade refused", resp.status,
                                       event="websocket_refused")
            out.read_exact(tsgu.SEED_LENGTH)  # the seed entity body (FreeRDP skips 10 bytes)
            inbound = self.connect("in")
            resp = self.authenticate(inbound, tsgu.RDG_IN, None)
            if resp.status != 200:
                raise self.stages.fail("RDG_IN_DATA refused", resp.status, channel="in")
            inbound.skip_body(resp)
            again = tsgu.rdg_request(tsgu.RDG_IN, self.host_header, self.conn_id, chunked=True)
            inbound.tls.sendall(again.encode())
        except GatewayError:
            out.tls.close()
            raise
        except OSError as exc:
            out.tls.close()
            raise self.stages.fail(f"connection lost: {exc}", event="closed") from exc
        self.stages.ok(transport="http", status=200, user=self.username)
        return GatewayTunnel(out, inbound, websocket=False)

    def open_channel(self, tunnel: GatewayTunnel) -> None:
        self.stages.begin("gateway_tunnel")
        m = tunnel.machine
        m.start()
        tunnel._flush()
        detail: dict[str, Any] = {}
        while m.state not in ("open", "failed"):
            try:
                events = tunnel._pull()
            except (OSError, RdpError) as exc:
                tunnel.close()
                raise self.stages.fail(f"tunnel setup broke off in {m.state}: {exc}",
                                       event="closed") from exc
            for event in events:
                if isinstance(event, tsgu.GatewayRefused):
                    tunnel.close()
                    raise self.stages.fail(f"{event.step} refused: {event.name}",
                                           tsgu_error=event.status, step=event.step)
                if isinstance(event, tsgu.TunnelCreated):
                    detail["tunnel_id"] = event.tunnel_id
                elif isinstance(event, tsgu.ChannelOpened):
                    detail["channel_id"] = event.channel_id
                elif isinstance(event, tsgu.DataReceived):
                    tunnel._data += event.data
            if tunnel._eof and m.state != "open":
                tunnel.close()
                raise self.stages.fail(f"gateway closed the connection in {m.state}",
                                       event="closed")
        self.stages.ok(target=f"{self.target_host}:{self.target_port}",
                       transport="websocket" if tunnel.websocket else "http", **detail)


class GatewayTunnel:
    """A socket-like byte stream to the target through the gateway."""

    def __init__(self, out: _HttpConn, inbound: _HttpConn | None, *, websocket: bool) -> None:
        self._out, self._in = out, inbound
        self.websocket = websocket
        self.transport = "websocket" if websocket else "http"
        self.machine: tsgu.TsguClient = tsgu.TsguClient("", 0)
        self._frames = tsgu.WsDecoder(masked=False)
        self._data = b""
        self._eof = False
        self._closed = False
        self.service_messages: list[str] = []
        self.close_status: int | None = None

    def _send_wire(self, packets: list[bytes]) -> None:
        if self.websocket:
            wire = b"".join(
                tsgu.encode_ws_frame(tsgu.WS_BINARY, p, mask=os.urandom(4)) for p in packets
            )
            self._out.tls.sendall(wire)
        else:
            assert self._in is not None
            self._in.tls.sendall(b"".join(tsgu.encode_chunk(p) for p in packets))

    def _flush(self) -> None:
        packets = self.machine.packets_to_send()
        if packets:
            self._send_wire(packets)

    def _pull(self) -> list[tsgu.TsguEvent]:
        """One read from the OUT stream; the events it produced (and any answers flushed)."""
        raw = self._out.recv()
        if not raw:
            self._eof = True
            return []
        if self.websocket:
            for frame in self._frames.feed(raw):
                if frame.opcode == tsgu.WS_BINARY:
                    self.machine.receive_data(frame.payload)
                elif frame.opcode == tsgu.WS_PING:
                    pong = tsgu.encode_ws_frame(tsgu.WS_PONG, frame.payload, mask=os.urandom(4))
                    self._out.tls.sendall(pong)
                elif frame.opcode == tsgu.WS_CLOSE:
                    self._eof = True
        else:
            self.machine.receive_data(raw)
        events: list[tsgu.TsguEvent] = []
        while (event := self.machine.next_event()) is not None:
            events.append(event)
            if isinstance(event, tsgu.ServiceMessageReceived):
                self.service_messages.append(event.message)
            elif isinstance(event, tsgu.ChannelClosed):
                self.close_status = event.status
                self._eof = True
        self._flush()
        return events

    # -- the socket-like surface ----------------------------------------------------------------

    def sendall(self, data: bytes) -> None:
        if self._closed or self.machine.state != "open":
            raise BrokenPipeError("the gateway channel is not open")
        self.machine.send_data(bytes(data))
        self._flush()

    def recv(self, n: int) -> bytes:
        """Up to n bytes from the target; b'' once the channel or connection closed."""
        while not self._data and not self._eof and not self._closed:
            try:
                events = self._pull()
            except RdpError as exc:
                raise ConnectionAbortedError(f"gateway stream broken: {exc}") from exc
            for event in events:
                if isinstance(event, tsgu.DataReceived):
                    self._data += event.data
        data, self._data = self._data[:n], self._data[n:]
        return data

    def settimeout(self, timeout: float | None) -> None:
        self._out.tls.settimeout(timeout)
        if self._in is not None:
            self._in.tls.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._out.tls.gettimeout()

    def close(self) -> None:
        """Close the channel politely (CLOSE_CHANNEL, WebSocket close or last chunk), then TLS."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, RdpError):
            self.settimeout(1.0)
            if self.machine.state == "open":
                self.machine.close()
                self._flush()
            if self.websocket:
                close = tsgu.encode_ws_frame(tsgu.WS_CLOSE, b"\x03\xe8", mask=os.urandom(4))
                self._out.tls.sendall(close)
            elif self._in is not None:
                self._in.tls.sendall(b"0\r\n\r\n")
        for conn in (self._out, self._in):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.tls.close()

    def __enter__(self) -> GatewayTunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tunnel(
    gateway_host: str,
    gateway_port: int,
    target_host: str,
    target_port: int,
    *,
    username: str,
    password: str,
    domain: str = "",
    transport: Transport = "auto",
    cafile: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    verify: bool = True,
    server_hostname: str | None = None,
    timeout: float = 10.0,
    record: Record | None = None,
    client_name: str = "RDPLAB-PROBE",
    workstation: str = "",
    connect: Connect | None = None,
    cert_check: CertCheck | None = None,
    adaptive_floor: float | None = None,
) -> GatewayTunnel:
    """Open an RD Gateway channel to target_host:target_port; GatewayError on failure.

    transport: "websocket" insists on the upgrade, "http" never asks for it, "auto" asks and falls
    back to the HTTP transport when the gateway answers 200 (as FreeRDP does). TLS: `ssl_context`
    wins; else a verifying context with `cafile` (verify=True) or one that accepts anything.
    `cert_check` replaces OpenSSL's verification (the handshake accepts any certificate, then
    the check decides, with the client's own clock and trust: the lab's probe). `connect` opens
    the TCP connection to the gateway (default: socket.create_connection; the lab passes the
    client node's stack).
    """
    if transport not in ("http", "websocket", "auto"):
        raise ValueError(f"transport must be http, websocket or auto, not {transport!r}")
    opener = _Opener(
        gateway_host=gateway_host, gateway_port=gateway_port, target_host=target_host,
        target_port=target_port, username=username, password=password, domain=domain,
        transport=transport,
        ctx=_context(ssl_context, cafile, verify and cert_check is None),
        server_hostname=server_hostname, timeout=timeout, record=record, workstation=workstation,
        connect_fn=connect, cert_check=cert_check, adaptive_floor=adaptive_floor,
    )
    tunnel = opener.open_http()
    tunnel.machine = tsgu.TsguClient(target_host, target_port, client_name=client_name)
    opener.open_channel(tunnel)
    return tunnel
