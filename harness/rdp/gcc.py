"""T.124 GCC Conference Create Request/Response and the RDP settings blocks they carry.

MS-RDPBCGR 2.2.1.3 (client data: CS_CORE, CS_SECURITY, CS_NET, CS_CLUSTER ...) and 2.2.1.4
(server data: SC_CORE, SC_SECURITY, SC_NET ...). The PER preambles are byte for byte what
Windows and FreeRDP emit ("Duca" / "McDn" H.221 keys). Blocks are kept in wire order, and
unknown block types are kept raw, so a decoded settings set re-encodes to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from . import per
from .errors import ProtocolFailure
from .wire import Reader, Writer

T124_02_98_OID = (0, 0, 20, 124, 0, 1)
H221_CS_KEY = b"Duca"
H221_SC_KEY = b"McDn"
CONFERENCE_NAME = "1"

# User data block types (TS_UD_HEADER.type)
CS_CORE = 0xC001
CS_SECURITY = 0xC002
CS_NET = 0xC003
CS_CLUSTER = 0xC004
CS_MONITOR = 0xC005
CS_MCS_MSGCHANNEL = 0xC006
CS_MONITOR_EX = 0xC008
CS_MULTITRANSPORT = 0xC00A
SC_CORE = 0x0C01
SC_SECURITY = 0x0C02
SC_NET = 0x0C03
SC_MCS_MSGCHANNEL = 0x0C04
SC_MULTITRANSPORT = 0x0C08

# TS_UD_CS_CORE / TS_UD_SC_CORE version
RDP_VERSION_4 = 0x00080001
RDP_VERSION_5_PLUS = 0x00080004
RDP_VERSION_10_0 = 0x00080005
RDP_VERSION_10_7 = 0x0008000C
RDP_VERSION_10_12 = 0x00080011

# colorDepth / postBeta2ColorDepth
RNS_UD_COLOR_4BPP = 0xCA00
RNS_UD_COLOR_8BPP = 0xCA01
RNS_UD_COLOR_16BPP_555 = 0xCA02
RNS_UD_COLOR_16BPP_565 = 0xCA03
RNS_UD_COLOR_24BPP = 0xCA04
RNS_UD_SAS_DEL = 0xAA03

# supportedColorDepths
RNS_UD_24BPP_SUPPORT = 0x0001
RNS_UD_16BPP_SUPPORT = 0x0002
RNS_UD_15BPP_SUPPORT = 0x0004
RNS_UD_32BPP_SUPPORT = 0x0008

# client earlyCapabilityFlags
RNS_UD_CS_SUPPORT_ERRINFO_PDU = 0x0001
RNS_UD_CS_WANT_32BPP_SESSION = 0x0002
RNS_UD_CS_SUPPORT_STATUSINFO_PDU = 0x0004
RNS_UD_CS_STRONG_ASYMMETRIC_KEYS = 0x0008
RNS_UD_CS_VALID_CONNECTION_TYPE = 0x0020
RNS_UD_CS_SUPPORT_MONITOR_LAYOUT_PDU = 0x0040
RNS_UD_CS_SUPPORT_NETCHAR_AUTODETECT = 0x0080
RNS_UD_CS_SUPPORT_DYNVC_GFX_PROTOCOL = 0x0100
RNS_UD_CS_SUPPORT_DYNAMIC_TIME_ZONE = 0x0200
RNS_UD_CS_SUPPORT_HEARTBEAT_PDU = 0x0400

# server earlyCapabilityFlags
RNS_UD_SC_EDGE_ACTIONS_SUPPORTED_V1 = 0x0001
RNS_UD_SC_DYNAMIC_DST_SUPPORTED = 0x0002
RNS_UD_SC_EDGE_ACTIONS_SUPPORTED_V2 = 0x0004

# keyboard
KEYBOARD_TYPE_IBM_ENHANCED = 4
KEYBOARD_LAYOUT_EN_US = 0x00000409

# Encryption (TS_UD_CS_SEC / TS_UD_SC_SEC1)
ENCRYPTION_METHOD_NONE = 0x00
ENCRYPTION_METHOD_40BIT = 0x01
ENCRYPTION_METHOD_128BIT = 0x02
ENCRYPTION_METHOD_56BIT = 0x08
ENCRYPTION_METHOD_FIPS = 0x10
ENCRYPTION_LEVEL_NONE = 0
ENCRYPTION_LEVEL_LOW = 1
ENCRYPTION_LEVEL_CLIENT_COMPATIBLE = 2
ENCRYPTION_LEVEL_HIGH = 3
ENCRYPTION_LEVEL_FIPS = 4

# CHANNEL_DEF options
CHANNEL_OPTION_INITIALIZED = 0x80000000
CHANNEL_OPTION_ENCRYPT_RDP = 0x40000000
CHANNEL_OPTION_COMPRESS_RDP = 0x00800000
CHANNEL_OPTION_SHOW_PROTOCOL = 0x00200000

# TS_UD_CS_CLUSTER flags
REDIRECTION_SUPPORTED = 0x00000001
REDIRECTED_SESSIONID_FIELD_VALID = 0x00000002
REDIRECTION_VERSION4 = 0x03 << 2
REDIRECTED_SMARTCARD = 0x00000040

MCS_IO_CHANNEL_ID = 1003

# TS_UD_SC_SEC1 limits: the random is 32 bytes; a certificate chain of a licensed server is a
# few KiB (proprietary_cert.MAX_SERVER_CERTIFICATE is the same bound)
MAX_SERVER_RANDOM = 32
MAX_SERVER_CERTIFICATE = 8 * (16384 + 4) + 64


def _block(block_type: int, body: bytes) -> bytes:
    return Writer().u16le(block_type).u16le(len(body) + 4).bytes(body).value()


def utf16_fixed(text: str, size: int) -> bytes:
    """UTF-16LE, NUL-terminated, truncated to whole characters and zero-filled to `size` bytes."""
    raw = text.encode("utf-16-le")[: size - 2]
    raw = raw[: len(raw) - len(raw) % 2]
    return raw.ljust(size, b"\x00")


def utf16_from_fixed(raw: bytes) -> str:
    """Text of a fixed NUL-padded UTF-16LE field; undecodable units become U+FFFD."""
    text = raw[: len(raw) - len(raw) % 2].decode("utf-16-le", "replace")
    return text.split("\x00", 1)[0]


# Optional TS_UD_CS_CORE fields after imeFileName, in wire order: (name, size, is_text).
_CORE_TAIL: tuple[tuple[str, int, bool], ...] = (
    ("post_beta2_color_depth", 2, False),
    ("client_product_id", 2, False),
    ("serial_number", 4, False),
    ("high_color_depth", 2, False),
    ("supported_color_depths", 2, False),
    ("early_capability_flags", 2, False),
    ("client_dig_product_id", 64, True),
    ("connection_type", 1, False),
    ("pad1octet", 1, False),
    ("server_selected_protocol", 4, False),
    ("desktop_physical_width", 4, False),
    ("desktop_physical_height", 4, False),
    ("desktop_orientation", 2, False),
    ("desktop_scale_factor", 4, False),
    ("device_scale_factor", 4, False),
)
_READ = {1: Reader.u8, 2: Reader.u16le, 4: Reader.u32le}
_WRITE = {1: Writer.u8, 2: Writer.u16le, 4: Writer.u32le}


@dataclass(frozen=True)
class ClientCoreData:
    """TS_UD_CS_CORE. Optional tail fields are None when absent; encoding stops at the first
    None. `server_selected_protocol` must echo the protocol the server chose in X.224."""

    BLOCK_TYPE: ClassVar[int] = CS_CORE

    version: int = RDP_VERSION_10_7
    desktop_width: int = 1024
    desktop_height: int = 768
    color_depth: int = RNS_UD_COLOR_8BPP
    sas_sequence: int = RNS_UD_SAS_DEL
    keyboard_layout: int = KEYBOARD_LAYOUT_EN_US
    client_build: int = 2600
    client_name: str = "rdplab"
    keyboard_type: int = KEYBOARD_TYPE_IBM_ENHANCED
    keyboard_subtype: int = 0
    keyboard_function_key: int = 12
    ime_file_name: str = ""
    post_beta2_color_depth: int | None = RNS_UD_COLOR_8BPP
    client_product_id: int | None = 1
    serial_number: int | None = 0
    high_color_depth: int | None = 16
    supported_color_depths: int | None = (
        RNS_UD_24BPP_SUPPORT | RNS_UD_16BPP_SUPPORT | RNS_UD_15BPP_SUPPORT
    )
    early_capability_flags: int | None = RNS_UD_CS_SUPPORT_ERRINFO_PDU
    client_dig_product_id: str | None = ""
    connection_type: int | None = 0
    pad1octet: int | None = 0
    server_selected_protocol: int | None = 0
    desktop_physical_width: int | None = 0
    desktop_physical_height: int | None = 0
    desktop_orientation: int | None = 0
    desktop_scale_factor: int | None = 0
    device_scale_factor: int | None = 0
    trailing: bytes = b""

    def encode_body(self) -> bytes:
        w = Writer()
        w.u32le(self.version).u16le(self.desktop_width).u16le(self.desktop_height)
        w.u16le(self.color_depth).u16le(self.sas_sequence)
        w.u32le(self.keyboard_layout).u32le(self.client_build)
        w.bytes(utf16_fixed(self.client_name, 32))
        w.u32le(self.keyboard_type).u32le(self.keyboard_subtype).u32le(self.keyboard_function_key)
        w.bytes(utf16_fixed(self.ime_file_name, 64))
        for name, size, is_text in _CORE_TAIL:
            value = getattr(self, name)
            if value is None:
                break
            if is_text:
                w.bytes(utf16_fixed(value, size))
            else:
                _WRITE[size](w, value)
        return w.bytes(self.trailing).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ClientCoreData:
        fields: dict[str, object] = {
            "version": r.u32le(),
            "desktop_width": r.u16le(),
            "desktop_height": r.u16le(),
            "color_depth": r.u16le(),
            "sas_sequence": r.u16le(),
            "keyboard_layout": r.u32le(),
            "client_build": r.u32le(),
            "client_name": utf16_from_fixed(r.bytes(32)),
            "keyboard_type": r.u32le(),
            "keyboard_subtype": r.u32le(),
            "keyboard_function_key": r.u32le(),
            "ime_file_name": utf16_from_fixed(r.bytes(64)),
        }
        present = True
        for name, size, is_text in _CORE_TAIL:
            if present and r.remaining >= size:
                fields[name] = utf16_from_fixed(r.bytes(size)) if is_text else _READ[size](r)
            else:
                present = False
                fields[name] = None
        return cls(**fields, trailing=r.rest())  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClientSecurityData:
    """TS_UD_CS_SEC: the encryption methods the client supports (ignored under TLS)."""

    BLOCK_TYPE: ClassVar[int] = CS_SECURITY

    encryption_methods: int = (
        ENCRYPTION_METHOD_40BIT
        | ENCRYPTION_METHOD_56BIT
        | ENCRYPTION_METHOD_128BIT
        | ENCRYPTION_METHOD_FIPS
    )
    ext_encryption_methods: int = 0

    def encode_body(self) -> bytes:
        return Writer().u32le(self.encryption_methods).u32le(self.ext_encryption_methods).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ClientSecurityData:
        return cls(r.u32le(), r.u32le())


@dataclass(frozen=True)
class ChannelDef:
    """CHANNEL_DEF: a static virtual channel name (up to 7 ASCII characters) and options."""

    name: str
    options: int = CHANNEL_OPTION_INITIALIZED

    def encode(self) -> bytes:
        raw = self.name.encode("ascii")[:7].ljust(8, b"\x00")
        return raw + self.options.to_bytes(4, "little")


@dataclass(frozen=True)
class ClientNetworkData:
    """TS_UD_CS_NET: the static virtual channels the client asks for."""

    BLOCK_TYPE: ClassVar[int] = CS_NET

    channels: tuple[ChannelDef, ...] = ()

    def encode_body(self) -> bytes:
        w = Writer().u32le(len(self.channels))
        for channel in self.channels:
            w.bytes(channel.encode())
        return w.value()

    @classmethod
    def decode_body(cls, r: Reader) -> ClientNetworkData:
        count = r.u32le()
        if count * 12 > r.remaining:
            raise r.fail(f"{count} channels announced but only {r.remaining} bytes")
        channels = []
        for _ in range(count):
            name = r.bytes(8).split(b"\x00", 1)[0].decode("ascii", "replace")
            channels.append(ChannelDef(name, r.u32le()))
        return cls(tuple(channels))


@dataclass(frozen=True)
class ClientClusterData:
    """TS_UD_CS_CLUSTER: redirection support (0x0D = supported, version 4)."""

    BLOCK_TYPE: ClassVar[int] = CS_CLUSTER

    flags: int = REDIRECTION_SUPPORTED | REDIRECTION_VERSION4
    redirected_session_id: int = 0

    def encode_body(self) -> bytes:
        return Writer().u32le(self.flags).u32le(self.redirected_session_id).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ClientClusterData:
        return cls(r.u32le(), r.u32le())


@dataclass(frozen=True)
class ClientMessageChannelData:
    """TS_UD_CS_MCS_MSGCHANNEL: asks for an MCS message channel (auto-detect, heartbeat)."""

    BLOCK_TYPE: ClassVar[int] = CS_MCS_MSGCHANNEL

    flags: int = 0

    def encode_body(self) -> bytes:
        return Writer().u32le(self.flags).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ClientMessageChannelData:
        return cls(r.u32le())


@dataclass(frozen=True)
class ClientMultitransportData:
    """TS_UD_CS_MULTITRANSPORT."""

    BLOCK_TYPE: ClassVar[int] = CS_MULTITRANSPORT

    flags: int = 0

    def encode_body(self) -> bytes:
        return Writer().u32le(self.flags).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ClientMultitransportData:
        return cls(r.u32le())


@dataclass(frozen=True)
class ServerCoreData:
    """TS_UD_SC_CORE. `client_requested_protocols` echoes the X.224 requestedProtocols."""

    BLOCK_TYPE: ClassVar[int] = SC_CORE

    version: int = RDP_VERSION_10_7
    client_requested_protocols: int | None = 0
    early_capability_flags: int | None = 0

    def encode_body(self) -> bytes:
        w = Writer().u32le(self.version)
        if self.client_requested_protocols is not None:
            w.u32le(self.client_requested_protocols)
            if self.early_capability_flags is not None:
                w.u32le(self.early_capability_flags)
        return w.value()

    @classmethod
    def decode_body(cls, r: Reader) -> ServerCoreData:
        version = r.u32le()
        requested = r.u32le() if r.remaining >= 4 else None
        early = r.u32le() if requested is not None and r.remaining >= 4 else None
        return cls(version, requested, early)


@dataclass(frozen=True)
class ServerSecurityData:
    """TS_UD_SC_SEC1. Under TLS/CredSSP: method 0, level 0, no random or certificate (12 bytes
    with its header)."""

    BLOCK_TYPE: ClassVar[int] = SC_SECURITY

    encryption_method: int = ENCRYPTION_METHOD_NONE
    encryption_level: int = ENCRYPTION_LEVEL_NONE
    server_random: bytes | None = None
    server_certificate: bytes | None = None

    def encode_body(self) -> bytes:
        w = Writer().u32le(self.encryption_method).u32le(self.encryption_level)
        if self.server_random is not None or self.server_certificate is not None:
            random = self.server_random or b""
            cert = self.server_certificate or b""
            w.u32le(len(random)).u32le(len(cert)).bytes(random).bytes(cert)
        return w.value()

    @classmethod
    def decode_body(cls, r: Reader) -> ServerSecurityData:
        method, level = r.u32le(), r.u32le()
        if r.remaining < 8:
            return cls(method, level)
        random_len, cert_len = r.u32le(), r.u32le()
        if random_len > MAX_SERVER_RANDOM or cert_len > MAX_SERVER_CERTIFICATE:
            raise r.fail(f"serverRandomLen {random_len} / serverCertLen {cert_len} over "
                         f"{MAX_SERVER_RANDOM} / {MAX_SERVER_CERTIFICATE}")
        return cls(method, level, r.bytes(random_len), r.bytes(cert_len))


@dataclass(frozen=True)
class ServerNetworkData:
    """TS_UD_SC_NET: the I/O channel id (1003) and one id per requested static channel,
    padded to a multiple of four bytes when the count is odd."""

    BLOCK_TYPE: ClassVar[int] = SC_NET

    mcs_channel_id: int = MCS_IO_CHANNEL_ID
    channel_ids: tuple[int, ...] = ()

    def encode_body(self) -> bytes:
        w = Writer().u16le(self.mcs_channel_id).u16le(len(self.channel_ids))
        for channel_id in self.channel_ids:
            w.u16le(channel_id)
        if len(self.channel_ids) % 2:
            w.u16le(0)
        return w.value()

    @classmethod
    def decode_body(cls, r: Reader) -> ServerNetworkData:
        io_channel, count = r.u16le(), r.u16le()
        ids = tuple(r.u16le() for _ in range(count))
        if count % 2 and r.remaining >= 2:
            r.skip(2)
        return cls(io_channel, ids)


@dataclass(frozen=True)
class ServerMessageChannelData:
    """TS_UD_SC_MCS_MSGCHANNEL."""

    BLOCK_TYPE: ClassVar[int] = SC_MCS_MSGCHANNEL

    mcs_channel_id: int

    def encode_body(self) -> bytes:
        return Writer().u16le(self.mcs_channel_id).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ServerMessageChannelData:
        return cls(r.u16le())


@dataclass(frozen=True)
class ServerMultitransportData:
    """TS_UD_SC_MULTITRANSPORT."""

    BLOCK_TYPE: ClassVar[int] = SC_MULTITRANSPORT

    flags: int = 0

    def encode_body(self) -> bytes:
        return Writer().u32le(self.flags).value()

    @classmethod
    def decode_body(cls, r: Reader) -> ServerMultitransportData:
        return cls(r.u32le())


@dataclass(frozen=True)
class UnknownBlock:
    """A user data block of a type this module does not interpret, kept verbatim."""

    block_type: int
    data: bytes

    @property
    def BLOCK_TYPE(self) -> int:
        return self.block_type

    def encode_body(self) -> bytes:
        return self.data


Block = (
    ClientCoreData
    | ClientSecurityData
    | ClientNetworkData
    | ClientClusterData
    | ClientMessageChannelData
    | ClientMultitransportData
    | ServerCoreData
    | ServerSecurityData
    | ServerNetworkData
    | ServerMessageChannelData
    | ServerMultitransportData
    | UnknownBlock
)

_CLIENT_BLOCKS: dict[int, type] = {
    c.BLOCK_TYPE: c
    for c in (
        ClientCoreData,
        ClientSecurityData,
        ClientNetworkData,
        ClientClusterData,
        ClientMessageChannelData,
        ClientMultitransportData,
    )
}
_SERVER_BLOCKS: dict[int, type] = {
    c.BLOCK_TYPE: c
    for c in (
        ServerCoreData,
        ServerSecurityData,
        ServerNetworkData,
        ServerMessageChannelData,
        ServerMultitransportData,
    )
}


def encode_blocks(blocks: tuple[Block, ...]) -> bytes:
    return b"".join(_block(b.BLOCK_TYPE, b.encode_body()) for b in blocks)


def decode_blocks(data: bytes, known: dict[int, type], what: str) -> tuple[Block, ...]:
    r = Reader(data, what)
    blocks: list[Block] = []
    while r.remaining:
        block_type = r.u16le()
        length = r.u16le()
        if length < 4:
            raise r.fail(f"user data block {block_type:#06x} with length {length}")
        body = r.sub(length - 4, f"{what} block {block_type:#06x}")
        cls = known.get(block_type)
        if cls is None:
            blocks.append(UnknownBlock(block_type, body.rest()))
        else:
            blocks.append(cls.decode_body(body))
    return tuple(blocks)


def _find(blocks: tuple[Block, ...], cls: type) -> object | None:
    return next((b for b in blocks if isinstance(b, cls)), None)


@dataclass(frozen=True)
class ClientData:
    """The client settings blocks of a Conference Create Request, in wire order."""

    blocks: tuple[Block, ...]

    @classmethod
    def create(
        cls,
        core: ClientCoreData,
        *,
        security: ClientSecurityData | None = None,
        network: ClientNetworkData | None = None,
        cluster: ClientClusterData | None = None,
        extra: tuple[Block, ...] = (),
    ) -> ClientData:
        """Blocks in the order mstsc and FreeRDP send them: core, cluster, security, net."""
        security = security if security is not None else ClientSecurityData()
        cluster = cluster if cluster is not None else ClientClusterData()
        ordered = (core, cluster, security, network, *extra)
        return cls(tuple(b for b in ordered if b is not None))

    @property
    def core(self) -> ClientCoreData | None:
        return _find(self.blocks, ClientCoreData)  # type: ignore[return-value]

    @property
    def security(self) -> ClientSecurityData | None:
        return _find(self.blocks, ClientSecurityData)  # type: ignore[return-value]

    @property
    def network(self) -> ClientNetworkData | None:
        return _find(self.blocks, ClientNetworkData)  # type: ignore[return-value]

    @property
    def cluster(self) -> ClientClusterData | None:
        return _find(self.blocks, ClientClusterData)  # type: ignore[return-value]

    @property
    def message_channel(self) -> ClientMessageChannelData | None:
        return _find(self.blocks, ClientMessageChannelData)  # type: ignore[return-value]

    @property
    def channels(self) -> tuple[ChannelDef, ...]:
        net = self.network
        return net.channels if net else ()

    def encode(self) -> bytes:
        return encode_blocks(self.blocks)

    @classmethod
    def decode(cls, data: bytes) -> ClientData:
        return cls(decode_blocks(data, _CLIENT_BLOCKS, "client data"))


@dataclass(frozen=True)
class ServerData:
    """The server settings blocks of a Conference Create Response, in wire order."""

    blocks: tuple[Block, ...]

    @classmethod
    def create(
        cls,
        core: ServerCoreData,
        network: ServerNetworkData,
        security: ServerSecurityData | None = None,
        *,
        message_channel: ServerMessageChannelData | None = None,
        multitransport: ServerMultitransportData | None = None,
    ) -> ServerData:
        """Blocks in the order Windows and FreeRDP send them: core, net, security, msgchannel."""
        security = security if security is not None else ServerSecurityData()
        ordered = (core, network, security, message_channel, multitransport)
        return cls(tuple(b for b in ordered if b is not None))

    @property
    def core(self) -> ServerCoreData | None:
        return _find(self.blocks, ServerCoreData)  # type: ignore[return-value]

    @property
    def security(self) -> ServerSecurityData | None:
        return _find(self.blocks, ServerSecurityData)  # type: ignore[return-value]

    @property
    def network(self) -> ServerNetworkData | None:
        return _find(self.blocks, ServerNetworkData)  # type: ignore[return-value]

    @property
    def message_channel(self) -> ServerMessageChannelData | None:
        return _find(self.blocks, ServerMessageChannelData)  # type: ignore[return-value]

    def encode(self) -> bytes:
        return encode_blocks(self.blocks)

    @classmethod
    def decode(cls, data: bytes) -> ServerData:
        return cls(decode_blocks(data, _SERVER_BLOCKS, "server data"))


def _connect_data_head(w: Writer) -> None:
    per.write_choice(w, 0)  # Key: object
    per.write_object_identifier(w, T124_02_98_OID)


def _read_connect_data_head(r: Reader) -> None:
    if per.read_choice(r) != 0:
        raise r.fail("ConnectData key is not an object identifier")
    oid = per.read_object_identifier(r)
    if oid != T124_02_98_OID:
        raise r.fail(f"unexpected T.124 object identifier {oid}")
    per.read_length(r)  # connectPDU length: MS-RDPBCGR says to ignore it


def _read_user_data(r: Reader, key: bytes) -> tuple[bytes, bool]:
    """The settings blocks after the H.221 key, and whether their length used the long form."""
    if per.read_number_of_sets(r) < 1:
        raise r.fail("no UserData set")
    if per.read_choice(r) != 0xC0:
        raise r.fail("UserData is not an h221NonStandard key with a value")
    got = per.read_octet_string(r, 4)
    if got != key:
        raise r.fail(f"H.221 key {got!r}, expected {key!r}")
    long_form = bool(r.peek_u8() & 0x80)
    return per.read_octet_string(r), long_form


@dataclass(frozen=True)
class ConferenceCreateRequest:
    """GCC Conference Create Request carrying the client settings (client to server)."""

    client_data: ClientData
    conference_name: str = CONFERENCE_NAME

    def encode(self) -> bytes:
        pdu = Writer()
        per.write_choice(pdu, 0)  # conferenceCreateRequest
        per.write_selection(pdu, 0x08)  # userData present
        per.write_numeric_string(pdu, self.conference_name, 1)
        per.write_padding(pdu, 1)
        per.write_number_of_sets(pdu, 1)
        per.write_choice(pdu, 0xC0)  # value present, h221NonStandard
        per.write_octet_string(pdu, H221_CS_KEY, 4)
        per.write_octet_string(pdu, self.client_data.encode())
        w = Writer()
        _connect_data_head(w)
        per.write_length(w, len(pdu))
        return w.bytes(pdu.value()).value()

    @classmethod
    def decode(cls, data: bytes | Reader) -> ConferenceCreateRequest:
        r = data if isinstance(data, Reader) else Reader(data, "GCC Conference Create Request")
        _read_connect_data_head(r)
        if per.read_choice(r) != 0:
            raise r.fail("ConnectGCCPDU is not a conferenceCreateRequest")
        if per.read_selection(r) != 0x08:
            raise r.fail("unsupported optional fields in ConferenceCreateRequest")
        name = per.read_numeric_string(r, 1)
        per.read_padding(r, 1)
        blocks, _ = _read_user_data(r, H221_CS_KEY)
        return cls(ClientData.decode(blocks), name)


@dataclass(frozen=True)
class ConferenceCreateResponse:
    """GCC Conference Create Response carrying the server settings (server to client)."""

    server_data: ServerData
    node_id: int = 0x79F3
    tag: int = 1
    result: int = 0
    # Older Windows servers write the userData length in two octets even below 0x80.
    long_length: bool = field(default=False, compare=False)

    def encode(self) -> bytes:
        w = Writer()
        _connect_data_head(w)
        per.write_length(w, 0x2A)  # ignored by clients; Windows and FreeRDP both send 0x2A
        per.write_choice(w, 0x14)  # conferenceCreateResponse
        per.write_integer16(w, self.node_id, 1001)
        per.write_integer(w, self.tag)
        per.write_enumerated(w, self.result)
        per.write_number_of_sets(w, 1)
        per.write_choice(w, 0xC0)
        per.write_octet_string(w, H221_SC_KEY, 4)
        blocks = self.server_data.encode()
        if self.long_length and len(blocks) < 0x80:
            w.u16be(0x8000 | len(blocks))
        else:
            per.write_length(w, len(blocks))
        return w.bytes(blocks).value()

    @classmethod
    def decode(cls, data: bytes | Reader) -> ConferenceCreateResponse:
        r = data if isinstance(data, Reader) else Reader(data, "GCC Conference Create Response")
        _read_connect_data_head(r)
        per.read_choice(r)
        node_id = per.read_integer16(r, 1001)
        tag = per.read_integer(r)
        result = per.read_enumerated(r, 16)
        blocks, long_form = _read_user_data(r, H221_SC_KEY)
        return cls(ServerData.decode(blocks), node_id, tag, result, long_form)


def check_selected_protocol(core: ClientCoreData, selected: int) -> None:
    """Raise ProtocolFailure when CS_CORE carries a serverSelectedProtocol that differs from the
    protocol the server chose in X.224 (FreeRDP and Windows servers drop such a client)."""
    echoed = core.server_selected_protocol
    if echoed is not None and echoed != selected:
        raise ProtocolFailure("mcs", f"serverSelectedProtocol {echoed} but X.224 chose {selected}")
