"""Capability sets of the Demand Active / Confirm Active PDUs (MS-RDPBCGR 2.2.7).

Each typed set decodes its body; a set whose body does not re-encode to the same bytes (an
unknown type, an odd length, a field this module does not model) is kept as RawCapability, so
a decoded capability list always re-encodes byte for byte. `server_capabilities` and
`client_capabilities` build the sets xfreerdp 2.11 / freerdp-shadow / Windows accept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from .errors import ParseError
from .wire import Reader, Writer

CAPSTYPE_GENERAL = 1
CAPSTYPE_BITMAP = 2
CAPSTYPE_ORDER = 3
CAPSTYPE_BITMAPCACHE = 4
CAPSTYPE_CONTROL = 5
CAPSTYPE_ACTIVATION = 7
CAPSTYPE_POINTER = 8
CAPSTYPE_SHARE = 9
CAPSTYPE_COLORCACHE = 10
CAPSTYPE_SOUND = 12
CAPSTYPE_INPUT = 13
CAPSTYPE_FONT = 14
CAPSTYPE_BRUSH = 15
CAPSTYPE_GLYPHCACHE = 16
CAPSTYPE_OFFSCREENCACHE = 17
CAPSTYPE_BITMAPCACHE_HOSTSUPPORT = 18
CAPSTYPE_BITMAPCACHE_REV2 = 19
CAPSTYPE_VIRTUALCHANNEL = 20
CAPSTYPE_DRAWNINEGRIDCACHE = 21
CAPSTYPE_DRAWGDIPLUS = 22
CAPSTYPE_RAIL = 23
CAPSTYPE_WINDOW = 24
CAPSETTYPE_COMPDESK = 25
CAPSETTYPE_MULTIFRAGMENTUPDATE = 26
CAPSETTYPE_LARGE_POINTER = 27
CAPSETTYPE_SURFACE_COMMANDS = 28
CAPSETTYPE_BITMAP_CODECS = 29
CAPSSETTYPE_FRAME_ACKNOWLEDGE = 30

# General capability
OSMAJORTYPE_WINDOWS = 1
OSMINORTYPE_WINDOWS_NT = 3
TS_CAPS_PROTOCOLVERSION = 0x0200
FASTPATH_OUTPUT_SUPPORTED = 0x0001
LONG_CREDENTIALS_SUPPORTED = 0x0004
AUTORECONNECT_SUPPORTED = 0x0008
ENC_SALTED_CHECKSUM = 0x0010
NO_BITMAP_COMPRESSION_HDR = 0x0400

# Order capability
NEGOTIATEORDERSUPPORT = 0x0002
ZEROBOUNDSDELTASSUPPORT = 0x0008
COLORINDEXSUPPORT = 0x0020
SOLIDPATTERNBRUSHONLY = 0x0040
ORDERFLAGS_EXTRA_FLAGS = 0x0080

# Input capability
INPUT_FLAG_SCANCODES = 0x0001
INPUT_FLAG_MOUSEX = 0x0004
INPUT_FLAG_FASTPATH_INPUT = 0x0008
INPUT_FLAG_UNICODE = 0x0010
INPUT_FLAG_FASTPATH_INPUT2 = 0x0020
TS_INPUT_FLAG_MOUSE_HWHEEL = 0x0100

# Misc
FONTSUPPORT_FONTLIST = 0x0001
SOUND_BEEPS_FLAG = 0x0001
VCCAPS_NO_COMPR = 0
BITMAPCACHE_REV2 = 0x01
LARGE_POINTER_FLAG_96x96 = 0x0001
ALLOW_CACHE_WAITING_LIST_FLAG = 0x0002
CONTROLPRIORITY_NEVER = 0x0002


@dataclass(frozen=True)
class _Capability:
    """Base of the typed sets: fields are encoded in declaration order by `_layout`."""

    CAPSET_TYPE: ClassVar[int]
    # (field name, size in bytes); size 0 marks a fixed-size bytes field given in _BYTES.
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]]

    def encode_body(self) -> bytes:
        w = Writer()
        for name, size in self._LAYOUT:
            value = getattr(self, name)
            if isinstance(value, bytes):
                if len(value) != size:
                    raise ValueError(f"{name} must be {size} bytes")
                w.bytes(value)
            elif size == 1:
                w.u8(value)
            elif size == 2:
                w.u16le(value)
            else:
                w.u32le(value)
        return w.value()

    @classmethod
    def decode_body(cls, r: Reader) -> _Capability:
        values: dict[str, object] = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, size in cls._LAYOUT:
            if types[name] in ("bytes", bytes):
                values[name] = r.bytes(size)
            elif size == 1:
                values[name] = r.u8()
            elif size == 2:
                values[name] = r.u16le()
            else:
                values[name] = r.u32le()
        return cls(**values)  # type: ignore[arg-type]

    def encode(self) -> bytes:
        body = self.encode_body()
        return Writer().u16le(self.CAPSET_TYPE).u16le(len(body) + 4).bytes(body).value()


@dataclass(frozen=True)
class GeneralCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_GENERAL
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("os_major_type", 2),
        ("os_minor_type", 2),
        ("protocol_version", 2),
        ("pad2octets_a", 2),
        ("general_compression_types", 2),
        ("extra_flags", 2),
        ("update_capability_flag", 2),
        ("remote_unshare_flag", 2),
        ("general_compression_level", 2),
        ("refresh_rect_support", 1),
        ("suppress_output_support", 1),
    )

    os_major_type: int = OSMAJORTYPE_WINDOWS
    os_minor_type: int = OSMINORTYPE_WINDOWS_NT
    protocol_version: int = TS_CAPS_PROTOCOLVERSION
    pad2octets_a: int = 0
    general_compression_types: int = 0
    extra_flags: int = (
        FASTPATH_OUTPUT_SUPPORTED
        | NO_BITMAP_COMPRESSION_HDR
        | LONG_CREDENTIALS_SUPPORTED
        | AUTORECONNECT_SUPPORTED
        | ENC_SALTED_CHECKSUM
    )
    update_capability_flag: int = 0
    remote_unshare_flag: int = 0
    general_compression_level: int = 0
    refresh_rect_support: int = 1
    suppress_output_support: int = 1


@dataclass(frozen=True)
class BitmapCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_BITMAP
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("preferred_bits_per_pixel", 2),
        ("receive1_bit_per_pixel", 2),
        ("receive4_bits_per_pixel", 2),
        ("receive8_bits_per_pixel", 2),
        ("desktop_width", 2),
        ("desktop_height", 2),
        ("pad2octets", 2),
        ("desktop_resize_flag", 2),
        ("bitmap_compression_flag", 2),
        ("high_color_flags", 1),
        ("drawing_flags", 1),
        ("multiple_rectangle_support", 2),
        ("pad2octets_b", 2),
    )

    preferred_bits_per_pixel: int = 16
    receive1_bit_per_pixel: int = 1
    receive4_bits_per_pixel: int = 1
    receive8_bits_per_pixel: int = 1
    desktop_width: int = 1024
    desktop_height: int = 768
    pad2octets: int = 0
    desktop_resize_flag: int = 1
    bitmap_compression_flag: int = 1
    high_color_flags: int = 0
    drawing_flags: int = 0
    multiple_rectangle_support: int = 1
    pad2octets_b: int = 0


@dataclass(frozen=True)
class OrderCapability(_Capability):
    """All orderSupport entries zero by default: the peer then sends bitmaps, no orders."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_ORDER
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("terminal_descriptor", 16),
        ("pad4octets_a", 4),
        ("desktop_save_x_granularity", 2),
        ("desktop_save_y_granularity", 2),
        ("pad2octets_a", 2),
        ("maximum_order_level", 2),
        ("number_fonts", 2),
        ("order_flags", 2),
        ("order_support", 32),
        ("text_flags", 2),
        ("order_support_ex_flags", 2),
        ("pad4octets_b", 4),
        ("desktop_save_size", 4),
        ("pad2octets_c", 2),
        ("pad2octets_d", 2),
        ("text_ansi_code_page", 2),
        ("pad2octets_e", 2),
    )

    terminal_descriptor: bytes = bytes(16)
    pad4octets_a: int = 0
    desktop_save_x_granularity: int = 1
    desktop_save_y_granularity: int = 20
    pad2octets_a: int = 0
    maximum_order_level: int = 1
    number_fonts: int = 0
    order_flags: int = NEGOTIATEORDERSUPPORT | ZEROBOUNDSDELTASSUPPORT | COLORINDEXSUPPORT
    order_support: bytes = bytes(32)
    text_flags: int = 0
    order_support_ex_flags: int = 0
    pad4octets_b: int = 0
    desktop_save_size: int = 230400
    pad2octets_c: int = 0
    pad2octets_d: int = 0
    text_ansi_code_page: int = 0
    pad2octets_e: int = 0


@dataclass(frozen=True)
class BitmapCacheCapability(_Capability):
    """Revision 1 bitmap cache (TS_BITMAPCACHE_CAPABILITYSET)."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_BITMAPCACHE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("pads", 24),
        ("cache0_entries", 2),
        ("cache0_maximum_cell_size", 2),
        ("cache1_entries", 2),
        ("cache1_maximum_cell_size", 2),
        ("cache2_entries", 2),
        ("cache2_maximum_cell_size", 2),
    )

    pads: bytes = bytes(24)
    cache0_entries: int = 200
    cache0_maximum_cell_size: int = 512
    cache1_entries: int = 600
    cache1_maximum_cell_size: int = 2048
    cache2_entries: int = 1000
    cache2_maximum_cell_size: int = 8192


@dataclass(frozen=True)
class BitmapCacheRev2Capability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_BITMAPCACHE_REV2
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("cache_flags", 2),
        ("pad2", 1),
        ("num_cell_caches", 1),
        ("cell_info0", 4),
        ("cell_info1", 4),
        ("cell_info2", 4),
        ("cell_info3", 4),
        ("cell_info4", 4),
        ("pad3", 12),
    )

    cache_flags: int = ALLOW_CACHE_WAITING_LIST_FLAG
    pad2: int = 0
    num_cell_caches: int = 3
    cell_info0: int = 120
    cell_info1: int = 120
    cell_info2: int = 336
    cell_info3: int = 0
    cell_info4: int = 0
    pad3: bytes = bytes(12)


@dataclass(frozen=True)
class ControlCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_CONTROL
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("control_flags", 2),
        ("remote_detach_flag", 2),
        ("control_interest", 2),
        ("detach_interest", 2),
    )

    control_flags: int = 0
    remote_detach_flag: int = 0
    control_interest: int = CONTROLPRIORITY_NEVER
    detach_interest: int = CONTROLPRIORITY_NEVER


@dataclass(frozen=True)
class ActivationCapability(_Capability):
    """Window activation capability set."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_ACTIVATION
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("help_key_flag", 2),
        ("help_key_index_flag", 2),
        ("help_extended_key_flag", 2),
        ("window_manager_key_flag", 2),
    )

    help_key_flag: int = 0
    help_key_index_flag: int = 0
    help_extended_key_flag: int = 0
    window_manager_key_flag: int = 0


@dataclass(frozen=True)
class PointerCapability(_Capability):
    """pointerCacheSize is optional (absent in old clients): None leaves it out."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_POINTER
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("color_pointer_flag", 2),
        ("color_pointer_cache_size", 2),
    )

    color_pointer_flag: int = 1
    color_pointer_cache_size: int = 25
    pointer_cache_size: int | None = 25

    def encode_body(self) -> bytes:
        body = super().encode_body()
        if self.pointer_cache_size is not None:
            body += self.pointer_cache_size.to_bytes(2, "little")
        return body

    @classmethod
    def decode_body(cls, r: Reader) -> PointerCapability:
        flag, size = r.u16le(), r.u16le()
        return cls(flag, size, r.u16le() if r.remaining >= 2 else None)


@dataclass(frozen=True)
class ShareCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_SHARE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("node_id", 2), ("pad2octets", 2))

    node_id: int = 0
    pad2octets: int = 0


@dataclass(frozen=True)
class ColorCacheCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_COLORCACHE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("color_table_cache_size", 2),
        ("pad2octets", 2),
    )

    color_table_cache_size: int = 6
    pad2octets: int = 0


@dataclass(frozen=True)
class SoundCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_SOUND
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("sound_flags", 2), ("pad2octets", 2))

    sound_flags: int = 0
    pad2octets: int = 0


@dataclass(frozen=True)
class InputCapability(_Capability):
    """ime_file_name is kept as its raw 64 bytes (Windows leaves stack garbage in it)."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_INPUT
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("input_flags", 2),
        ("pad2octets_a", 2),
        ("keyboard_layout", 4),
        ("keyboard_type", 4),
        ("keyboard_subtype", 4),
        ("keyboard_function_key", 4),
        ("ime_file_name", 64),
    )

    input_flags: int = INPUT_FLAG_SCANCODES | INPUT_FLAG_MOUSEX | INPUT_FLAG_UNICODE
    pad2octets_a: int = 0
    keyboard_layout: int = 0x409
    keyboard_type: int = 4
    keyboard_subtype: int = 0
    keyboard_function_key: int = 12
    ime_file_name: bytes = bytes(64)


@dataclass(frozen=True)
class FontCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_FONT
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("font_support_flags", 2),
        ("pad2octets", 2),
    )

    font_support_flags: int = FONTSUPPORT_FONTLIST
    pad2octets: int = 0


@dataclass(frozen=True)
class BrushCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_BRUSH
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("brush_support_level", 4),)

    brush_support_level: int = 0


@dataclass(frozen=True)
class GlyphCacheCapability(_Capability):
    """glyph_cache holds ten (entries, maximum cell size) pairs; support level 0 = none."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_GLYPHCACHE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = ()

    glyph_cache: tuple[tuple[int, int], ...] = (
        (254, 4),
        (254, 4),
        (254, 8),
        (254, 8),
        (254, 16),
        (254, 32),
        (254, 64),
        (254, 128),
        (254, 256),
        (64, 2048),
    )
    frag_cache: int = 0x01000100
    glyph_support_level: int = 0
    pad2octets: int = 0

    def encode_body(self) -> bytes:
        if len(self.glyph_cache) != 10:
            raise ValueError("glyph_cache needs ten entries")
        w = Writer()
        for entries, size in self.glyph_cache:
            w.u16le(entries).u16le(size)
        w.u32le(self.frag_cache).u16le(self.glyph_support_level).u16le(self.pad2octets)
        return w.value()

    @classmethod
    def decode_body(cls, r: Reader) -> GlyphCacheCapability:
        cache = tuple((r.u16le(), r.u16le()) for _ in range(10))
        return cls(cache, r.u32le(), r.u16le(), r.u16le())


@dataclass(frozen=True)
class OffscreenCacheCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_OFFSCREENCACHE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("offscreen_support_level", 4),
        ("offscreen_cache_size", 2),
        ("offscreen_cache_entries", 2),
    )

    offscreen_support_level: int = 0
    offscreen_cache_size: int = 0
    offscreen_cache_entries: int = 0


@dataclass(frozen=True)
class BitmapCacheHostSupportCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_BITMAPCACHE_HOSTSUPPORT
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (
        ("cache_version", 1),
        ("pad1", 1),
        ("pad2", 2),
    )

    cache_version: int = BITMAPCACHE_REV2
    pad1: int = 0
    pad2: int = 0


@dataclass(frozen=True)
class VirtualChannelCapability(_Capability):
    """vc_chunk_size is optional (1600 when absent)."""

    CAPSET_TYPE: ClassVar[int] = CAPSTYPE_VIRTUALCHANNEL
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("flags", 4),)

    flags: int = VCCAPS_NO_COMPR
    vc_chunk_size: int | None = 1600

    def encode_body(self) -> bytes:
        body = super().encode_body()
        if self.vc_chunk_size is not None:
            body += self.vc_chunk_size.to_bytes(4, "little")
        return body

    @classmethod
    def decode_body(cls, r: Reader) -> VirtualChannelCapability:
        flags = r.u32le()
        return cls(flags, r.u32le() if r.remaining >= 4 else None)


@dataclass(frozen=True)
class MultifragmentUpdateCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSETTYPE_MULTIFRAGMENTUPDATE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("max_request_size", 4),)

    max_request_size: int = 0x00100000


@dataclass(frozen=True)
class LargePointerCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSETTYPE_LARGE_POINTER
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("large_pointer_support_flags", 2),)

    large_pointer_support_flags: int = LARGE_POINTER_FLAG_96x96


@dataclass(frozen=True)
class DesktopCompositionCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSETTYPE_COMPDESK
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("comp_desk_support_level", 2),)

    comp_desk_support_level: int = 0


@dataclass(frozen=True)
class SurfaceCommandsCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSETTYPE_SURFACE_COMMANDS
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("cmd_flags", 4), ("reserved", 4))

    cmd_flags: int = 0
    reserved: int = 0


@dataclass(frozen=True)
class FrameAcknowledgeCapability(_Capability):
    CAPSET_TYPE: ClassVar[int] = CAPSSETTYPE_FRAME_ACKNOWLEDGE
    _LAYOUT: ClassVar[tuple[tuple[str, int], ...]] = (("max_unacknowledged_frame_count", 4),)

    max_unacknowledged_frame_count: int = 2


@dataclass(frozen=True)
class RawCapability:
    """A capability set kept as its type and body bytes."""

    capability_type: int
    data: bytes

    @property
    def CAPSET_TYPE(self) -> int:
        return self.capability_type

    def encode_body(self) -> bytes:
        return self.data

    def encode(self) -> bytes:
        w = Writer().u16le(self.capability_type).u16le(len(self.data) + 4)
        return w.bytes(self.data).value()


Capability = _Capability | RawCapability

_TYPED: dict[int, type[_Capability]] = {
    c.CAPSET_TYPE: c
    for c in (
        GeneralCapability,
        BitmapCapability,
        OrderCapability,
        BitmapCacheCapability,
        BitmapCacheRev2Capability,
        ControlCapability,
        ActivationCapability,
        PointerCapability,
        ShareCapability,
        ColorCacheCapability,
        SoundCapability,
        InputCapability,
        FontCapability,
        BrushCapability,
        GlyphCacheCapability,
        OffscreenCacheCapability,
        BitmapCacheHostSupportCapability,
        VirtualChannelCapability,
        MultifragmentUpdateCapability,
        LargePointerCapability,
        DesktopCompositionCapability,
        SurfaceCommandsCapability,
        FrameAcknowledgeCapability,
    )
}


def decode_capability(capability_type: int, body: bytes) -> Capability:
    """The typed set when its body round-trips exactly, otherwise a RawCapability."""
    cls = _TYPED.get(capability_type)
    if cls is not None:
        try:
            r = Reader(body, f"capability set {capability_type}")
            typed = cls.decode_body(r)
            if typed.encode_body() == body:
                return typed
        except (ParseError, ValueError):
            pass
    return RawCapability(capability_type, body)


def encode_capability_sets(caps: list[Capability] | tuple[Capability, ...]) -> bytes:
    """numberCapabilities, pad2Octets and the sets (the combinedCapabilities block)."""
    w = Writer().u16le(len(caps)).u16le(0)
    for cap in caps:
        w.bytes(cap.encode())
    return w.value()


def decode_capability_sets(r: Reader) -> tuple[Capability, ...]:
    """Reads numberCapabilities and pad2Octets, then that many sets (stops early, as FreeRDP
    does, when the data runs out)."""
    count = r.u16le()
    r.skip(2)
    caps: list[Capability] = []
    for _ in range(count):
        if r.remaining < 4:
            break
        capability_type = r.u16le()
        length = r.u16le()
        if length < 4:
            raise r.fail(f"capability set {capability_type} with length {length}")
        caps.append(decode_capability(capability_type, r.bytes(length - 4)))
    return tuple(caps)


def find_capability(caps: tuple[Capability, ...] | list[Capability], cls: type) -> object | None:
    return next((c for c in caps if isinstance(c, cls)), None)


def server_capabilities(
    width: int,
    height: int,
    bpp: int = 16,
    *,
    node_id: int = 1002,
    fastpath_output: bool = True,
    fastpath_input: bool = True,
    multifrag_max_request_size: int = 0x00100000,
    large_pointer: bool = True,
) -> list[Capability]:
    """A minimal server set xfreerdp 2.11 accepts: only sets FreeRDP expects from a server."""
    extra = NO_BITMAP_COMPRESSION_HDR | LONG_CREDENTIALS_SUPPORTED | AUTORECONNECT_SUPPORTED
    if fastpath_output:
        extra |= FASTPATH_OUTPUT_SUPPORTED
    input_flags = INPUT_FLAG_SCANCODES | INPUT_FLAG_MOUSEX | INPUT_FLAG_UNICODE
    if fastpath_input:
        input_flags |= INPUT_FLAG_FASTPATH_INPUT2
    caps: list[Capability] = [
        GeneralCapability(extra_flags=extra),
        BitmapCapability(preferred_bits_per_pixel=bpp, desktop_width=width, desktop_height=height),
        OrderCapability(),
        PointerCapability(),
        InputCapability(
            input_flags=input_flags, keyboard_layout=0, keyboard_type=0, keyboard_function_key=0
        ),
        VirtualChannelCapability(),
        ShareCapability(node_id=node_id),
        FontCapability(),
        ColorCacheCapability(),
        MultifragmentUpdateCapability(multifrag_max_request_size),
    ]
    if large_pointer:
        caps.append(LargePointerCapability())
    return caps


def client_capabilities(
    width: int,
    height: int,
    bpp: int = 16,
    *,
    keyboard_layout: int = 0x409,
    fastpath_output: bool = True,
    fastpath_input: bool = True,
    bitmap_cache_rev2: bool = True,
    multifrag_max_request_size: int = 0x00100000,
) -> list[Capability]:
    """A client set Windows and freerdp-shadow accept (the sets mstsc sends, no orders)."""
    extra = NO_BITMAP_COMPRESSION_HDR | LONG_CREDENTIALS_SUPPORTED | AUTORECONNECT_SUPPORTED
    if fastpath_output:
        extra |= FASTPATH_OUTPUT_SUPPORTED | ENC_SALTED_CHECKSUM
    input_flags = INPUT_FLAG_SCANCODES | INPUT_FLAG_MOUSEX | INPUT_FLAG_UNICODE
    if fastpath_input:
        input_flags |= INPUT_FLAG_FASTPATH_INPUT | INPUT_FLAG_FASTPATH_INPUT2
    cache: Capability = (
        BitmapCacheRev2Capability() if bitmap_cache_rev2 else BitmapCacheCapability()
    )
    return [
        GeneralCapability(extra_flags=extra, refresh_rect_support=0, suppress_output_support=0),
        BitmapCapability(preferred_bits_per_pixel=bpp, desktop_width=width, desktop_height=height),
        OrderCapability(),
        cache,
        PointerCapability(color_pointer_cache_size=20, pointer_cache_size=21),
        InputCapability(input_flags=input_flags, keyboard_layout=keyboard_layout),
        BrushCapability(),
        GlyphCacheCapability(),
        OffscreenCacheCapability(),
        VirtualChannelCapability(),
        SoundCapability(),
        ShareCapability(),
        ControlCapability(),
        ActivationCapability(),
        FontCapability(),
        ColorCacheCapability(),
        MultifragmentUpdateCapability(multifrag_max_request_size),
    ]
