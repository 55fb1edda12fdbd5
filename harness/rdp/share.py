"""Slow-path share PDUs carried in MCS Send Data on the I/O channel (MS-RDPBCGR 2.2.1.13-2.2.1.22,
2.2.3, 2.2.5, 2.2.8.1.1, 2.2.9.1.1, 2.2.10, 2.2.11).

Layers: an optional basic security header (only on Client Info, licensing and message-channel
PDUs under TLS), the Share Control header, and for data PDUs the Share Data header and a typed
body. `decode_share_pdu(s)` returns typed PDUs; unknown ones come back raw, never as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .capabilities import Capability, decode_capability_sets, encode_capability_sets
from .errors import ParseError
from .updates import BitmapUpdate, UpdateBody, decode_update, plan_bitmap_rects
from .wire import Reader, Writer

# TS_SECURITY_HEADER flags
SEC_EXCHANGE_PKT = 0x0001
SEC_TRANSPORT_REQ = 0x0002
SEC_TRANSPORT_RSP = 0x0004
SEC_ENCRYPT = 0x0008
SEC_RESET_SEQNO = 0x0010
SEC_IGNORE_SEQNO = 0x0020
SEC_INFO_PKT = 0x0040
SEC_LICENSE_PKT = 0x0080
SEC_LICENSE_ENCRYPT_CS = 0x0200
SEC_LICENSE_ENCRYPT_SC = 0x0200
SEC_REDIRECTION_PKT = 0x0400
SEC_SECURE_CHECKSUM = 0x0800
SEC_AUTODETECT_REQ = 0x1000
SEC_AUTODETECT_RSP = 0x2000
SEC_HEARTBEAT = 0x4000
SEC_FLAGSHI_VALID = 0x8000

# Share Control header pduType
TS_PROTOCOL_VERSION = 0x1
PDUTYPE_DEMANDACTIVEPDU = 0x1
PDUTYPE_CONFIRMACTIVEPDU = 0x3
PDUTYPE_DEACTIVATEALLPDU = 0x6
PDUTYPE_DATAPDU = 0x7
PDUTYPE_SERVER_REDIR_PKT = 0xA

# Flow control (T.128 FlowPDU, totalLength replaced by the 0x8000 marker)
FLOW_MARKER = 0x8000
PDUTYPE_FLOW_TEST = 0x41
PDUTYPE_FLOW_RESPONSE = 0x42
PDUTYPE_FLOW_STOP = 0x43

# Share Data header pduType2
PDUTYPE2_UPDATE = 0x02
PDUTYPE2_CONTROL = 0x14
PDUTYPE2_POINTER = 0x1B
PDUTYPE2_INPUT = 0x1C
PDUTYPE2_SYNCHRONIZE = 0x1F
PDUTYPE2_REFRESH_RECT = 0x21
PDUTYPE2_PLAY_SOUND = 0x22
PDUTYPE2_SUPPRESS_OUTPUT = 0x23
PDUTYPE2_SHUTDOWN_REQUEST = 0x24
PDUTYPE2_SHUTDOWN_DENIED = 0x25
PDUTYPE2_SAVE_SESSION_INFO = 0x26
PDUTYPE2_FONTLIST = 0x27
PDUTYPE2_FONTMAP = 0x28
PDUTYPE2_SET_KEYBOARD_INDICATORS = 0x29
PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST = 0x2B
PDUTYPE2_BITMAPCACHE_ERROR_PDU = 0x2C
PDUTYPE2_SET_KEYBOARD_IME_STATUS = 0x2D
PDUTYPE2_OFFSCRCACHE_ERROR_PDU = 0x2E
PDUTYPE2_SET_ERROR_INFO_PDU = 0x2F
PDUTYPE2_DRAWNINEGRID_ERROR_PDU = 0x30
PDUTYPE2_DRAWGDIPLUS_ERROR_PDU = 0x31
PDUTYPE2_ARC_STATUS_PDU = 0x32
PDUTYPE2_STATUS_INFO_PDU = 0x36
PDUTYPE2_MONITOR_LAYOUT_PDU = 0x37
PDUTYPE2_FRAME_ACKNOWLEDGE_PDU = 0x38

STREAM_UNDEFINED = 0x00
STREAM_LOW = 0x01
STREAM_MED = 0x02
STREAM_HI = 0x04

PACKET_COMPRESSED = 0x20

SYNCMSGTYPE_SYNC = 1
CTRLACTION_REQUEST_CONTROL = 1
CTRLACTION_GRANTED_CONTROL = 2
CTRLACTION_DETACH = 3
CTRLACTION_COOPERATE = 4
FONTLIST_FIRST = 0x0001
FONTLIST_LAST = 0x0002
SUPPRESS_DISPLAY_UPDATES = 0
ALLOW_DISPLAY_UPDATES = 1
PERSIST_FIRST_PDU = 0x01
PERSIST_LAST_PDU = 0x02

INFOTYPE_LOGON = 0
INFOTYPE_LOGON_LONG = 1
INFOTYPE_LOGON_PLAINNOTIFY = 2
INFOTYPE_LOGON_EXTENDED_INFO = 3
LOGON_EX_AUTORECONNECTCOOKIE = 0x1
LOGON_EX_LOGONERRORS = 0x2

MCS_SERVER_CHANNEL_ID = 1002
SOURCE_DESCRIPTOR_SERVER = b"RDP\x00"
SOURCE_DESCRIPTOR_CLIENT = b"MSTSC\x00"

SHARE_CONTROL_HEADER_LEN = 6
SHARE_DATA_HEADER_LEN = 18


@dataclass(frozen=True)
class SecurityHeader:
    """TS_SECURITY_HEADER (basic, 4 bytes): what TLS/CredSSP sessions use when one is needed."""

    flags: int
    flags_hi: int = 0

    def encode(self) -> bytes:
        return Writer().u16le(self.flags).u16le(self.flags_hi).value()

    @classmethod
    def decode(cls, r: Reader) -> SecurityHeader:
        return cls(r.u16le(), r.u16le())


def add_security_header(flags: int, payload: bytes, flags_hi: int = 0) -> bytes:
    return SecurityHeader(flags, flags_hi).encode() + payload


def strip_security_header(data: bytes) -> tuple[SecurityHeader, bytes]:
    r = Reader(data, "security header")
    return SecurityHeader.decode(r), r.rest()


def _control(
    pdu_type: int, pdu_source: int, body: bytes, version: int = TS_PROTOCOL_VERSION
) -> bytes:
    total = SHARE_CONTROL_HEADER_LEN + len(body)
    if total > 0x7FFF:
        raise ValueError(f"share control PDU of {total} bytes is too large")
    w = Writer().u16le(total).u16le((version << 4) | pdu_type).u16le(pdu_source)
    return w.bytes(body).value()


@dataclass(frozen=True)
class Rect16:
    """TS_RECTANGLE16 (inclusive bounds)."""

    left: int
    top: int
    right: int
    bottom: int

    def encode(self) -> bytes:
        return (
            Writer().u16le(self.left).u16le(self.top).u16le(self.right).u16le(self.bottom).value()
        )

    @classmethod
    def decode(cls, r: Reader) -> Rect16:
        return cls(r.u16le(), r.u16le(), r.u16le(), r.u16le())


# ---- data PDU bodies ---------------------------------------------------------------------


@dataclass(frozen=True)
class Synchronize:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_SYNCHRONIZE

    target_user: int
    message_type: int = SYNCMSGTYPE_SYNC

    def encode(self) -> bytes:
        return Writer().u16le(self.message_type).u16le(self.target_user).value()

    @classmethod
    def decode(cls, r: Reader) -> Synchronize:
        message_type = r.u16le()
        return cls(r.u16le(), message_type)


@dataclass(frozen=True)
class Control:
    """Control PDU: cooperate, request control, granted control (grant_id/control_id as the
    server fills them in the granted answer)."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_CONTROL

    action: int
    grant_id: int = 0
    control_id: int = 0

    def encode(self) -> bytes:
        return Writer().u16le(self.action).u16le(self.grant_id).u32le(self.control_id).value()

    @classmethod
    def decode(cls, r: Reader) -> Control:
        return cls(r.u16le(), r.u16le(), r.u32le())


@dataclass(frozen=True)
class FontList:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_FONTLIST

    number_fonts: int = 0
    total_num_fonts: int = 0
    list_flags: int = FONTLIST_FIRST | FONTLIST_LAST
    entry_size: int = 50

    def encode(self) -> bytes:
        w = Writer().u16le(self.number_fonts).u16le(self.total_num_fonts)
        return w.u16le(self.list_flags).u16le(self.entry_size).value()

    @classmethod
    def decode(cls, r: Reader) -> FontList:
        return cls(r.u16le(), r.u16le(), r.u16le(), r.u16le())


@dataclass(frozen=True)
class FontMap:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_FONTMAP

    number_entries: int = 0
    total_num_entries: int = 0
    map_flags: int = FONTLIST_FIRST | FONTLIST_LAST
    entry_size: int = 4

    def encode(self) -> bytes:
        w = Writer().u16le(self.number_entries).u16le(self.total_num_entries)
        return w.u16le(self.map_flags).u16le(self.entry_size).value()

    @classmethod
    def decode(cls, r: Reader) -> FontMap:
        return cls(r.u16le(), r.u16le(), r.u16le(), r.u16le())


@dataclass(frozen=True)
class SetErrorInfo:
    """Set Error Info PDU: errorInfo is an ERRINFO_* code (see errinfo.py)."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_SET_ERROR_INFO_PDU

    error_info: int

    def encode(self) -> bytes:
        return Writer().u32le(self.error_info).value()

    @classmethod
    def decode(cls, r: Reader) -> SetErrorInfo:
        return cls(r.u32le())


@dataclass(frozen=True)
class RefreshRect:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_REFRESH_RECT

    areas: tuple[Rect16, ...]

    def encode(self) -> bytes:
        w = Writer().u8(len(self.areas)).zeros(3)
        for area in self.areas:
            w.bytes(area.encode())
        return w.value()

    @classmethod
    def decode(cls, r: Reader) -> RefreshRect:
        count = r.u8()
        r.skip(3)
        return cls(tuple(Rect16.decode(r) for _ in range(count)))


@dataclass(frozen=True)
class SuppressOutput:
    """desktop_rect is present only when updates are allowed."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_SUPPRESS_OUTPUT

    allow_display_updates: int
    desktop_rect: Rect16 | None = None

    def encode(self) -> bytes:
        w = Writer().u8(self.allow_display_updates).zeros(3)
        if self.desktop_rect is not None:
            w.bytes(self.desktop_rect.encode())
        return w.value()

    @classmethod
    def decode(cls, r: Reader) -> SuppressOutput:
        allow = r.u8()
        r.skip(3)
        rect = Rect16.decode(r) if r.remaining >= 8 else None
        return cls(allow, rect)


@dataclass(frozen=True)
class ShutdownRequest:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_SHUTDOWN_REQUEST

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> ShutdownRequest:
        return cls()


@dataclass(frozen=True)
class ShutdownDenied:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_SHUTDOWN_DENIED

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> ShutdownDenied:
        return cls()


@dataclass(frozen=True)
class SaveSessionInfo:
    """Save Session Info: the info data is kept raw; `logon_errors` digs out the
    (errorNotificationType, errorNotificationData) pair Windows sends on logon failures."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_SAVE_SESSION_INFO

    info_type: int
    data: bytes = b""

    def encode(self) -> bytes:
        return Writer().u32le(self.info_type).bytes(self.data).value()

    @classmethod
    def decode(cls, r: Reader) -> SaveSessionInfo:
        return cls(r.u32le(), r.rest())

    @property
    def logon_errors(self) -> tuple[int, int] | None:
        if self.info_type != INFOTYPE_LOGON_EXTENDED_INFO:
            return None
        try:
            r = Reader(self.data, "logon info extended")
            r.u16le()  # Length
            present = r.u32le()
            if present & LOGON_EX_AUTORECONNECTCOOKIE:
                r.skip(r.u32le())
            if not present & LOGON_EX_LOGONERRORS:
                return None
            r.u32le()  # cbFieldData
            return r.u32le(), r.u32le()
        except ParseError:
            return None


@dataclass(frozen=True)
class MonitorDef:
    """TS_MONITOR_DEF (signed, inclusive bounds)."""

    left: int
    top: int
    right: int
    bottom: int
    flags: int = 0


@dataclass(frozen=True)
class MonitorLayout:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_MONITOR_LAYOUT_PDU

    monitors: tuple[MonitorDef, ...]

    def encode(self) -> bytes:
        w = Writer().u32le(len(self.monitors))
        for m in self.monitors:
            for v in (m.left, m.top, m.right, m.bottom):
                w.u32le(v & 0xFFFFFFFF)
            w.u32le(m.flags)
        return w.value()

    @classmethod
    def decode(cls, r: Reader) -> MonitorLayout:
        count = r.u32le()
        if count * 20 > r.remaining:
            raise r.fail(f"{count} monitors announced, {r.remaining} bytes left")

        def signed(v: int) -> int:
            return v - (1 << 32) if v & 0x80000000 else v

        monitors = []
        for _ in range(count):
            left, top, right, bottom = (signed(r.u32le()) for _ in range(4))
            monitors.append(MonitorDef(left, top, right, bottom, r.u32le()))
        return cls(tuple(monitors))


@dataclass(frozen=True)
class PersistentKeyList:
    """Persistent Key List PDU (a client may send it; servers here ignore it)."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST

    num_entries: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    total_entries: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    bit_mask: int = PERSIST_FIRST_PDU | PERSIST_LAST_PDU
    keys: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        w = Writer()
        for n in (*self.num_entries, *self.total_entries):
            w.u16le(n)
        w.u8(self.bit_mask).u8(0).u16le(0)
        for key1, key2 in self.keys:
            w.u32le(key1).u32le(key2)
        return w.value()

    @classmethod
    def decode(cls, r: Reader) -> PersistentKeyList:
        num = tuple(r.u16le() for _ in range(5))
        total = tuple(r.u16le() for _ in range(5))
        bit_mask = r.u8()
        r.skip(3)
        count = sum(num)
        if count * 8 > r.remaining:
            raise r.fail(f"{count} keys announced, {r.remaining} bytes left")
        keys = tuple((r.u32le(), r.u32le()) for _ in range(count))
        return cls(num, total, bit_mask, keys)  # type: ignore[arg-type]


@dataclass(frozen=True)
class InputEvent:
    """TS_INPUT_EVENT: eventTime, messageType and its 6 bytes of event data."""

    event_time: int
    message_type: int
    data: bytes


@dataclass(frozen=True)
class InputEvents:
    """Slow-path Input Event PDU (a client may send input after activation)."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_INPUT

    events: tuple[InputEvent, ...]

    def encode(self) -> bytes:
        w = Writer().u16le(len(self.events)).u16le(0)
        for e in self.events:
            w.u32le(e.event_time).u16le(e.message_type).bytes(e.data)
        return w.value()

    @classmethod
    def decode(cls, r: Reader) -> InputEvents:
        count = r.u16le()
        r.skip(2)
        return cls(tuple(InputEvent(r.u32le(), r.u16le(), r.bytes(6)) for _ in range(count)))


@dataclass(frozen=True)
class StatusInfo:
    PDUTYPE2: ClassVar[int] = PDUTYPE2_STATUS_INFO_PDU

    status_code: int

    def encode(self) -> bytes:
        return Writer().u32le(self.status_code).value()

    @classmethod
    def decode(cls, r: Reader) -> StatusInfo:
        return cls(r.u32le())


@dataclass(frozen=True)
class RawDataBody:
    """A data PDU body this module does not interpret (or a compressed one), kept raw."""

    pdu_type2: int
    data: bytes

    @property
    def PDUTYPE2(self) -> int:
        return self.pdu_type2

    def encode(self) -> bytes:
        return self.data


DataBody = (
    Synchronize
    | Control
    | FontList
    | FontMap
    | SetErrorInfo
    | RefreshRect
    | SuppressOutput
    | ShutdownRequest
    | ShutdownDenied
    | SaveSessionInfo
    | MonitorLayout
    | PersistentKeyList
    | InputEvents
    | StatusInfo
    | UpdateBody
    | RawDataBody
)

_DATA_BODIES: dict[int, type] = {
    c.PDUTYPE2: c
    for c in (
        Synchronize,
        Control,
        FontList,
        FontMap,
        SetErrorInfo,
        RefreshRect,
        SuppressOutput,
        ShutdownRequest,
        ShutdownDenied,
        SaveSessionInfo,
        MonitorLayout,
        PersistentKeyList,
        InputEvents,
        StatusInfo,
    )
}


def decode_data_body(pdu_type2: int, data: bytes) -> DataBody:
    if pdu_type2 == PDUTYPE2_UPDATE:
        return decode_update(data)
    cls = _DATA_BODIES.get(pdu_type2)
    if cls is None:
        return RawDataBody(pdu_type2, data)
    r = Reader(data, f"data PDU type {pdu_type2:#04x}")
    return cls.decode(r)  # type: ignore[no-any-return]


# ---- share control PDUs ------------------------------------------------------------------


@dataclass(frozen=True)
class DataPdu:
    """A Data PDU: Share Control header (type 7) + Share Data header + typed body.

    `uncompressed_length` None means "compute" as mstsc does (MS-RDPBCGR 4.1.14/4.1.15 dumps):
    the body length plus 4, i.e. the bytes from pduType2 on. Peers differ (Windows servers write
    the total length, FreeRDP the body length) and ignore it for uncompressed PDUs; decoded PDUs
    keep what they carried."""

    body: DataBody
    share_id: int
    pdu_source: int = 0
    stream_id: int = STREAM_LOW
    pad1: int = 0
    uncompressed_length: int | None = field(default=None, compare=False)
    compressed_type: int = 0
    compressed_length: int = 0
    version: int = TS_PROTOCOL_VERSION

    def encode(self) -> bytes:
        payload = self.body.encode()
        length = len(payload) + 4 if self.uncompressed_length is None else self.uncompressed_length
        w = Writer().u32le(self.share_id).u8(self.pad1).u8(self.stream_id).u16le(length)
        w.u8(self.body.PDUTYPE2).u8(self.compressed_type).u16le(self.compressed_length)
        return _control(PDUTYPE_DATAPDU, self.pdu_source, w.bytes(payload).value(), self.version)

    @classmethod
    def _decode_body(cls, r: Reader, pdu_source: int, version: int) -> DataPdu:
        share_id, pad1, stream_id = r.u32le(), r.u8(), r.u8()
        uncompressed_length, pdu_type2 = r.u16le(), r.u8()
        compressed_type, compressed_length = r.u8(), r.u16le()
        data = r.rest()
        if compressed_type & PACKET_COMPRESSED:
            body: DataBody = RawDataBody(pdu_type2, data)
        else:
            body = decode_data_body(pdu_type2, data)
        return cls(
            body,
            share_id,
            pdu_source,
            stream_id,
            pad1,
            uncompressed_length,
            compressed_type,
            compressed_length,
            version,
        )

    @classmethod
    def decode(cls, data: bytes | Reader) -> DataPdu:
        pdu = decode_share_pdu(data)
        if not isinstance(pdu, DataPdu):
            raise ParseError("Data PDU", f"got {type(pdu).__name__}")
        return pdu


@dataclass(frozen=True)
class DemandActivePdu:
    """Server Demand Active: shareId (Windows: 0x103EA), source "RDP", capabilities, sessionId."""

    share_id: int
    capabilities: tuple[Capability, ...]
    pdu_source: int = MCS_SERVER_CHANNEL_ID
    source_descriptor: bytes = SOURCE_DESCRIPTOR_SERVER
    session_id: int | None = 0
    version: int = TS_PROTOCOL_VERSION

    def encode(self) -> bytes:
        caps = encode_capability_sets(tuple(self.capabilities))
        w = Writer().u32le(self.share_id).u16le(len(self.source_descriptor)).u16le(len(caps))
        w.bytes(self.source_descriptor).bytes(caps)
        if self.session_id is not None:
            w.u32le(self.session_id)
        return _control(PDUTYPE_DEMANDACTIVEPDU, self.pdu_source, w.value(), self.version)

    @classmethod
    def _decode_body(cls, r: Reader, pdu_source: int, version: int) -> DemandActivePdu:
        share_id = r.u32le()
        source_len, caps_len = r.u16le(), r.u16le()
        source = r.bytes(source_len)
        caps = decode_capability_sets(r.sub(caps_len, "combinedCapabilities"))
        session_id = r.u32le() if r.remaining >= 4 else None
        return cls(share_id, caps, pdu_source, source, session_id, version)


@dataclass(frozen=True)
class ConfirmActivePdu:
    """Client Confirm Active: echoes shareId, originatorId 1002, source "MSTSC", capabilities."""

    share_id: int
    capabilities: tuple[Capability, ...]
    pdu_source: int
    originator_id: int = MCS_SERVER_CHANNEL_ID
    source_descriptor: bytes = SOURCE_DESCRIPTOR_CLIENT
    version: int = TS_PROTOCOL_VERSION

    def encode(self) -> bytes:
        caps = encode_capability_sets(tuple(self.capabilities))
        w = Writer().u32le(self.share_id).u16le(self.originator_id)
        w.u16le(len(self.source_descriptor)).u16le(len(caps))
        w.bytes(self.source_descriptor).bytes(caps)
        return _control(PDUTYPE_CONFIRMACTIVEPDU, self.pdu_source, w.value(), self.version)

    @classmethod
    def _decode_body(cls, r: Reader, pdu_source: int, version: int) -> ConfirmActivePdu:
        share_id, originator = r.u32le(), r.u16le()
        source_len, caps_len = r.u16le(), r.u16le()
        source = r.bytes(source_len)
        caps = decode_capability_sets(r.sub(caps_len, "combinedCapabilities"))
        return cls(share_id, caps, pdu_source, originator, source, version)


@dataclass(frozen=True)
class DeactivateAllPdu:
    """Deactivate All (server). Windows XP sends a bare 4-byte header: share_id None."""

    share_id: int | None = 0
    pdu_source: int = MCS_SERVER_CHANNEL_ID
    source_descriptor: bytes = b"\x00"
    version: int = TS_PROTOCOL_VERSION

    def encode(self) -> bytes:
        body = b""
        if self.share_id is not None:
            w = Writer().u32le(self.share_id).u16le(len(self.source_descriptor))
            body = w.bytes(self.source_descriptor).value()
        return _control(PDUTYPE_DEACTIVATEALLPDU, self.pdu_source, body, self.version)

    @classmethod
    def _decode_body(cls, r: Reader, pdu_source: int, version: int) -> DeactivateAllPdu:
        if r.remaining < 6:
            return cls(None, pdu_source, b"", version)
        share_id = r.u32le()
        source = r.bytes(min(r.u16le(), r.remaining))
        return cls(share_id, pdu_source, source, version)


@dataclass(frozen=True)
class FlowPdu:
    """Flow test / response / stop PDU (8 bytes, marker 0x8000). pduTypeFlow comes before the
    pad byte on the wire, as FreeRDP observed."""

    flow_type: int
    flow_identifier: int = 0
    flow_number: int = 0
    pdu_source: int = 0

    def encode(self) -> bytes:
        w = Writer().u16le(FLOW_MARKER).u8(self.flow_type).u8(0)
        return w.u8(self.flow_identifier).u8(self.flow_number).u16le(self.pdu_source).value()


@dataclass(frozen=True)
class UnknownControlPdu:
    """A share control PDU of another type (e.g. server redirection), kept raw."""

    pdu_type: int
    pdu_source: int
    body: bytes
    version: int = TS_PROTOCOL_VERSION

    def encode(self) -> bytes:
        return _control(self.pdu_type, self.pdu_source, self.body, self.version)


SharePdu = (
    DataPdu | DemandActivePdu | ConfirmActivePdu | DeactivateAllPdu | FlowPdu | UnknownControlPdu
)

_CONTROL_PDUS: dict[int, type] = {
    PDUTYPE_DATAPDU: DataPdu,
    PDUTYPE_DEMANDACTIVEPDU: DemandActivePdu,
    PDUTYPE_CONFIRMACTIVEPDU: ConfirmActivePdu,
    PDUTYPE_DEACTIVATEALLPDU: DeactivateAllPdu,
}


def _read_one(r: Reader) -> SharePdu:
    total = r.u16le()
    if total == FLOW_MARKER:
        first, second = r.u8(), r.u8()
        flow_type = first if first in (0x41, 0x42, 0x43) else second
        return FlowPdu(flow_type, r.u8(), r.u8(), r.u16le())
    if total < 4:
        raise r.fail(f"share control totalLength {total} is too short")
    if total - 2 > r.remaining:
        # The last PDU of the Send Data claims more than is left: aardwolf 0.2's Synchronize says
        # 28 in 22 bytes, and Windows logs it on (rdp-facts §12): read what the MCS PDU holds.
        total = r.remaining + 2
    body = r.sub(total - 2, "share control PDU")
    pdu_type_field = body.u16le()
    pdu_type, version = pdu_type_field & 0x0F, pdu_type_field >> 4
    pdu_source = body.u16le() if total > 5 else 0
    cls = _CONTROL_PDUS.get(pdu_type)
    if cls is None:
        return UnknownControlPdu(pdu_type, pdu_source, body.rest(), version)
    return cls._decode_body(body, pdu_source, version)  # type: ignore[no-any-return]


def decode_share_pdu(data: bytes | Reader) -> SharePdu:
    """Exactly one share PDU (no security header); see decode_share_pdus for bundles."""
    r = data if isinstance(data, Reader) else Reader(data, "share PDU")
    pdu = _read_one(r)
    if r.remaining:
        raise r.fail(f"{r.remaining} bytes after the share PDU (a bundle? use decode_share_pdus)")
    return pdu


def decode_share_pdus(data: bytes) -> list[SharePdu]:
    """All share PDUs concatenated in one Send Data payload (FreeRDP walks them the same way)."""
    r = Reader(data, "share PDUs")
    pdus = [_read_one(r)]
    while r.remaining:
        pdus.append(_read_one(r))
    return pdus


def bitmap_update_pdus(
    width: int,
    height: int,
    total_bytes: int,
    bpp: int = 16,
    share_id: int = 0x103EA,
    pdu_source: int = MCS_SERVER_CHANNEL_ID,
    max_rect_bytes: int = 8192,
    rects_per_pdu: int = 1,
) -> list[bytes]:
    """Slow-path Update PDUs (Share Data, PDUTYPE2_UPDATE, TS_UPDATE_BITMAP) whose uncompressed
    bitmap data sums to at least total_bytes. Each PDU stays near 8 KiB by default, well under
    the ~16 KB Windows uses for slow-path updates; put each in its own Send Data Indication."""
    rects = plan_bitmap_rects(width, height, total_bytes, bpp, max_rect_bytes)
    step = max(1, rects_per_pdu)
    return [
        DataPdu(BitmapUpdate(tuple(rects[i : i + step])), share_id, pdu_source).encode()
        for i in range(0, len(rects), step)
    ]
