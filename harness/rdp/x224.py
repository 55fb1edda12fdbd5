"""X.224 (ISO 8073 class 0) TPDUs and RDP negotiation structures (MS-RDPBCGR 2.2.1.1-2.2.1.2)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .tpkt import decode_tpkt, encode_tpkt
from .wire import Reader, Writer

TPDU_CONNECTION_REQUEST = 0xE0
TPDU_CONNECTION_CONFIRM = 0xD0
TPDU_DISCONNECT_REQUEST = 0x80
TPDU_DATA = 0xF0

TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02
TYPE_RDP_NEG_FAILURE = 0x03


class Protocol(enum.IntFlag):
    """requestedProtocols / selectedProtocol flags."""

    RDP = 0
    SSL = 0x1
    HYBRID = 0x2
    RDSTLS = 0x4
    HYBRID_EX = 0x8
    RDSAAD = 0x10


class NegFailure(enum.IntEnum):
    """RDP_NEG_FAILURE failureCode values."""

    SSL_REQUIRED_BY_SERVER = 1
    SSL_NOT_ALLOWED_BY_SERVER = 2
    SSL_CERT_NOT_ON_SERVER = 3
    INCONSISTENT_FLAGS = 4
    HYBRID_REQUIRED_BY_SERVER = 5
    SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER = 6


# RDP_NEG_REQ flags
RESTRICTED_ADMIN_MODE_REQUIRED = 0x01
REDIRECTED_AUTHENTICATION_MODE_REQUIRED = 0x02
CORRELATION_INFO_PRESENT = 0x08

# RDP_NEG_RSP flags
EXTENDED_CLIENT_DATA_SUPPORTED = 0x01
DYNVC_GFX_PROTOCOL_SUPPORTED = 0x02
RESTRICTED_ADMIN_MODE_SUPPORTED = 0x08
REDIRECTED_AUTHENTICATION_MODE_SUPPORTED = 0x10


@dataclass(frozen=True)
class ConnectionRequest:
    """Client X.224 Connection Request with an optional cookie and RDP_NEG_REQ."""

    requested_protocols: int | None = int(Protocol.SSL | Protocol.HYBRID)
    cookie: str | None = None  # "mstshash=USER" as mstsc sends it
    flags: int = 0

    def encode(self) -> bytes:
        var = Writer()
        if self.cookie is not None:
            var.bytes(f"Cookie: {self.cookie}\r\n".encode("ascii"))
        if self.requested_protocols is not None:
            var.u8(TYPE_RDP_NEG_REQ).u8(self.flags).u16le(8).u32le(self.requested_protocols)
        body = var.value()
        head = Writer().u8(6 + len(body)).u8(TPDU_CONNECTION_REQUEST).u16be(0).u16be(0).u8(0)
        return encode_tpkt(head.value() + body)

    @classmethod
    def decode(cls, frame: bytes) -> ConnectionRequest:
        r = Reader(decode_tpkt(frame), "X.224 Connection Request")
        li = r.u8()
        if li != r.remaining or li < 6:
            raise r.fail(f"length indicator {li} does not match {r.remaining} bytes")
        if r.u8() & 0xF0 != TPDU_CONNECTION_REQUEST:
            raise r.fail("not a Connection Request TPDU")
        r.skip(5)
        rest = r.rest()
        cookie = None
        if rest.startswith(b"Cookie: ") or rest.startswith(b"Cookie:"):
            end = rest.find(b"\r\n")
            if end < 0:
                raise r.fail("cookie without CR LF")
            cookie = rest[len(b"Cookie:") : end].strip().decode("ascii", "replace")
            rest = rest[end + 2 :]
        if not rest:
            return cls(requested_protocols=None, cookie=cookie)
        n = Reader(rest, "RDP_NEG_REQ")
        if n.u8() != TYPE_RDP_NEG_REQ:
            raise n.fail("expected RDP_NEG_REQ type 1")
        flags = n.u8()
        if n.u16le() != 8:
            raise n.fail("RDP_NEG_REQ length is not 8")
        protocols = n.u32le()
        return cls(requested_protocols=protocols, cookie=cookie, flags=flags)


@dataclass(frozen=True)
class ConnectionConfirm:
    """Server X.224 Connection Confirm: a selected protocol, a failure code, or neither."""

    selected_protocol: int | None = None
    failure: int | None = None
    flags: int = 0

    def encode(self) -> bytes:
        var = Writer()
        if self.failure is not None:
            var.u8(TYPE_RDP_NEG_FAILURE).u8(0).u16le(8).u32le(self.failure)
        elif self.selected_protocol is not None:
            var.u8(TYPE_RDP_NEG_RSP).u8(self.flags).u16le(8).u32le(self.selected_protocol)
        body = var.value()
        head = Writer().u8(6 + len(body)).u8(TPDU_CONNECTION_CONFIRM).u16be(0).u16be(0x1234).u8(0)
        return encode_tpkt(head.value() + body)

    @classmethod
    def decode(cls, frame: bytes) -> ConnectionConfirm:
        r = Reader(decode_tpkt(frame), "X.224 Connection Confirm")
        li = r.u8()
        if li != r.remaining or li < 6:
            raise r.fail(f"length indicator {li} does not match {r.remaining} bytes")
        if r.u8() & 0xF0 != TPDU_CONNECTION_CONFIRM:
            raise r.fail("not a Connection Confirm TPDU")
        r.skip(5)
        if not r.remaining:
            return cls()
        kind = r.u8()
        flags = r.u8()
        if r.u16le() != 8:
            raise r.fail("negotiation structure length is not 8")
        value = r.u32le()
        if kind == TYPE_RDP_NEG_RSP:
            return cls(selected_protocol=value, flags=flags)
        if kind == TYPE_RDP_NEG_FAILURE:
            return cls(failure=value, flags=flags)
        raise r.fail(f"unknown negotiation structure type {kind}")


def encode_data(payload: bytes) -> bytes:
    """TPKT + X.224 Data TPDU (EOT) around an MCS PDU."""
    return encode_tpkt(b"\x02\xf0\x80" + payload)


def decode_data(frame: bytes) -> bytes:
    """MCS PDU inside a TPKT + X.224 Data TPDU."""
    r = Reader(decode_tpkt(frame), "X.224 Data")
    li = r.u8()
    code = r.u8()
    if li != 2 or code & 0xF0 != TPDU_DATA:
        if code & 0xF0 == TPDU_DISCONNECT_REQUEST:
            raise r.fail("X.224 Disconnect Request")
        raise r.fail(f"not a Data TPDU (li {li}, code {code:#04x})")
    r.skip(1)
    return r.rest()


def describe_protocols(flags: int) -> str:
    """'SSL|HYBRID' style name of a protocol flag set (RDP when zero)."""
    if flags == 0:
        return "RDP"
    names = [p.name for p in Protocol if p.value and flags & p.value and p.name]
    return "|".join(names) or f"{flags:#x}"
