"""Framing of the RDP byte stream: TPKT (slow-path, RFC 1006) and fast-path frames.

Both kinds share one stream after the connection is established; the first byte tells them apart
(0x03 is TPKT, low two bits 0 is a fast-path header).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParseError
from .fastpath import fastpath_frame_length
from .wire import Reader, Writer

TPKT_VERSION = 3
TPKT_HEADER_LEN = 4
MAX_FRAME = 0xFFFF


@dataclass(frozen=True)
class Frame:
    """One complete frame cut from the stream: `fastpath` tells the kind, `data` is all of it."""

    fastpath: bool
    data: bytes


def encode_tpkt(payload: bytes) -> bytes:
    """Wrap a payload in a TPKT header."""
    length = len(payload) + TPKT_HEADER_LEN
    if length > MAX_FRAME:
        raise ValueError(f"TPKT payload too large: {len(payload)} bytes")
    return Writer().u8(TPKT_VERSION).u8(0).u16be(length).bytes(payload).value()


def frame_length(buf: bytes | bytearray) -> int | None:
    """Total length of the frame at the start of buf, or None while its header is incomplete."""
    if not buf:
        return None
    first = buf[0]
    if first == TPKT_VERSION:
        if len(buf) < TPKT_HEADER_LEN:
            return None
        length = (buf[2] << 8) | buf[3]
        if length < TPKT_HEADER_LEN + 3:
            raise ParseError("TPKT", f"length {length} is shorter than a TPKT + X.224 header")
        return length
    if first & 0x3 == 0:
        return fastpath_frame_length(buf)  # the one reading of the fast-path length
    raise ParseError("frame", f"first byte {first:#04x} is neither TPKT nor fast-path")


class FrameBuffer:
    """Accumulates stream bytes and yields complete frames."""

    def __init__(self, limit: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > self._limit:
            raise ParseError("frame", f"more than {self._limit} bytes buffered without a frame")

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buf)

    def take_all(self) -> bytes:
        """Everything buffered (the bytes after the last whole frame), leaving it empty."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest

    def next_frame(self) -> Frame | None:
        length = frame_length(self._buf)
        if length is None or len(self._buf) < length:
            return None
        data = bytes(self._buf[:length])
        del self._buf[:length]
        return Frame(fastpath=data[0] != TPKT_VERSION, data=data)


def decode_tpkt(data: bytes) -> bytes:
    """Payload of one whole TPKT frame."""
    r = Reader(data, "TPKT")
    if r.u8() != TPKT_VERSION:
        raise r.fail("not TPKT version 3")
    r.skip(1)
    length = r.u16be()
    if length != len(data):
        raise r.fail(f"length field {length} but frame has {len(data)} bytes")
    return r.rest()
