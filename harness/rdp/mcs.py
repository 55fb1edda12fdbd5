"""T.125 MCS: Connect Initial / Connect Response (BER) and the PER domain PDUs RDP uses.

Everything here is the MCS PDU itself, the payload of an X.224 Data TPDU (x224.encode_data wraps
it). Connect PDUs carry the GCC conference create request/response from gcc.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Self

from . import per
from .errors import ParseError, ProtocolFailure
from .gcc import ClientData, ConferenceCreateRequest, ConferenceCreateResponse, ServerData
from .wire import Reader, Writer

MCS_BASE_CHANNEL_ID = 1001
MCS_SERVER_CHANNEL_ID = 1002  # initiator Windows uses in server-to-client Send Data Indications
MCS_IO_CHANNEL_ID = 1003  # the MCS I/O (global) channel

# DomainMCSPDU CHOICE indices (T.125 section 7, part 10)
ERECT_DOMAIN_REQUEST = 1
DISCONNECT_PROVIDER_ULTIMATUM = 8
ATTACH_USER_REQUEST = 10
ATTACH_USER_CONFIRM = 11
DETACH_USER_REQUEST = 12
DETACH_USER_INDICATION = 13
CHANNEL_JOIN_REQUEST = 14
CHANNEL_JOIN_CONFIRM = 15
SEND_DATA_REQUEST = 25
SEND_DATA_INDICATION = 26

# Result (T.125)
RT_SUCCESSFUL = 0
RT_UNSPECIFIED_FAILURE = 14
RESULT_NAMES = (
    "rt-successful",
    "rt-domain-merging",
    "rt-domain-not-hierarchical",
    "rt-no-such-channel",
    "rt-no-such-domain",
    "rt-no-such-user",
    "rt-not-admitted",
    "rt-other-user-id",
    "rt-parameters-unacceptable",
    "rt-token-not-available",
    "rt-token-not-possessed",
    "rt-too-many-channels",
    "rt-too-many-tokens",
    "rt-too-many-users",
    "rt-unspecified-failure",
    "rt-user-rejected",
)

# Reason (DisconnectProviderUltimatum)
RN_DOMAIN_DISCONNECTED = 0
RN_PROVIDER_INITIATED = 1
RN_TOKEN_PURGED = 2
RN_USER_REQUESTED = 3
RN_CHANNEL_PURGED = 4
REASON_NAMES = (
    "rn-domain-disconnected",
    "rn-provider-initiated",
    "rn-token-purged",
    "rn-user-requested",
    "rn-channel-purged",
)

DATA_PRIORITY_HIGH = 1
SEGMENTATION_BEGIN_END = 3  # begin | end, 0x70 together with high priority

# BER tags
_TAG_BOOLEAN = 0x01
_TAG_INTEGER = 0x02
_TAG_OCTET_STRING = 0x04
_TAG_ENUMERATED = 0x0A
_TAG_SEQUENCE = 0x30
_APP_CONNECT_INITIAL = b"\x7f\x65"
_APP_CONNECT_RESPONSE = b"\x7f\x66"

IntegerStyle = Literal["unsigned", "signed"]


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82]) + n.to_bytes(2, "big")
    raise ValueError(f"BER length {n} too large")


def _ber_tlv(tag: bytes, content: bytes) -> bytes:
    return tag + _ber_length(len(content)) + content


def _ber_read_length(r: Reader) -> int:
    first = r.u8()
    if first < 0x80:
        return first
    count = first & 0x7F
    if not 1 <= count <= 4:
        raise r.fail(f"unsupported BER length form {first:#04x}")
    return int.from_bytes(r.bytes(count), "big")


def _ber_read_tlv(r: Reader, tag: int, what: str) -> Reader:
    got = r.u8()
    if got != tag:
        raise r.fail(f"expected BER tag {tag:#04x} for {what}, got {got:#04x}")
    return r.sub(_ber_read_length(r), what)


def _ber_uint(value: int, style: IntegerStyle) -> bytes:
    """INTEGER content: 'signed' is DER (a leading zero keeps the value positive, as Windows
    servers write it); 'unsigned' drops it (0xFFFF as ff ff, as mstsc writes it)."""
    if value < 0:
        raise ValueError("BER integers here are non-negative")
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if style == "signed" and raw[0] & 0x80:
        raw = b"\x00" + raw
    return _ber_tlv(bytes([_TAG_INTEGER]), raw)


class _StyleProbe:
    """Remembers which integer style a decoded PDU used, so it re-encodes to the same bytes."""

    def __init__(self, default: IntegerStyle) -> None:
        self.style: IntegerStyle = default

    def read_uint(self, r: Reader, what: str) -> int:
        content = _ber_read_tlv(r, _TAG_INTEGER, what).rest()
        if not 1 <= len(content) <= 5:
            raise r.fail(f"BER integer {what} has {len(content)} octets")
        if len(content) > 1 and content[0] == 0 and content[1] & 0x80:
            self.style = "signed"
        elif content[0] & 0x80:
            self.style = "unsigned"
        return int.from_bytes(content, "big")


@dataclass(frozen=True)
class DomainParameters:
    """T.125 DomainParameters."""

    max_channel_ids: int
    max_user_ids: int
    max_token_ids: int
    num_priorities: int = 1
    min_throughput: int = 0
    max_height: int = 1
    max_mcs_pdu_size: int = 65535
    protocol_version: int = 2

    def encode(self, style: IntegerStyle = "signed") -> bytes:
        values = (
            self.max_channel_ids,
            self.max_user_ids,
            self.max_token_ids,
            self.num_priorities,
            self.min_throughput,
            self.max_height,
            self.max_mcs_pdu_size,
            self.protocol_version,
        )
        return _ber_tlv(bytes([_TAG_SEQUENCE]), b"".join(_ber_uint(v, style) for v in values))

    @classmethod
    def _decode(cls, r: Reader, probe: _StyleProbe) -> DomainParameters:
        s = _ber_read_tlv(r, _TAG_SEQUENCE, "DomainParameters")
        return cls(*(probe.read_uint(s, "DomainParameters") for _ in range(8)))


# What mstsc (and FreeRDP) propose in Connect Initial (MS-RDPBCGR 3.2.5.3.3).
CLIENT_TARGET_PARAMETERS = DomainParameters(34, 2, 0, 1, 0, 1, 65535, 2)
CLIENT_MINIMUM_PARAMETERS = DomainParameters(1, 1, 1, 1, 0, 1, 1056, 2)
CLIENT_MAXIMUM_PARAMETERS = DomainParameters(65535, 64535, 65535, 1, 0, 1, 65535, 2)
# What a Windows server answers to those (merge result).
SERVER_DOMAIN_PARAMETERS = DomainParameters(34, 3, 0, 1, 0, 1, 65528, 2)


def merge_domain_parameters(
    target: DomainParameters, minimum: DomainParameters, maximum: DomainParameters
) -> DomainParameters:
    """The server's merge of the client's proposals (MS-RDPBCGR 3.3.5.3.3)."""

    def fail(what: str) -> ProtocolFailure:
        return ProtocolFailure("mcs", f"cannot merge domain parameters: {what}")

    if target.max_channel_ids >= 4:
        channels = target.max_channel_ids
    elif maximum.max_channel_ids >= 4:
        channels = 4
    else:
        raise fail("maxChannelIds")
    if target.max_user_ids >= 3:
        users = target.max_user_ids
    elif maximum.max_user_ids >= 3:
        users = 3
    else:
        raise fail("maxUserIds")
    if minimum.num_priorities > 1:
        raise fail("numPriorities")
    if target.max_height != 1 and minimum.max_height > 1:
        raise fail("maxHeight")
    if target.max_mcs_pdu_size >= 1024:
        if target.max_mcs_pdu_size <= 65528:
            pdu_size = target.max_mcs_pdu_size
        elif 124 <= minimum.max_mcs_pdu_size <= 65528:
            pdu_size = 65528
        else:
            raise fail("maxMCSPDUsize")
    elif maximum.max_mcs_pdu_size >= 124:
        pdu_size = maximum.max_mcs_pdu_size
    else:
        raise fail("maxMCSPDUsize")
    if not (
        target.protocol_version == 2 or minimum.protocol_version <= 2 <= maximum.protocol_version
    ):
        raise fail("protocolVersion")
    return DomainParameters(
        channels, users, target.max_token_ids, 1, target.min_throughput, 1, pdu_size, 2
    )


@dataclass(frozen=True)
class ConnectInitial:
    """MCS Connect-Initial ([APPLICATION 101]) whose userData is a GCC Conference Create Request."""

    user_data: bytes
    target: DomainParameters = CLIENT_TARGET_PARAMETERS
    minimum: DomainParameters = CLIENT_MINIMUM_PARAMETERS
    maximum: DomainParameters = CLIENT_MAXIMUM_PARAMETERS
    calling_domain_selector: bytes = b"\x01"
    called_domain_selector: bytes = b"\x01"
    upward_flag: bool = True
    integer_style: IntegerStyle = "unsigned"

    @classmethod
    def from_client_data(cls, client_data: ClientData, **kwargs: object) -> ConnectInitial:
        return cls(ConferenceCreateRequest(client_data).encode(), **kwargs)  # type: ignore[arg-type]

    @property
    def conference_request(self) -> ConferenceCreateRequest:
        return ConferenceCreateRequest.decode(self.user_data)

    @property
    def client_data(self) -> ClientData:
        return self.conference_request.client_data

    def encode(self) -> bytes:
        style = self.integer_style
        body = b"".join(
            (
                _ber_tlv(bytes([_TAG_OCTET_STRING]), self.calling_domain_selector),
                _ber_tlv(bytes([_TAG_OCTET_STRING]), self.called_domain_selector),
                _ber_tlv(bytes([_TAG_BOOLEAN]), b"\xff" if self.upward_flag else b"\x00"),
                self.target.encode(style),
                self.minimum.encode(style),
                self.maximum.encode(style),
                _ber_tlv(bytes([_TAG_OCTET_STRING]), self.user_data),
            )
        )
        return _ber_tlv(_APP_CONNECT_INITIAL, body)

    @classmethod
    def decode(cls, data: bytes | Reader) -> ConnectInitial:
        r = data if isinstance(data, Reader) else Reader(data, "MCS Connect Initial")
        if r.bytes(2) != _APP_CONNECT_INITIAL:
            raise r.fail("not an MCS Connect-Initial")
        body = r.sub(_ber_read_length(r), "MCS Connect Initial")
        probe = _StyleProbe("unsigned")
        calling = _ber_read_tlv(body, _TAG_OCTET_STRING, "callingDomainSelector").rest()
        called = _ber_read_tlv(body, _TAG_OCTET_STRING, "calledDomainSelector").rest()
        upward = _ber_read_tlv(body, _TAG_BOOLEAN, "upwardFlag").rest()
        if len(upward) != 1:
            raise body.fail("upwardFlag is not one octet")
        target = DomainParameters._decode(body, probe)
        minimum = DomainParameters._decode(body, probe)
        maximum = DomainParameters._decode(body, probe)
        user_data = _ber_read_tlv(body, _TAG_OCTET_STRING, "userData").rest()
        return cls(
            user_data, target, minimum, maximum, calling, called, upward != b"\x00", probe.style
        )


@dataclass(frozen=True)
class ConnectResponse:
    """MCS Connect-Response ([APPLICATION 102]) whose userData is a GCC Conference Create
    Response. A failure response may stop after the result (MS-RDPBCGR 3.3.5.3.3.1)."""

    user_data: bytes = b""
    result: int = RT_SUCCESSFUL
    called_connect_id: int = 0
    domain_parameters: DomainParameters | None = SERVER_DOMAIN_PARAMETERS
    integer_style: IntegerStyle = "signed"

    @classmethod
    def from_server_data(cls, server_data: ServerData, **kwargs: object) -> ConnectResponse:
        return cls(ConferenceCreateResponse(server_data).encode(), **kwargs)  # type: ignore[arg-type]

    @property
    def conference_response(self) -> ConferenceCreateResponse:
        return ConferenceCreateResponse.decode(self.user_data)

    @property
    def server_data(self) -> ServerData:
        return self.conference_response.server_data

    @property
    def result_name(self) -> str:
        return RESULT_NAMES[self.result] if self.result < len(RESULT_NAMES) else str(self.result)

    def encode(self) -> bytes:
        body = _ber_tlv(bytes([_TAG_ENUMERATED]), bytes([self.result]))
        if self.domain_parameters is not None:
            body += _ber_uint(self.called_connect_id, self.integer_style)
            body += self.domain_parameters.encode(self.integer_style)
            body += _ber_tlv(bytes([_TAG_OCTET_STRING]), self.user_data)
        return _ber_tlv(_APP_CONNECT_RESPONSE, body)

    @classmethod
    def decode(cls, data: bytes | Reader) -> ConnectResponse:
        r = data if isinstance(data, Reader) else Reader(data, "MCS Connect Response")
        if r.bytes(2) != _APP_CONNECT_RESPONSE:
            raise r.fail("not an MCS Connect-Response")
        body = r.sub(_ber_read_length(r), "MCS Connect Response")
        result_raw = _ber_read_tlv(body, _TAG_ENUMERATED, "result").rest()
        if len(result_raw) != 1:
            raise body.fail("result is not one octet")
        result = result_raw[0]
        if not body.remaining:
            return cls(result=result, domain_parameters=None)
        probe = _StyleProbe("signed")
        connect_id = probe.read_uint(body, "calledConnectId")
        params = DomainParameters._decode(body, probe)
        user_data = _ber_read_tlv(body, _TAG_OCTET_STRING, "userData").rest()
        return cls(user_data, result, connect_id, params, probe.style)


def _header(choice: int, low_bits: int = 0) -> Writer:
    return Writer().u8((choice << 2) | low_bits)


@dataclass(frozen=True)
class ErectDomainRequest:
    """subHeight and subInterval; a server ignores both (MS-RDPBCGR 3.3.5.3.5), so a body that
    is not two PER integers decodes too, with None values and the bytes kept in `body`: rdesktop
    1.9 and aardwolf send `04 00 01 00 01` (two plain 16-bit fields), which Windows accepts."""

    CHOICE: ClassVar[int] = ERECT_DOMAIN_REQUEST
    MAX_BODY: ClassVar[int] = 16

    sub_height: int | None = 0
    sub_interval: int | None = 0
    body: bytes = field(default=b"", compare=False, repr=False)

    def encode(self) -> bytes:
        if self.sub_height is None or self.sub_interval is None:
            return _header(self.CHOICE).bytes(self.body).value()
        w = _header(self.CHOICE)
        per.write_integer(w, self.sub_height)
        per.write_integer(w, self.sub_interval)
        return w.value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> ErectDomainRequest:
        body = r.bytes(min(r.remaining, cls.MAX_BODY))
        if r.remaining:
            raise r.fail(f"Erect Domain Request longer than {1 + cls.MAX_BODY} bytes")
        fields = Reader(body, "Erect Domain Request")
        try:
            height, interval = per.read_integer(fields), per.read_integer(fields)
            fields.expect_end()
        except ParseError:
            return cls(None, None, body)
        return cls(height, interval, body)


@dataclass(frozen=True)
class AttachUserRequest:
    CHOICE: ClassVar[int] = ATTACH_USER_REQUEST

    def encode(self) -> bytes:
        return _header(self.CHOICE).value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> AttachUserRequest:
        return cls()


def _write_result(choice: int, present: bool, result: int) -> Writer:
    """Choice (6 bits), optional-field bit, then the 4-bit Result straddling two octets."""
    if not 0 <= result <= 15:
        raise ValueError(f"MCS result {result} out of range")
    return Writer().u8((choice << 2) | (int(present) << 1) | (result >> 3)).u8((result & 7) << 5)


def _read_result(first: int, r: Reader) -> tuple[bool, int]:
    second = r.u8()
    return bool(first & 0x02), ((first & 0x01) << 3) | (second >> 5)


@dataclass(frozen=True)
class AttachUserConfirm:
    """initiator is the user channel id the server assigns (e.g. 1007)."""

    CHOICE: ClassVar[int] = ATTACH_USER_CONFIRM

    result: int = RT_SUCCESSFUL
    initiator: int | None = None

    def encode(self) -> bytes:
        w = _write_result(self.CHOICE, self.initiator is not None, self.result)
        if self.initiator is not None:
            per.write_integer16(w, self.initiator, MCS_BASE_CHANNEL_ID)
        return w.value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> AttachUserConfirm:
        present, result = _read_result(first, r)
        initiator = per.read_integer16(r, MCS_BASE_CHANNEL_ID) if present else None
        return cls(result, initiator)


@dataclass(frozen=True)
class DetachUserRequest:
    """Reason and user ids (kept raw); FreeRDP may send it when closing."""

    CHOICE: ClassVar[int] = DETACH_USER_REQUEST

    raw: bytes = b""

    def encode(self) -> bytes:
        return _header(self.CHOICE).bytes(self.raw).value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> DetachUserRequest:
        return cls(r.rest())


@dataclass(frozen=True)
class ChannelJoinRequest:
    CHOICE: ClassVar[int] = CHANNEL_JOIN_REQUEST

    initiator: int
    channel_id: int

    def encode(self) -> bytes:
        w = _header(self.CHOICE)
        per.write_integer16(w, self.initiator, MCS_BASE_CHANNEL_ID)
        per.write_integer16(w, self.channel_id, 0)
        return w.value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> ChannelJoinRequest:
        return cls(per.read_integer16(r, MCS_BASE_CHANNEL_ID), per.read_integer16(r, 0))


@dataclass(frozen=True)
class ChannelJoinConfirm:
    CHOICE: ClassVar[int] = CHANNEL_JOIN_CONFIRM

    result: int
    initiator: int
    requested: int
    channel_id: int | None = None

    def encode(self) -> bytes:
        w = _write_result(self.CHOICE, self.channel_id is not None, self.result)
        per.write_integer16(w, self.initiator, MCS_BASE_CHANNEL_ID)
        per.write_integer16(w, self.requested, 0)
        if self.channel_id is not None:
            per.write_integer16(w, self.channel_id, 0)
        return w.value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> ChannelJoinConfirm:
        present, result = _read_result(first, r)
        initiator = per.read_integer16(r, MCS_BASE_CHANNEL_ID)
        requested = per.read_integer16(r, 0)
        channel_id = per.read_integer16(r, 0) if present else None
        return cls(result, initiator, requested, channel_id)


@dataclass(frozen=True)
class _SendData:
    """Send Data Request / Indication. `long_length` keeps FreeRDP's habit of always writing a
    two-octet userData length, so its PDUs re-encode to the same bytes."""

    CHOICE: ClassVar[int]

    initiator: int
    channel_id: int
    user_data: bytes
    priority: int = DATA_PRIORITY_HIGH
    segmentation: int = SEGMENTATION_BEGIN_END
    long_length: bool = field(default=False, compare=False)

    def encode(self) -> bytes:
        w = _header(self.CHOICE)
        per.write_integer16(w, self.initiator, MCS_BASE_CHANNEL_ID)
        per.write_integer16(w, self.channel_id, 0)
        w.u8(((self.priority & 3) << 6) | ((self.segmentation & 3) << 4))
        n = len(self.user_data)
        if self.long_length and n < 0x80:
            w.u16be(0x8000 | n)
        else:
            per.write_length(w, n)
        return w.bytes(self.user_data).value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> Self:
        initiator = per.read_integer16(r, MCS_BASE_CHANNEL_ID)
        channel_id = per.read_integer16(r, 0)
        flags = r.u8()
        long_length = bool(r.peek_u8() & 0x80)
        data = r.bytes(per.read_length(r))
        return cls(initiator, channel_id, data, flags >> 6, (flags >> 4) & 3, long_length)


@dataclass(frozen=True)
class SendDataRequest(_SendData):
    """Client to server data on a channel (initiator = the client's user channel id)."""

    CHOICE: ClassVar[int] = SEND_DATA_REQUEST


@dataclass(frozen=True)
class SendDataIndication(_SendData):
    """Server to client data on a channel (Windows uses initiator 1002)."""

    CHOICE: ClassVar[int] = SEND_DATA_INDICATION


@dataclass(frozen=True)
class DisconnectProviderUltimatum:
    CHOICE: ClassVar[int] = DISCONNECT_PROVIDER_ULTIMATUM

    reason: int = RN_USER_REQUESTED

    @property
    def reason_name(self) -> str:
        return REASON_NAMES[self.reason] if self.reason < len(REASON_NAMES) else str(self.reason)

    def encode(self) -> bytes:
        if not 0 <= self.reason <= 7:
            raise ValueError(f"ultimatum reason {self.reason} out of range")
        return _header(self.CHOICE, self.reason >> 1).u8((self.reason & 1) << 7).value()

    @classmethod
    def _decode(cls, first: int, r: Reader) -> DisconnectProviderUltimatum:
        second = r.u8() if r.remaining else 0
        return cls(((first & 0x03) << 1) | (second >> 7))


@dataclass(frozen=True)
class UnknownDomainPdu:
    """A DomainMCSPDU choice this module does not interpret, kept raw."""

    choice: int
    data: bytes

    def encode(self) -> bytes:
        return self.data


DomainPdu = (
    ErectDomainRequest
    | AttachUserRequest
    | AttachUserConfirm
    | DetachUserRequest
    | ChannelJoinRequest
    | ChannelJoinConfirm
    | SendDataRequest
    | SendDataIndication
    | DisconnectProviderUltimatum
    | UnknownDomainPdu
)

_DOMAIN_PDUS: dict[int, type] = {
    c.CHOICE: c
    for c in (
        ErectDomainRequest,
        AttachUserRequest,
        AttachUserConfirm,
        DetachUserRequest,
        ChannelJoinRequest,
        ChannelJoinConfirm,
        SendDataRequest,
        SendDataIndication,
        DisconnectProviderUltimatum,
    )
}


def decode_domain_pdu(data: bytes) -> DomainPdu:
    """The typed DomainMCSPDU in an X.224 Data payload (unknown choices come back raw)."""
    r = Reader(data, "MCS domain PDU")
    first = r.u8()
    choice = first >> 2
    cls = _DOMAIN_PDUS.get(choice)
    if cls is None:
        return UnknownDomainPdu(choice, bytes(data))
    pdu = cls._decode(first, r)
    r.expect_end()
    return pdu  # type: ignore[no-any-return]


def is_connect_initial(data: bytes) -> bool:
    return data[:2] == _APP_CONNECT_INITIAL


def is_connect_response(data: bytes) -> bool:
    return data[:2] == _APP_CONNECT_RESPONSE


@dataclass(frozen=True)
class ChannelAssignment:
    """MCS channel ids as a Windows server hands them out: I/O 1003, static channels from 1004,
    then the message channel (when asked for), then the user channel."""

    io_channel: int
    static_channels: tuple[int, ...]
    message_channel: int | None
    user_channel: int

    @property
    def all_channels(self) -> tuple[int, ...]:
        """Every channel a client joins: user, I/O, statics, message channel."""
        extra = (self.message_channel,) if self.message_channel is not None else ()
        return (self.user_channel, self.io_channel, *self.static_channels, *extra)


def assign_channel_ids(static_count: int, message_channel: bool = False) -> ChannelAssignment:
    next_id = MCS_IO_CHANNEL_ID + 1
    statics = tuple(range(next_id, next_id + static_count))
    next_id += static_count
    msg = None
    if message_channel:
        msg, next_id = next_id, next_id + 1
    return ChannelAssignment(MCS_IO_CHANNEL_ID, statics, msg, next_id)
