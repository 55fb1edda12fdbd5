"""RD Gateway over HTTP (MS-TSGU HTTP transport), sans-IO: packets, HTTP framing, state machines.

Layout, bottom up:

- the tunnel packets (MS-TSGU 2.2.10) as frozen dataclasses with `encode()`, and `decode_packet`;
  `PacketSplitter` cuts a byte stream into packets;
- HTTP/1.1 heads (requests, responses) as FreeRDP 2.11 writes and reads them, the NTLM
  `Authorization` / `WWW-Authenticate` values, chunked transfer coding (the IN channel) and
  RFC 6455 WebSocket frames (the upgrade variant, masked client to server);
- `TsguClient` and `TsguServer`: the handshake, tunnel, tunnel-authorization and channel steps
  and the data phase, packets in, typed events out, packets to send back.

Nothing here touches a socket; harness/gateway/ drives it. Every parser raises only ParseError
(or StateError for a well-formed packet in the wrong state).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ParseError, StateError
from .wire import Reader, Writer

# -- packet types (MS-TSGU 2.2.5.3.3) -------------------------------------------------------------
PKT_TYPE_HANDSHAKE_REQUEST = 0x1
PKT_TYPE_HANDSHAKE_RESPONSE = 0x2
PKT_TYPE_EXTENDED_AUTH_MSG = 0x3
PKT_TYPE_TUNNEL_CREATE = 0x4
PKT_TYPE_TUNNEL_RESPONSE = 0x5
PKT_TYPE_TUNNEL_AUTH = 0x6
PKT_TYPE_TUNNEL_AUTH_RESPONSE = 0x7
PKT_TYPE_CHANNEL_CREATE = 0x8
PKT_TYPE_CHANNEL_RESPONSE = 0x9
PKT_TYPE_DATA = 0xA
PKT_TYPE_SERVICE_MESSAGE = 0xB
PKT_TYPE_REAUTH_MESSAGE = 0xC
PKT_TYPE_KEEPALIVE = 0xD
PKT_TYPE_CLOSE_CHANNEL = 0x10
PKT_TYPE_CLOSE_CHANNEL_RESPONSE = 0x11

HEADER_LEN = 8
MAX_PACKET = 0x10000 + 64  # a DATA packet carries at most 0xFFFF bytes
MAX_DATA = 0xFFFF

# extended auth (HTTP_EXTENDED_AUTH) and capability / fields-present flags
HTTP_EXTENDED_AUTH_NONE = 0x0
HTTP_EXTENDED_AUTH_SC = 0x1
HTTP_EXTENDED_AUTH_PAA = 0x2
HTTP_EXTENDED_AUTH_SSPI_NTLM = 0x4
HTTP_CAPABILITY_TYPE_QUAR_SOH = 0x1
HTTP_CAPABILITY_IDLE_TIMEOUT = 0x2
HTTP_CAPABILITY_MESSAGING_CONSENT_SIGN = 0x4
HTTP_CAPABILITY_MESSAGING_SERVICE_MSG = 0x8
HTTP_CAPABILITY_REAUTH = 0x10
HTTP_CAPABILITY_UDP_TRANSPORT = 0x20
FREERDP_CLIENT_CAPS = (
    HTTP_CAPABILITY_TYPE_QUAR_SOH
    | HTTP_CAPABILITY_MESSAGING_CONSENT_SIGN
    | HTTP_CAPABILITY_MESSAGING_SERVICE_MSG
)
HTTP_TUNNEL_PACKET_FIELD_PAA_COOKIE = 0x1
HTTP_TUNNEL_PACKET_FIELD_REAUTH = 0x2
HTTP_TUNNEL_RESPONSE_FIELD_TUNNEL_ID = 0x1
HTTP_TUNNEL_RESPONSE_FIELD_CAPS = 0x2
HTTP_TUNNEL_RESPONSE_FIELD_SOH_REQ = 0x4
HTTP_TUNNEL_RESPONSE_FIELD_CONSENT_MSG = 0x10
HTTP_TUNNEL_AUTH_FIELD_SOH = 0x1
HTTP_TUNNEL_AUTH_RESPONSE_FIELD_REDIR_FLAGS = 0x1
HTTP_TUNNEL_AUTH_RESPONSE_FIELD_IDLE_TIMEOUT = 0x2
HTTP_TUNNEL_AUTH_RESPONSE_FIELD_SOH_RESPONSE = 0x4
HTTP_CHANNEL_RESPONSE_FIELD_CHANNELID = 0x1
HTTP_CHANNEL_RESPONSE_FIELD_AUTHNCOOKIE = 0x2
HTTP_CHANNEL_RESPONSE_FIELD_UDPPORT = 0x4
HTTP_TUNNEL_REDIR_ENABLE_ALL = 0x80000000
HTTP_TUNNEL_REDIR_DISABLE_ALL = 0x40000000

# -- status codes (HRESULTs, MS-TSGU 2.2.6 / FreeRDP tsg.h) ---------------------------------------
S_OK = 0
ERROR_ACCESS_DENIED = 0x5
E_PROXY_INTERNALERROR = 0x800759D8
E_PROXY_RAP_ACCESSDENIED = 0x800759DA
E_PROXY_NAP_ACCESSDENIED = 0x800759DB
E_PROXY_TS_CONNECTFAILED = 0x800759DD
E_PROXY_ALREADYDISCONNECTED = 0x800759DF
E_PROXY_CAPABILITYMISMATCH = 0x800759E9
E_PROXY_QUARANTINE_ACCESSDENIED = 0x800759ED
E_PROXY_NOCERTAVAILABLE = 0x800759EE
E_PROXY_COOKIE_BADPACKET = 0x800759F7
E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED = 0x800759F8
E_PROXY_UNSUPPORTED_AUTHENTICATION_METHOD = 0x800759F9
E_PROXY_MAXCONNECTIONSREACHED = 0x000059E6
E_PROXY_NOTSUPPORTED = 0x000059E8
E_PROXY_SESSIONTIMEOUT = 0x000059F6
E_PROXY_CONNECTIONABORTED = 0x000004D4

STATUS_NAMES = {
    value: name
    for name, value in list(globals().items())
    if name.startswith(("E_PROXY_", "S_OK", "ERROR_ACCESS")) and isinstance(value, int)
}


def status_name(code: int) -> str:
    """The symbolic name of a TSGU status, or its hex value."""
    return STATUS_NAMES.get(code, f"0x{code:08X}")


def hresult_failed(code: int) -> bool:
    """FreeRDP 2.11's FAILED(): only codes with the severity bit count as errors."""
    return bool(code & 0x80000000)


# -- small field helpers --------------------------------------------------------------------------


def _utf16z(text: str) -> bytes:
    """UTF-16LE with the terminating NUL, as FreeRDP and mstsc send names."""
    return (text + "\0").encode("utf-16-le", "surrogatepass")


def _write_unicode(w: Writer, text: str) -> None:
    raw = _utf16z(text)
    if len(raw) > 0xFFFF:
        raise ValueError("string too long for HTTP_UNICODE_STRING")
    w.u16le(len(raw)).bytes(raw)


def _read_unicode(r: Reader, what: str) -> str:
    n = r.u16le()
    raw = r.bytes(n)
    if n % 2:
        raise ParseError(what, f"odd UTF-16 length {n}")
    return raw.decode("utf-16-le", "replace").rstrip("\0")


def _write_blob(w: Writer, blob: bytes) -> None:
    if len(blob) > 0xFFFF:
        raise ValueError("blob too long for HTTP_BYTE_BLOB")
    w.u16le(len(blob)).bytes(blob)


def _read_blob(r: Reader) -> bytes:
    return r.bytes(r.u16le())


def _packet(ptype: int, body: bytes) -> bytes:
    return Writer().u16le(ptype).u16le(0).u32le(HEADER_LEN + len(body)).bytes(body).value()


# -- packets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandshakeRequest:
    TYPE: ClassVar[int] = PKT_TYPE_HANDSHAKE_REQUEST
    ver_major: int = 1
    ver_minor: int = 0
    client_version: int = 0
    extended_auth: int = HTTP_EXTENDED_AUTH_NONE

    def encode(self) -> bytes:
        w = Writer().u8(self.ver_major).u8(self.ver_minor).u16le(self.client_version)
        return _packet(self.TYPE, w.u16le(self.extended_auth).value())

    @classmethod
    def parse(cls, r: Reader) -> HandshakeRequest:
        return cls(r.u8(), r.u8(), r.u16le(), r.u16le())


@dataclass(frozen=True)
class HandshakeResponse:
    TYPE: ClassVar[int] = PKT_TYPE_HANDSHAKE_RESPONSE
    error_code: int = S_OK
    ver_major: int = 1
    ver_minor: int = 0
    server_version: int = 0
    extended_auth: int = HTTP_EXTENDED_AUTH_NONE

    def encode(self) -> bytes:
        w = Writer().u32le(self.error_code).u8(self.ver_major).u8(self.ver_minor)
        return _packet(self.TYPE, w.u16le(self.server_version).u16le(self.extended_auth).value())

    @classmethod
    def parse(cls, r: Reader) -> HandshakeResponse:
        return cls(r.u32le(), r.u8(), r.u8(), r.u16le(), r.u16le())


@dataclass(frozen=True)
class TunnelCreate:
    """HTTP_TUNNEL_PACKET; optional fields in the order reauth context, PAA cookie."""

    TYPE: ClassVar[int] = PKT_TYPE_TUNNEL_CREATE
    caps: int = FREERDP_CLIENT_CAPS
    reauth_context: int | None = None
    paa_cookie: bytes | None = None

    def encode(self) -> bytes:
        fields = (HTTP_TUNNEL_PACKET_FIELD_REAUTH if self.reauth_context is not None else 0) | (
            HTTP_TUNNEL_PACKET_FIELD_PAA_COOKIE if self.paa_cookie is not None else 0
        )
        w = Writer().u32le(self.caps).u16le(fields).u16le(0)
        if self.reauth_context is not None:
            w.u64le(self.reauth_context)
        if self.paa_cookie is not None:
            _write_blob(w, self.paa_cookie)
        return _packet(self.TYPE, w.value())

    @classmethod
    def parse(cls, r: Reader) -> TunnelCreate:
        caps, fields = r.u32le(), r.u16le()
        r.skip(2)
        reauth = r.u64le() if fields & HTTP_TUNNEL_PACKET_FIELD_REAUTH else None
        cookie = _read_blob(r) if fields & HTTP_TUNNEL_PACKET_FIELD_PAA_COOKIE else None
        return cls(caps, reauth, cookie)


@dataclass(frozen=True)
class TunnelResponse:
    TYPE: ClassVar[int] = PKT_TYPE_TUNNEL_RESPONSE
    status: int = S_OK
    server_version: int = 0
    tunnel_id: int | None = None
    caps: int | None = None
    soh_nonce: bytes | None = None  # 20 bytes, with soh_server_cert
    soh_server_cert: str = ""
    consent_message: str | None = None

    def encode(self) -> bytes:
        fields = 0
        opt = Writer()
        if self.tunnel_id is not None:
            fields |= HTTP_TUNNEL_RESPONSE_FIELD_TUNNEL_ID
            opt.u32le(self.tunnel_id)
        if self.caps is not None:
            fields |= HTTP_TUNNEL_RESPONSE_FIELD_CAPS
            opt.u32le(self.caps)
        if self.soh_nonce is not None:
            if len(self.soh_nonce) != 20:
                raise ValueError("SoH nonce must be 20 bytes")
            fields |= HTTP_TUNNEL_RESPONSE_FIELD_SOH_REQ
            opt.bytes(self.soh_nonce)
            _write_unicode(opt, self.soh_server_cert)
        if self.consent_message is not None:
            fields |= HTTP_TUNNEL_RESPONSE_FIELD_CONSENT_MSG
            _write_unicode(opt, self.consent_message)
        w = Writer().u16le(self.server_version).u32le(self.status).u16le(fields).u16le(0)
        return _packet(self.TYPE, w.bytes(opt.value()).value())

    @classmethod
    def parse(cls, r: Reader) -> TunnelResponse:
        version, status, fields = r.u16le(), r.u32le(), r.u16le()
        r.skip(2)
        tid = r.u32le() if fields & HTTP_TUNNEL_RESPONSE_FIELD_TUNNEL_ID else None
        caps = r.u32le() if fields & HTTP_TUNNEL_RESPONSE_FIELD_CAPS else None
        nonce, cert = None, ""
        if fields & HTTP_TUNNEL_RESPONSE_FIELD_SOH_REQ:
            nonce, cert = r.bytes(20), _read_unicode(r, "TunnelResponse.serverCert")
        consent = None
        if fields & HTTP_TUNNEL_RESPONSE_FIELD_CONSENT_MSG:
            consent = _read_unicode(r, "TunnelResponse.consentMsg")
        return cls(status, version, tid, caps, nonce, cert, consent)


@dataclass(frozen=True)
class TunnelAuth:
    TYPE: ClassVar[int] = PKT_TYPE_TUNNEL_AUTH
    client_name: str = ""
    soh: bytes | None = None

    def encode(self) -> bytes:
        fields = HTTP_TUNNEL_AUTH_FIELD_SOH if self.soh is not None else 0
        w = Writer().u16le(fields)
        _write_unicode(w, self.client_name)
        if self.soh is not None:
            _write_blob(w, self.soh)
        return _packet(self.TYPE, w.value())

    @classmethod
    def parse(cls, r: Reader) -> TunnelAuth:
        fields = r.u16le()
        name = _read_unicode(r, "TunnelAuth.clientName")
        soh = _read_blob(r) if fields & HTTP_TUNNEL_AUTH_FIELD_SOH else None
        return cls(name, soh)


@dataclass(frozen=True)
class TunnelAuthResponse:
    TYPE: ClassVar[int] = PKT_TYPE_TUNNEL_AUTH_RESPONSE
    status: int = S_OK
    redir_flags: int | None = None
    idle_timeout: int | None = None  # minutes
    soh_response: bytes | None = None

    def encode(self) -> bytes:
        fields = 0
        opt = Writer()
        if self.redir_flags is not None:
            fields |= HTTP_TUNNEL_AUTH_RESPONSE_FIELD_REDIR_FLAGS
            opt.u32le(self.redir_flags)
        if self.idle_timeout is not None:
            fields |= HTTP_TUNNEL_AUTH_RESPONSE_FIELD_IDLE_TIMEOUT
            opt.u32le(self.idle_timeout)
        if self.soh_response is not None:
            fields |= HTTP_TUNNEL_AUTH_RESPONSE_FIELD_SOH_RESPONSE
            _write_blob(opt, self.soh_response)
        w = Writer().u32le(self.status).u16le(fields).u16le(0).bytes(opt.value())
        return _packet(self.TYPE, w.value())

    @classmethod
    def parse(cls, r: Reader) -> TunnelAuthResponse:
        status, fields = r.u32le(), r.u16le()
        r.skip(2)
        redir = r.u32le() if fields & HTTP_TUNNEL_AUTH_RESPONSE_FIELD_REDIR_FLAGS else None
        idle = r.u32le() if fields & HTTP_TUNNEL_AUTH_RESPONSE_FIELD_IDLE_TIMEOUT else None
        soh = _read_blob(r) if fields & HTTP_TUNNEL_AUTH_RESPONSE_FIELD_SOH_RESPONSE else None
        return cls(status, redir, idle, soh)


@dataclass(frozen=True)
class ChannelCreate:
    """HTTP_CHANNEL_PACKET: target names (the first is the resource), port, protocol 3 (TCP)."""

    TYPE: ClassVar[int] = PKT_TYPE_CHANNEL_CREATE
    resources: tuple[str, ...] = ()
    port: int = 3389
    alt_resources: tuple[str, ...] = ()
    protocol: int = 3

    def encode(self) -> bytes:
        w = Writer().u8(len(self.resources)).u8(len(self.alt_resources))
        w.u16le(self.port).u16le(self.protocol)
        for name in (*self.resources, *self.alt_resources):
            _write_unicode(w, name)
        return _packet(self.TYPE, w.value())

    @classmethod
    def parse(cls, r: Reader) -> ChannelCreate:
        n, n_alt, port, proto = r.u8(), r.u8(), r.u16le(), r.u16le()
        names = tuple(_read_unicode(r, "ChannelCreate.resource") for _ in range(n))
        alts = tuple(_read_unicode(r, "ChannelCreate.altResource") for _ in range(n_alt))
        return cls(names, port, alts, proto)


@dataclass(frozen=True)
class ChannelResponse:
    """HTTP_CHANNEL_RESPONSE; optional fields in the order channel id, UDP port, authn cookie."""

    TYPE: ClassVar[int] = PKT_TYPE_CHANNEL_RESPONSE
    status: int = S_OK
    channel_id: int | None = None
    udp_port: int | None = None
    authn_cookie: bytes | None = None

    def encode(self) -> bytes:
        fields = 0
        opt = Writer()
        if self.channel_id is not None:
            fields |= HTTP_CHANNEL_RESPONSE_FIELD_CHANNELID
            opt.u32le(self.channel_id)
        if self.udp_port is not None:
            fields |= HTTP_CHANNEL_RESPONSE_FIELD_UDPPORT
            opt.u16le(self.udp_port)
        if self.authn_cookie is not None:
            fields |= HTTP_CHANNEL_RESPONSE_FIELD_AUTHNCOOKIE
            _write_blob(opt, self.authn_cookie)
        w = Writer().u32le(self.status).u16le(fields).u16le(0).bytes(opt.value())
        return _packet(self.TYPE, w.value())

    @classmethod
    def parse(cls, r: Reader) -> ChannelResponse:
        status, fields = r.u32le(), r.u16le()
        r.skip(2)
        cid = r.u32le() if fields & HTTP_CHANNEL_RESPONSE_FIELD_CHANNELID else None
        udp = r.u16le() if fields & HTTP_CHANNEL_RESPONSE_FIELD_UDPPORT else None
        cookie = _read_blob(r) if fields & HTTP_CHANNEL_RESPONSE_FIELD_AUTHNCOOKIE else None
        return cls(status, cid, udp, cookie)


@dataclass(frozen=True)
class Data:
    TYPE: ClassVar[int] = PKT_TYPE_DATA
    data: bytes = b""

    def encode(self) -> bytes:
        if len(self.data) > MAX_DATA:
            raise ValueError("a DATA packet carries at most 65535 bytes")
        return _packet(self.TYPE, Writer().u16le(len(self.data)).bytes(self.data).value())

    @classmethod
    def parse(cls, r: Reader) -> Data:
        return cls(r.bytes(r.u16le()))


@dataclass(frozen=True)
class ServiceMessage:
    TYPE: ClassVar[int] = PKT_TYPE_SERVICE_MESSAGE
    message: str = ""

    def encode(self) -> bytes:
        w = Writer()
        _write_unicode(w, self.message)
        return _packet(self.TYPE, w.value())

    @classmethod
    def parse(cls, r: Reader) -> ServiceMessage:
        return cls(_read_unicode(r, "ServiceMessage"))


@dataclass(frozen=True)
class ReauthMessage:
    TYPE: ClassVar[int] = PKT_TYPE_REAUTH_MESSAGE
    reauth_context: int = 0

    def encode(self) -> bytes:
        return _packet(self.TYPE, Writer().u64le(self.reauth_context).value())

    @classmethod
    def parse(cls, r: Reader) -> ReauthMessage:
        return cls(r.u64le())


@dataclass(frozen=True)
class Keepalive:
    TYPE: ClassVar[int] = PKT_TYPE_KEEPALIVE

    def encode(self) -> bytes:
        return _packet(self.TYPE, b"")

    @classmethod
    def parse(cls, r: Reader) -> Keepalive:
        return cls()


@dataclass(frozen=True)
class CloseChannel:
    TYPE: ClassVar[int] = PKT_TYPE_CLOSE_CHANNEL
    status: int = S_OK

    def encode(self) -> bytes:
        return _packet(self.TYPE, Writer().u32le(self.status).value())

    @classmethod
    def parse(cls, r: Reader) -> CloseChannel:
        return cls(r.u32le())


@dataclass(frozen=True)
class CloseChannelResponse:
    TYPE: ClassVar[int] = PKT_TYPE_CLOSE_CHANNEL_RESPONSE
    status: int = S_OK

    def encode(self) -> bytes:
        return _packet(self.TYPE, Writer().u32le(self.status).value())

    @classmethod
    def parse(cls, r: Reader) -> CloseChannelResponse:
        return cls(r.u32le())


@dataclass(frozen=True)
class UnknownPacket:
    """A packet type this module does not model (extended auth, future types)."""

    ptype: int
    body: bytes = b""

    def encode(self) -> bytes:
        return _packet(self.ptype, self.body)


Packet = (
    HandshakeRequest
    | HandshakeResponse
    | TunnelCreate
    | TunnelResponse
    | TunnelAuth
    | TunnelAuthResponse
    | ChannelCreate
    | ChannelResponse
    | Data
    | ServiceMessage
    | ReauthMessage
    | Keepalive
    | CloseChannel
    | CloseChannelResponse
    | UnknownPacket
)

_PACKET_CLASSES: dict[int, type] = {
    cls.TYPE: cls
    for cls in (
        HandshakeRequest, HandshakeResponse, TunnelCreate, TunnelResponse, TunnelAuth,
        TunnelAuthResponse, ChannelCreate, ChannelResponse, Data, ServiceMessage, ReauthMessage,
        Keepalive, CloseChannel, CloseChannelResponse,
    )
}


def decode_packet(data: bytes) -> Packet:
    """One whole packet (header included) to its dataclass; trailing bytes are an error."""
    r = Reader(data, "TSGU packet")
    ptype = r.u16le()
    r.skip(2)
    length = r.u32le()
    if length != len(data):
        raise ParseError("TSGU packet", f"packetLength {length} but {len(data)} bytes")
    cls = _PACKET_CLASSES.get(ptype)
    if cls is None:
        return UnknownPacket(ptype, r.rest())
    body = r.sub(r.remaining, cls.__name__)
    packet = cls.parse(body)
    body.expect_end()
    return packet


class PacketSplitter:
    """Cuts a byte stream into whole packets; refuses lengths below 8 or above MAX_PACKET."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buf = bytearray()
        self._max = max_packet

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= HEADER_LEN:
            length = int.from_bytes(self._buf[4:8], "little")
            if length < HEADER_LEN or length > self._max:
                raise ParseError("TSGU packet", f"bad packetLength {length}")
            if len(self._buf) < length:
                break
            out.append(bytes(self._buf[:length]))
            del self._buf[:length]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


# -- HTTP heads -----------------------------------------------------------------------------------

RDG_URI = "/remoteDesktopGateway/"
RDG_OUT = "RDG_OUT_DATA"
RDG_IN = "RDG_IN_DATA"
MAX_HEAD = 64 * 1024
SEED_LENGTH = 10  # bytes of "seed" entity body after the OUT channel's 200 (FreeRDP skips 10)
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Headers = tuple[tuple[str, str], ...]


def _get(headers: Headers, name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: Headers = ()
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        return _get(self.headers, name)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str = ""
    headers: Headers = ()
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        return _get(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def encode(self) -> bytes:
        lines = [f"{self.version} {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _split_head(head: bytes, what: str) -> tuple[str, Headers]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes everything
        raise ParseError(what, str(exc)) from None
    if text.endswith("\r\n\r\n"):
        text = text[:-4]
    lines = text.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ParseError(what, f"malformed header line {line[:60]!r}")
        headers.append((name.strip(), value.strip(" \t")))
    return lines[0], tuple(headers)


def parse_request(head: bytes) -> HttpRequest:
    start, headers = _split_head(head, "HTTP request")
    parts = start.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2].startswith("HTTP/"):
        raise ParseError("HTTP request", f"bad request line {start[:80]!r}")
    return HttpRequest(parts[0], parts[1], headers, parts[2])


def parse_response(head: bytes) -> HttpResponse:
    start, headers = _split_head(head, "HTTP response")
    version, _, rest = start.partition(" ")
    code, _, reason = rest.partition(" ")
    if (not version.startswith("HTTP/") or len(code) != 3 or not code.isascii()
            or not code.isdigit()):
        raise ParseError("HTTP response", f"bad status line {start[:80]!r}")
    return HttpResponse(int(code), reason, headers, version)


class HeadBuffer:
    """Collects bytes until a blank line ends an HTTP head; keeps what follows as `leftover`."""

    def __init__(self, limit: int = MAX_HEAD) -> None:
        self._buf = bytearray()
        self._limit = limit
        self.leftover = b""

    def feed(self, data: bytes) -> bytes | None:
        """The complete head (with its CRLFCRLF) once present, else None."""
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > self._limit:
                raise ParseError("HTTP head", f"no end of head within {self._limit} bytes")
            return None
        head = bytes(self._buf[: end + 4])
        self.leftover = bytes(self._buf[end + 4 :])
        self._buf.clear()
        return head


def new_connection_id() -> str:
    """A braced GUID, as FreeRDP puts in RDG-Connection-Id."""
    raw = os.urandom(16).hex().upper()
    return f"{{{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}}}"


def rdg_request(
    method: str,
    host: str,
    connection_id: str,
    *,
    authorization: str | None = None,
    websocket_key: str | None = None,
    chunked: bool = False,
) -> HttpRequest:
    """A request with FreeRDP 2.11's headers, in its order (http.c http_request_write)."""
    headers: list[tuple[str, str]] = [
        ("Cache-Control", "no-cache"),
        ("Pragma", "no-cache"),
        ("Accept", "*/*"),
        ("User-Agent", "MS-RDGateway/1.0"),
        ("Host", host),
    ]
    if websocket_key is None:
        headers.append(("Connection", "Keep-Alive"))
    else:
        headers += [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-Websocket-Version", "13"),
            ("Sec-Websocket-Key", websocket_key),
        ]
    headers.append(("RDG-Connection-Id", connection_id))
    headers.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", "0"))
    if authorization is not None:
        headers.append(("Authorization", authorization))
    return HttpRequest(method, RDG_URI, tuple(headers))


def is_websocket_upgrade(request: HttpRequest) -> bool:
    upgrade = (request.header("Upgrade") or "").lower()
    connection = (request.header("Connection") or "").lower()
    return upgrade == "websocket" and "upgrade" in connection


def ntlm_authorization(token: bytes) -> str:
    """The value of an Authorization (or WWW-Authenticate) header carrying an NTLM token."""
    return "NTLM " + base64.b64encode(token).decode("ascii")


def parse_ntlm_value(value: str | None) -> bytes | None:
    """The token in an 'NTLM <base64>' value; None for another scheme or a bare 'NTLM'."""
    if not value:
        return None
    scheme, _, param = value.strip().partition(" ")
    if scheme.lower() != "ntlm" or not param.strip():
        return None
    try:
        return base64.b64decode(param.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("NTLM header", "token is not valid base64") from None


def response_ntlm_token(response: HttpResponse) -> bytes | None:
    """The NTLM challenge of a 401, looking at every WWW-Authenticate header."""
    for value in response.header_all("WWW-Authenticate"):
        token = parse_ntlm_value(value)
        if token is not None:
            return token
    return None


# -- chunked transfer coding (the IN channel) -----------------------------------------------------


def encode_chunk(data: bytes) -> bytes:
    """One chunk, as FreeRDP writes each packet on RDG_IN_DATA."""
    return b"%X\r\n" % len(data) + data + b"\r\n"


class ChunkedDecoder:
    """Incremental chunked-body decoder; `finished` after the zero-length last chunk."""

    _MAX_LINE = 1024

    def __init__(self) -> None:
        self._buf = bytearray()
        self._remaining = -1  # -1: expecting a size line; >=0: data bytes left in chunk
        self._need_crlf = False
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while not self.finished:
            if self._need_crlf:
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise ParseError("chunked body", "chunk data not followed by CRLF")
                del self._buf[:2]
                self._need_crlf = False
            elif self._remaining < 0:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > self._MAX_LINE:
                        raise ParseError("chunked body", "chunk size line too long")
                    break
                line = bytes(self._buf[:end]).split(b";", 1)[0].strip()
                del self._buf[: end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise ParseError("chunked body", f"bad chunk size {line[:20]!r}") from None
                if size < 0 or len(line) > 8:
                    raise ParseError("chunked body", f"bad chunk size {line[:20]!r}")
                if size == 0:
                    self.finished = True
                    break
                self._remaining = size
            else:
                take = min(self._remaining, len(self._buf))
                if not take:
                    break
                out += self._buf[:take]
                del self._buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._remaining = -1
                    self._need_crlf = True
        return bytes(out)


# -- WebSocket (RFC 6455) -------------------------------------------------------------------------

WS_CONTINUATION = 0x0
WS_TEXT = 0x1
WS_BINARY = 0x2
WS_CLOSE = 0x8
WS_PING = 0x9
WS_PONG = 0xA
MAX_WS_PAYLOAD = 1 << 20


def new_websocket_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def websocket_accept(key: str) -> str:
    """Sec-WebSocket-Accept for a key (any string: FreeRDP 2.11 sends 15 letters, not base64)."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("latin-1"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    reps = key * (len(payload) // 4 + 1)
    return (int.from_bytes(payload, "big") ^ int.from_bytes(reps[: len(payload)], "big")).to_bytes(
        len(payload), "big"
    )


def encode_ws_frame(opcode: int, payload: bytes, *, mask: bytes | None, fin: bool = True) -> bytes:
    """One frame; `mask` is the 4-byte key a client must use, None for a server frame."""
    w = Writer().u8((0x80 if fin else 0) | (opcode & 0x0F))
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        w.u8(bit | n)
    elif n < 0x10000:
        w.u8(bit | 126).u16be(n)
    else:
        w.u8(bit | 127).u32be(n >> 32).u32be(n & 0xFFFFFFFF)
    if mask is not None:
        if len(mask) != 4:
            raise ValueError("a WebSocket mask is 4 bytes")
        return w.bytes(mask).bytes(_mask(payload, mask)).value()
    return w.bytes(payload).value()


@dataclass(frozen=True)
class WsFrame:
    opcode: int
    payload: bytes
    fin: bool = True


class WsDecoder:
    """Incremental frame decoder. `masked` says what the peer must do: True for frames from a
    client, False for frames from a server (FreeRDP refuses masked server frames)."""

    def __init__(self, *, masked: bool, max_payload: int = MAX_WS_PAYLOAD) -> None:
        self._buf = bytearray()
        self._masked = masked
        self._max = max_payload
        self._fragments: list[bytes] | None = None
        self._fragment_opcode = 0

    def feed(self, data: bytes) -> list[WsFrame]:
        """Complete messages: data frames reassembled, control frames as they come."""
        self._buf += data
        out: list[WsFrame] = []
        while True:
            frame = self._one()
            if frame is None:
                return out
            if frame.opcode >= 0x8:
                out.append(frame)
            elif frame.opcode == WS_CONTINUATION:
                if self._fragments is None:
                    raise ParseError("WebSocket frame", "continuation without a first fragment")
                self._fragments.append(frame.payload)
                if frame.fin:
                    out.append(WsFrame(self._fragment_opcode, b"".join(self._fragments)))
                    self._fragments = None
            else:
                if self._fragments is not None:
                    raise ParseError("WebSocket frame", "new message inside a fragmented one")
                if frame.fin:
                    out.append(frame)
                else:
                    self._fragments, self._fragment_opcode = [frame.payload], frame.opcode

    def _one(self) -> WsFrame | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise ParseError("WebSocket frame", "reserved bits set")
        opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
        if opcode not in (WS_CONTINUATION, WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG):
            raise ParseError("WebSocket frame", f"unknown opcode {opcode:#x}")
        masked, n, pos = bool(b1 & 0x80), b1 & 0x7F, 2
        if masked != self._masked:
            raise ParseError("WebSocket frame", "masked" if masked else "unmasked client frame")
        if n == 126:
            if len(buf) < 4:
                return None
            n, pos = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, pos = int.from_bytes(buf[2:10], "big"), 10
        if opcode >= 0x8 and (n > 125 or not fin):
            raise ParseError("WebSocket frame", "bad control frame")
        if n > self._max:
            raise ParseError("WebSocket frame", f"payload of {n} bytes over the limit")
        key = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            key, pos = bytes(buf[pos : pos + 4]), pos + 4
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos : pos + n])
        del buf[: pos + n]
        return WsFrame(opcode, _mask(payload, key) if masked else payload, fin)


# -- tunnel state machines ------------------------------------------------------------------------

STEPS = ("handshake", "tunnel_create", "tunnel_auth", "channel_create")


@dataclass(frozen=True)
class HandshakeDone:
    server_version: int
    extended_auth: int


@dataclass(frozen=True)
class TunnelCreated:
    tunnel_id: int | None
    caps: int | None
    consent_message: str | None = None


@dataclass(frozen=True)
class TunnelAuthorized:
    redir_flags: int | None
    idle_timeout: int | None


@dataclass(frozen=True)
class ChannelOpened:
    channel_id: int | None


@dataclass(frozen=True)
class GatewayRefused:
    """A response with a failing status: `step` is one of STEPS."""

    step: str
    status: int

    @property
    def name(self) -> str:
        return status_name(self.status)


@dataclass(frozen=True)
class DataReceived:
    data: bytes


@dataclass(frozen=True)
class ServiceMessageReceived:
    message: str


@dataclass(frozen=True)
class KeepaliveReceived:
    pass


@dataclass(frozen=True)
class ChannelClosed:
    """The channel ended: by a CLOSE_CHANNEL from the peer, or the answer to ours."""

    status: int
    by_peer: bool


@dataclass(frozen=True)
class HandshakeRequested:
    request: HandshakeRequest


@dataclass(frozen=True)
class TunnelCreateRequested:
    request: TunnelCreate


@dataclass(frozen=True)
class TunnelAuthRequested:
    request: TunnelAuth


@dataclass(frozen=True)
class ChannelCreateRequested:
    request: ChannelCreate


TsguEvent = (
    HandshakeDone
    | TunnelCreated
    | TunnelAuthorized
    | ChannelOpened
    | GatewayRefused
    | DataReceived
    | ServiceMessageReceived
    | KeepaliveReceived
    | ChannelClosed
    | HandshakeRequested
    | TunnelCreateRequested
    | TunnelAuthRequested
    | ChannelCreateRequested
)


@dataclass
class _Machine:
    state: str = "initial"
    _split: PacketSplitter = field(default_factory=PacketSplitter)
    _events: deque[TsguEvent] = field(default_factory=deque)
    _out: list[bytes] = field(default_factory=list)

    def receive_data(self, data: bytes) -> None:
        """Bytes of the packet stream (already out of their HTTP/WebSocket framing)."""
        for raw in self._split.feed(data):
            self._handle(decode_packet(raw))

    def next_event(self) -> TsguEvent | None:
        return self._events.popleft() if self._events else None

    def packets_to_send(self) -> list[bytes]:
        """Whole packets, one per element (each goes in its own chunk or frame)."""
        out, self._out = self._out, []
        return out

    def send_data(self, data: bytes) -> None:
        if self.state != "open":
            raise StateError(self.state, "data before the channel is open")
        for i in range(0, len(data), MAX_DATA):
            self._out.append(Data(data[i : i + MAX_DATA]).encode())

    def close(self, status: int = S_OK) -> None:
        """Send CLOSE_CHANNEL; a ChannelClosed event follows the peer's answer."""
        if self.state == "open":
            self._out.append(CloseChannel(status).encode())
            self.state = "closing"

    def _emit(self, event: TsguEvent) -> None:
        self._events.append(event)

    def _common(self, packet: Packet) -> bool:
        """Packets either side may get once the channel is open; True when handled."""
        if isinstance(packet, Data):
            if self.state not in ("open", "closing"):
                raise StateError(self.state, "DATA before the channel is open")
            self._emit(DataReceived(packet.data))
        elif isinstance(packet, Keepalive):
            self._emit(KeepaliveReceived())
        elif isinstance(packet, CloseChannel):
            self._out.append(CloseChannelResponse(S_OK).encode())
            self.state = "closed"
            self._emit(ChannelClosed(packet.status, by_peer=True))
        elif isinstance(packet, CloseChannelResponse):
            self.state = "closed"
            self._emit(ChannelClosed(packet.status, by_peer=False))
        else:
            return False
        return True

    def _handle(self, packet: Packet) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class TsguClient(_Machine):
    """The RDG client's side: handshake → tunnel → tunnel auth → channel, then data.

    Each success answer makes it queue the next request itself (as FreeRDP does); a failing
    status ends in GatewayRefused and state 'failed'. Keepalives are echoed.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        client_name: str = "RDPLAB",
        caps: int = FREERDP_CLIENT_CAPS,
        paa_cookie: bytes | None = None,
    ) -> None:
        super().__init__()
        self.target_host = target_host
        self.target_port = target_port
        self.client_name = client_name
        self.caps = caps
        self.paa_cookie = paa_cookie

    def start(self) -> None:
        if self.state != "initial":
            raise StateError(self.state, "start twice")
        ext = HTTP_EXTENDED_AUTH_PAA if self.paa_cookie is not None else HTTP_EXTENDED_AUTH_NONE
        self._out.append(HandshakeRequest(extended_auth=ext).encode())
        self.state = "handshake"

    def _refuse(self, step: str, status: int) -> bool:
        if hresult_failed(status):
            self.state = "failed"
            self._emit(GatewayRefused(step, status))
            return True
        return False

    def _handle(self, packet: Packet) -> None:
        if self._common(packet):
            if isinstance(packet, Keepalive):
                self._out.append(Keepalive().encode())
            return
        expected = {
            "handshake": HandshakeResponse,
            "tunnel_create": TunnelResponse,
            "tunnel_auth": TunnelAuthResponse,
            "channel_create": ChannelResponse,
        }.get(self.state)
        if isinstance(packet, ServiceMessage):
            self._emit(ServiceMessageReceived(packet.message))
            return
        if isinstance(packet, UnknownPacket | ReauthMessage):
            return  # FreeRDP logs and ignores unknown control packets
        if expected is None or not isinstance(packet, expected):
            raise StateError(self.state, f"unexpected {type(packet).__name__}")
        if isinstance(packet, HandshakeResponse):
            if not self._refuse("handshake", packet.error_code):
                self._emit(HandshakeDone(packet.server_version, packet.extended_auth))
                self._out.append(TunnelCreate(self.caps, paa_cookie=self.paa_cookie).encode())
                self.state = "tunnel_create"
        elif isinstance(packet, TunnelResponse):
            if not self._refuse("tunnel_create", packet.status):
                self._emit(TunnelCreated(packet.tunnel_id, packet.caps, packet.consent_message))
                self._out.append(TunnelAuth(self.client_name).encode())
                self.state = "tunnel_auth"
        elif isinstance(packet, TunnelAuthResponse):
            if not self._refuse("tunnel_auth", packet.status):
                self._emit(TunnelAuthorized(packet.redir_flags, packet.idle_timeout))
                self._out.append(ChannelCreate((self.target_host,), self.target_port).encode())
                self.state = "channel_create"
        elif isinstance(packet, ChannelResponse) and not self._refuse(
            "channel_create", packet.status
        ):
            self._emit(ChannelOpened(packet.channel_id))
            self.state = "open"


class TsguServer(_Machine):
    """The RDG server's side: requests come out as *Requested events; the driver decides by
    policy and answers with the respond_* methods, which also move the state on."""

    _ORDER: ClassVar[dict[type, tuple[str, str]]] = {
        HandshakeRequest: ("initial", "handshake"),
        TunnelCreate: ("handshake_done", "tunnel_create"),
        TunnelAuth: ("tunnel_created", "tunnel_auth"),
        ChannelCreate: ("tunnel_authorized", "channel_create"),
    }

    def _handle(self, packet: Packet) -> None:
        if self._common(packet):
            return
        order = self._ORDER.get(type(packet))
        if order is None:
            if isinstance(packet, UnknownPacket | ReauthMessage):
                return
            raise StateError(self.state, f"unexpected {type(packet).__name__} from a client")
        want, pending = order
        if self.state != want:
            raise StateError(self.state, f"{type(packet).__name__} out of order")
        self.state = pending
        event_cls = {
            HandshakeRequest: HandshakeRequested,
            TunnelCreate: TunnelCreateRequested,
            TunnelAuth: TunnelAuthRequested,
            ChannelCreate: ChannelCreateRequested,
        }[type(packet)]
        self._emit(event_cls(packet))

    def _answer(self, pending: str, done: str, packet: Packet, status: int) -> None:
        if self.state != pending:
            raise StateError(self.state, f"no {pending} request to answer")
        self._out.append(packet.encode())
        self.state = "failed" if hresult_failed(status) else done

    def respond_handshake(self, status: int = S_OK, extended_auth: int = 0) -> None:
        response = HandshakeResponse(status, extended_auth=extended_auth)
        self._answer("handshake", "handshake_done", response, status)

    def respond_tunnel(
        self, status: int = S_OK, *, tunnel_id: int | None = 1, caps: int | None = None
    ) -> None:
        if hresult_failed(status):
            tunnel_id = caps = None
        response = TunnelResponse(status, tunnel_id=tunnel_id, caps=caps)
        self._answer("tunnel_create", "tunnel_created", response, status)

    def respond_tunnel_auth(
        self,
        status: int = S_OK,
        *,
        redir_flags: int | None = HTTP_TUNNEL_REDIR_ENABLE_ALL,
        idle_timeout: int | None = 0,
    ) -> None:
        if hresult_failed(status):
            redir_flags = idle_timeout = None
        response = TunnelAuthResponse(status, redir_flags, idle_timeout)
        self._answer("tunnel_auth", "tunnel_authorized", response, status)

    def respond_channel(self, status: int = S_OK, *, channel_id: int | None = 1) -> None:
        response = ChannelResponse(status, None if hresult_failed(status) else channel_id)
        self._answer("channel_create", "open", response, status)

    def send_keepalive(self) -> None:
        self._out.append(Keepalive().encode())

    def send_service_message(self, message: str) -> None:
        self._out.append(ServiceMessage(message).encode())
