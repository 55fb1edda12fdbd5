"""Client Info PDU (MS-RDPBCGR 2.2.1.11): TS_INFO_PACKET and TS_EXTENDED_INFO_PACKET.

String lengths follow the spec exactly: cbDomain .. cbWorkingDir count the characters without
the mandatory NUL terminator that follows each string; cbClientAddress and cbClientDir include
it. Strings are UTF-16LE when INFO_UNICODE is set (always, for every client that matters).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .gcc import utf16_fixed, utf16_from_fixed
from .share import SEC_INFO_PKT, SecurityHeader
from .wire import Reader, Writer

INFO_MOUSE = 0x00000001
INFO_DISABLECTRLALTDEL = 0x00000002
INFO_AUTOLOGON = 0x00000008
INFO_UNICODE = 0x00000010
INFO_MAXIMIZESHELL = 0x00000020
INFO_LOGONNOTIFY = 0x00000040
INFO_COMPRESSION = 0x00000080
INFO_ENABLEWINDOWSKEY = 0x00000100
INFO_REMOTECONSOLEAUDIO = 0x00002000
INFO_FORCE_ENCRYPTED_CS_PDU = 0x00004000
INFO_RAIL = 0x00008000
INFO_LOGONERRORS = 0x00010000
INFO_MOUSE_HAS_WHEEL = 0x00020000
INFO_PASSWORD_IS_SC_PIN = 0x00040000
INFO_NOAUDIOPLAYBACK = 0x00080000
INFO_USING_SAVED_CREDS = 0x00100000
INFO_AUDIOCAPTURE = 0x00200000
INFO_VIDEO_DISABLE = 0x00400000
INFO_HIDEF_RAIL_SUPPORTED = 0x02000000
COMPRESSION_TYPE_MASK = 0x00001E00

DEFAULT_INFO_FLAGS = (
    INFO_MOUSE
    | INFO_DISABLECTRLALTDEL
    | INFO_UNICODE
    | INFO_MAXIMIZESHELL
    | INFO_ENABLEWINDOWSKEY
    | INFO_LOGONERRORS
    | INFO_MOUSE_HAS_WHEEL
    | INFO_FORCE_ENCRYPTED_CS_PDU
)

AF_INET = 0x0002
AF_INET6 = 0x0017

PERF_DISABLE_WALLPAPER = 0x00000001
PERF_DISABLE_FULLWINDOWDRAG = 0x00000002
PERF_DISABLE_MENUANIMATIONS = 0x00000004
PERF_DISABLE_THEMING = 0x00000008


def _encode_str(text: str, unicode: bool) -> bytes:
    return text.encode("utf-16-le") if unicode else text.encode("latin-1", "replace")


def _decode_str(raw: bytes, unicode: bool) -> str:
    if unicode:
        return raw[: len(raw) - len(raw) % 2].decode("utf-16-le", "replace")
    return raw.decode("latin-1")


@dataclass(frozen=True)
class SystemTime:
    """TS_SYSTEMTIME (eight 16-bit fields)."""

    year: int = 0
    month: int = 0
    day_of_week: int = 0
    day: int = 0
    hour: int = 0
    minute: int = 0
    second: int = 0
    milliseconds: int = 0

    def encode(self) -> bytes:
        w = Writer()
        for f in fields(self):
            w.u16le(getattr(self, f.name))
        return w.value()

    @classmethod
    def decode(cls, r: Reader) -> SystemTime:
        return cls(*(r.u16le() for _ in range(8)))


@dataclass(frozen=True)
class TimeZoneInformation:
    """TS_TIME_ZONE_INFORMATION (172 bytes). Biases are kept as unsigned 32-bit values."""

    bias: int = 0
    standard_name: str = "UTC"
    standard_date: SystemTime = SystemTime()
    standard_bias: int = 0
    daylight_name: str = "UTC"
    daylight_date: SystemTime = SystemTime()
    daylight_bias: int = 0

    def encode(self) -> bytes:
        w = Writer().u32le(self.bias).bytes(utf16_fixed(self.standard_name, 64))
        w.bytes(self.standard_date.encode()).u32le(self.standard_bias)
        w.bytes(utf16_fixed(self.daylight_name, 64)).bytes(self.daylight_date.encode())
        return w.u32le(self.daylight_bias).value()

    @classmethod
    def decode(cls, r: Reader) -> TimeZoneInformation:
        bias = r.u32le()
        standard_name = utf16_from_fixed(r.bytes(64))
        standard_date = SystemTime.decode(r)
        standard_bias = r.u32le()
        daylight_name = utf16_from_fixed(r.bytes(64))
        daylight_date = SystemTime.decode(r)
        return cls(
            bias,
            standard_name,
            standard_date,
            standard_bias,
            daylight_name,
            daylight_date,
            r.u32le(),
        )


@dataclass(frozen=True)
class ExtendedInfoPacket:
    """TS_EXTENDED_INFO_PACKET. Optional tail fields are None when absent; encoding stops at
    the first None (every field after an absent one must be absent too)."""

    client_address_family: int = AF_INET
    client_address: str = ""
    client_dir: str = ""
    client_time_zone: TimeZoneInformation | None = TimeZoneInformation()
    client_session_id: int | None = 0
    performance_flags: int | None = 0
    auto_reconnect_cookie: bytes | None = b""
    reserved1: int | None = None
    reserved2: int | None = None
    dynamic_dst_time_zone_key_name: bytes | None = None
    dynamic_daylight_time_disabled: int | None = None
    trailing: bytes = b""

    def _tail(self) -> list[tuple[object, int]]:
        """Optional fields in wire order with their kind: 0 time zone, 2/4 integer, -2 a
        16-bit length followed by that many bytes."""
        return [
            (self.client_time_zone, 0),
            (self.client_session_id, 4),
            (self.performance_flags, 4),
            (self.auto_reconnect_cookie, -2),
            (self.reserved1, 2),
            (self.reserved2, 2),
            (self.dynamic_dst_time_zone_key_name, -2),
            (self.dynamic_daylight_time_disabled, 2),
        ]

    def encode(self) -> bytes:
        address = self.client_address.encode("utf-16-le") + b"\x00\x00"
        directory = self.client_dir.encode("utf-16-le") + b"\x00\x00"
        w = Writer().u16le(self.client_address_family).u16le(len(address)).bytes(address)
        w.u16le(len(directory)).bytes(directory)
        for value, kind in self._tail():
            if value is None:
                break
            if isinstance(value, TimeZoneInformation):
                w.bytes(value.encode())
            elif isinstance(value, bytes):
                w.u16le(len(value)).bytes(value)
            elif kind == 4:
                w.u32le(value)  # type: ignore[arg-type]
            else:
                w.u16le(value)  # type: ignore[arg-type]
        return w.bytes(self.trailing).value()

    @classmethod
    def decode(cls, r: Reader) -> ExtendedInfoPacket:
        family = r.u16le()
        address = _decode_str(r.bytes(r.u16le()), True).split("\x00", 1)[0]
        directory = _decode_str(r.bytes(r.u16le()), True).split("\x00", 1)[0]
        names = [
            "client_time_zone",
            "client_session_id",
            "performance_flags",
            "auto_reconnect_cookie",
            "reserved1",
            "reserved2",
            "dynamic_dst_time_zone_key_name",
            "dynamic_daylight_time_disabled",
        ]
        kinds = [kind for _, kind in cls()._tail()]
        values: dict[str, object] = dict.fromkeys(names)
        for name, kind in zip(names, kinds, strict=True):
            need = 172 if kind == 0 else abs(kind)
            if r.remaining < need:
                break
            if kind == 0:
                values[name] = TimeZoneInformation.decode(r)
            elif kind == -2:
                values[name] = r.bytes(r.u16le())
            else:
                values[name] = r.u32le() if kind == 4 else r.u16le()
        return cls(family, address, directory, **values, trailing=r.rest())  # type: ignore[arg-type]


@dataclass(frozen=True)
class InfoPacket:
    """TS_INFO_PACKET; `extra` is the extended info packet RDP 5.0+ clients always send."""

    code_page: int = 0
    flags: int = DEFAULT_INFO_FLAGS
    domain: str = ""
    user_name: str = ""
    password: str = ""
    alternate_shell: str = ""
    working_dir: str = ""
    extra: ExtendedInfoPacket | None = ExtendedInfoPacket()

    @property
    def unicode(self) -> bool:
        return bool(self.flags & INFO_UNICODE)

    def encode(self) -> bytes:
        strings = [
            _encode_str(s, self.unicode)
            for s in (
                self.domain,
                self.user_name,
                self.password,
                self.alternate_shell,
                self.working_dir,
            )
        ]
        nul = b"\x00\x00" if self.unicode else b"\x00"
        w = Writer().u32le(self.code_page).u32le(self.flags)
        for s in strings:
            w.u16le(len(s))
        for s in strings:
            w.bytes(s).bytes(nul)
        if self.extra is not None:
            w.bytes(self.extra.encode())
        return w.value()

    @classmethod
    def decode(cls, data: bytes | Reader) -> InfoPacket:
        r = data if isinstance(data, Reader) else Reader(data, "TS_INFO_PACKET")
        code_page, flags = r.u32le(), r.u32le()
        unicode = bool(flags & INFO_UNICODE)
        lengths = [r.u16le() for _ in range(5)]
        nul = 2 if unicode else 1
        strings = []
        for n in lengths:
            strings.append(_decode_str(r.bytes(n), unicode))
            r.skip(nul)
        extra = ExtendedInfoPacket.decode(r) if r.remaining else None
        return cls(code_page, flags, *strings, extra=extra)


@dataclass(frozen=True)
class ClientInfoPdu:
    """Client Info PDU data: basic security header with SEC_INFO_PKT, then TS_INFO_PACKET."""

    info: InfoPacket
    security_flags: int = SEC_INFO_PKT
    security_flags_hi: int = 0

    def encode(self) -> bytes:
        header = SecurityHeader(self.security_flags, self.security_flags_hi).encode()
        return header + self.info.encode()

    @classmethod
    def decode(cls, data: bytes | Reader) -> ClientInfoPdu:
        r = data if isinstance(data, Reader) else Reader(data, "Client Info PDU")
        sec = SecurityHeader.decode(r)
        if not sec.flags & SEC_INFO_PKT:
            raise r.fail(f"security flags {sec.flags:#06x} lack SEC_INFO_PKT")
        return cls(InfoPacket.decode(r), sec.flags, sec.flags_hi)
