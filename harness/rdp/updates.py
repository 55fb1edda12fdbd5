"""Graphics update bodies (MS-RDPBCGR 2.2.9.1.1.3): slow-path Update PDU data and the bitmap
update both paths share (TS_UPDATE_BITMAP_DATA / TS_BITMAP_DATA).

Pure bodies: share.py wraps them in the Share Data header, fastpath.py reuses BitmapUpdate for
FASTPATH_UPDATETYPE_BITMAP payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .wire import Reader, Writer

PDUTYPE2_UPDATE = 0x02

UPDATETYPE_ORDERS = 0x0000
UPDATETYPE_BITMAP = 0x0001
UPDATETYPE_PALETTE = 0x0002
UPDATETYPE_SYNCHRONIZE = 0x0003

BITMAP_COMPRESSION = 0x0001
NO_BITMAP_COMPRESSION_HDR = 0x0400

TILE_WIDTH = 64  # a multiple of four pixels: uncompressed rows need no padding at any depth
MAX_RECT_BYTES = 8192


@dataclass(frozen=True)
class BitmapData:
    """TS_BITMAP_DATA: one rectangle. `comp_header` is the 8-byte TS_CD_HEADER of a compressed
    bitmap sent without NO_BITMAP_COMPRESSION_HDR, else None."""

    dest_left: int
    dest_top: int
    dest_right: int
    dest_bottom: int
    width: int
    height: int
    bits_per_pixel: int
    flags: int
    data: bytes
    comp_header: bytes | None = None

    @property
    def compressed(self) -> bool:
        return bool(self.flags & BITMAP_COMPRESSION)

    def encode(self) -> bytes:
        header = self.comp_header or b""
        w = Writer().u16le(self.dest_left).u16le(self.dest_top)
        w.u16le(self.dest_right).u16le(self.dest_bottom)
        w.u16le(self.width).u16le(self.height).u16le(self.bits_per_pixel).u16le(self.flags)
        w.u16le(len(header) + len(self.data))
        return w.bytes(header).bytes(self.data).value()

    @classmethod
    def decode(cls, r: Reader) -> BitmapData:
        head = [r.u16le() for _ in range(8)]
        length = r.u16le()
        flags = head[7]
        comp_header = None
        if flags & BITMAP_COMPRESSION and not flags & NO_BITMAP_COMPRESSION_HDR:
            if length < 8:
                raise r.fail(f"compressed bitmap length {length} shorter than its header")
            comp_header = r.bytes(8)
            length -= 8
        return cls(*head, data=r.bytes(length), comp_header=comp_header)


@dataclass(frozen=True)
class BitmapUpdate:
    """TS_UPDATE_BITMAP_DATA: updateType (1), numberRectangles, rectangles."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_UPDATE

    rectangles: tuple[BitmapData, ...]

    @property
    def byte_count(self) -> int:
        """Bitmap payload bytes carried (what a usable session must actually receive)."""
        return sum(len(rect.data) for rect in self.rectangles)

    def encode(self) -> bytes:
        w = Writer().u16le(UPDATETYPE_BITMAP).u16le(len(self.rectangles))
        for rect in self.rectangles:
            w.bytes(rect.encode())
        return w.value()

    @classmethod
    def decode_rectangles(cls, r: Reader) -> BitmapUpdate:
        count = r.u16le()
        return cls(tuple(BitmapData.decode(r) for _ in range(count)))


@dataclass(frozen=True)
class OtherUpdate:
    """A slow-path update of another type (orders, palette, synchronize), kept raw."""

    PDUTYPE2: ClassVar[int] = PDUTYPE2_UPDATE

    update_type: int
    data: bytes = b""

    @property
    def byte_count(self) -> int:
        return len(self.data)

    def encode(self) -> bytes:
        return Writer().u16le(self.update_type).bytes(self.data).value()


UpdateBody = BitmapUpdate | OtherUpdate


def decode_update(data: bytes) -> UpdateBody:
    """The body of a slow-path Update PDU (after the Share Data header)."""
    r = Reader(data, "Update PDU")
    update_type = r.u16le()
    if update_type != UPDATETYPE_BITMAP:
        return OtherUpdate(update_type, r.rest())
    update = BitmapUpdate.decode_rectangles(r)
    r.expect_end()
    return update


def _pixels(bpp: int, count: int, seed: int) -> bytes:
    """A deterministic pattern (tiles get distinct colours so a viewer shows a mosaic)."""
    bytes_pp = (bpp + 7) // 8
    pixel = bytes(((seed * 37 + i * 91) & 0xFF) for i in range(bytes_pp))
    return pixel * count


def plan_bitmap_rects(
    width: int, height: int, total_bytes: int, bpp: int = 16, max_rect_bytes: int = MAX_RECT_BYTES
) -> list[BitmapData]:
    """Uncompressed tiles covering the desktop row by row (wrapping around when total_bytes is
    more than one screen) until their pixel data sums to at least total_bytes.

    Every bitmap is a multiple of four pixels wide (rows need no padding at any depth); edge
    tiles are clipped by their destination rectangle, not by their bitmap size."""
    if bpp not in (8, 15, 16, 24, 32):
        raise ValueError(f"unsupported bpp {bpp}")
    if width <= 0 or height <= 0:
        raise ValueError("desktop size must be positive")
    bytes_pp = (bpp + 7) // 8
    tile_w = min(TILE_WIDTH, (width + 3) // 4 * 4)
    tile_h = max(1, min(height, max_rect_bytes // (tile_w * bytes_pp)))
    rects: list[BitmapData] = []
    sent = 0
    seed = 0
    while True:
        for top in range(0, height, tile_h):
            for left in range(0, width, tile_w):
                h = min(tile_h, height - top)
                right = min(left + tile_w, width) - 1
                data = _pixels(bpp, tile_w * h, seed)
                seed += 1
                rects.append(BitmapData(left, top, right, top + h - 1, tile_w, h, bpp, 0, data))
                sent += len(data)
                if sent >= total_bytes:
                    return rects
