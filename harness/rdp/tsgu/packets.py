"""MS-TSGU HTTP transport tunnel packets (MS-TSGU 2.2.10): constants, statuses, the packets as
frozen dataclasses with `encode()`, `decode_packet`, and `PacketSplitter` for a byte stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ParseError
from ..wire import Reader, Writer

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
