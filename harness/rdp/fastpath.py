"""Fast-path framing (MS-RDPBCGR 2.2.9.1.2 output, 2.2.8.1.2 input).

Output: what FreeRDP and Windows servers send after activation (header byte, 1- or 2-byte
length, then update records with updateHeader/compressionFlags/size), plus reassembly of
fragmented updates. Input: what xfreerdp sends after activation, to recognise and skip it.
Encrypted payloads (Standard RDP Security) are kept opaque: TLS sessions never use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ParseError
from .updates import BitmapUpdate
from .wire import Reader, Writer

FASTPATH_ACTION_FASTPATH = 0x0
FASTPATH_ACTION_X224 = 0x3

FASTPATH_OUTPUT_SECURE_CHECKSUM = 0x1
FASTPATH_OUTPUT_ENCRYPTED = 0x2
FASTPATH_INPUT_SECURE_CHECKSUM = 0x1
FASTPATH_INPUT_ENCRYPTED = 0x2

FASTPATH_UPDATETYPE_ORDERS = 0x0
FASTPATH_UPDATETYPE_BITMAP = 0x1
FASTPATH_UPDATETYPE_PALETTE = 0x2
FASTPATH_UPDATETYPE_SYNCHRONIZE = 0x3
FASTPATH_UPDATETYPE_SURFCMDS = 0x4
FASTPATH_UPDATETYPE_PTR_NULL = 0x5
FASTPATH_UPDATETYPE_PTR_DEFAULT = 0x6
FASTPATH_UPDATETYPE_PTR_POSITION = 0x8
FASTPATH_UPDATETYPE_COLOR = 0x9
FASTPATH_UPDATETYPE_CACHED = 0xA
FASTPATH_UPDATETYPE_POINTER = 0xB
FASTPATH_UPDATETYPE_LARGE_POINTER = 0xC

FASTPATH_FRAGMENT_SINGLE = 0x0
FASTPATH_FRAGMENT_LAST = 0x1
FASTPATH_FRAGMENT_FIRST = 0x2
FASTPATH_FRAGMENT_NEXT = 0x3

FASTPATH_OUTPUT_COMPRESSION_USED = 0x2

FASTPATH_INPUT_EVENT_SCANCODE = 0x0
FASTPATH_INPUT_EVENT_MOUSE = 0x1
FASTPATH_INPUT_EVENT_MOUSEX = 0x2
FASTPATH_INPUT_EVENT_SYNC = 0x3
FASTPATH_INPUT_EVENT_UNICODE = 0x4
FASTPATH_INPUT_EVENT_MOUSEREL = 0x5
FASTPATH_INPUT_EVENT_QOE_TIMESTAMP = 0x6
_INPUT_EVENT_SIZES = {0x0: 1, 0x1: 6, 0x2: 6, 0x3: 0, 0x4: 2, 0x5: 6, 0x6: 4}

FASTPATH_MAX_PACKET_SIZE = 0x3FFF
MAX_FRAME_LENGTH = 0x7FFF
SIGNATURE_LEN = 8


def fastpath_frame_length(buf: bytes | bytearray) -> int | None:
    """Total length of the fast-path PDU starting buf, None while the length bytes are missing.
    Raises ParseError when buf does not start with a fast-path header."""
    if not buf:
        return None
    if buf[0] & 0x3 != FASTPATH_ACTION_FASTPATH:
        raise ParseError("fast-path", f"header byte {buf[0]:#04x} is not a fast-path action")
    if len(buf) < 2:
        return None
    if buf[1] & 0x80:
        if len(buf) < 3:
            return None
        length = ((buf[1] & 0x7F) << 8) | buf[2]
        header = 3
    else:
        length = buf[1]
        header = 2
    if length < header:
        raise ParseError("fast-path", f"length {length} shorter than its {header}-byte header")
    return length


def _write_frame(first: int, body: bytes, long_length: bool = False) -> bytes:
    """Header byte, the length (counting itself and the header byte), body."""
    total = len(body) + 2
    if long_length or total > 0x7F:
        total = len(body) + 3
        if total > MAX_FRAME_LENGTH:
            raise ValueError(f"fast-path PDU of {total} bytes is too large")
        return Writer().u8(first).u16be(0x8000 | total).bytes(body).value()
    return Writer().u8(first).u8(total).bytes(body).value()


def _read_frame(r: Reader) -> tuple[int, Reader, bool]:
    """Header byte, a reader over the rest of the PDU, and whether a 2-byte length was used."""
    first = r.u8()
    if first & 0x3 != FASTPATH_ACTION_FASTPATH:
        raise r.fail(f"header byte {first:#04x} is not a fast-path action")
    length_byte = r.u8()
    if length_byte & 0x80:
        length = ((length_byte & 0x7F) << 8) | r.u8()
        header = 3
    else:
        length = length_byte
        header = 2
    if length < header:
        raise r.fail(f"fast-path length {length} shorter than its header")
    body = r.sub(length - header, "fast-path PDU")
    return first, body, bool(header == 3)


@dataclass(frozen=True)
class FastPathUpdate:
    """TS_FP_UPDATE: updateCode, fragmentation, optional compression flags, data."""

    update_code: int
    data: bytes
    fragmentation: int = FASTPATH_FRAGMENT_SINGLE
    compression: int = 0
    compression_flags: int = 0

    def encode(self) -> bytes:
        header = (
            (self.update_code & 0x0F)
            | ((self.fragmentation & 0x3) << 4)
            | ((self.compression & 0x3) << 6)
        )
        w = Writer().u8(header)
        if self.compression & FASTPATH_OUTPUT_COMPRESSION_USED:
            w.u8(self.compression_flags)
        return w.u16le(len(self.data)).bytes(self.data).value()

    @classmethod
    def decode(cls, r: Reader) -> FastPathUpdate:
        header = r.u8()
        code, fragmentation, compression = header & 0x0F, (header >> 4) & 0x3, header >> 6
        flags = r.u8() if compression & FASTPATH_OUTPUT_COMPRESSION_USED else 0
        return cls(code, r.bytes(r.u16le()), fragmentation, compression, flags)

    @property
    def bitmap(self) -> BitmapUpdate | None:
        """The bitmap rectangles of a complete, uncompressed FASTPATH_UPDATETYPE_BITMAP."""
        if self.update_code != FASTPATH_UPDATETYPE_BITMAP or self.compression:
            return None
        if self.fragmentation != FASTPATH_FRAGMENT_SINGLE:
            return None
        r = Reader(self.data, "fast-path bitmap update")
        r.u16le()  # updateType (UPDATETYPE_BITMAP)
        return BitmapUpdate.decode_rectangles(r)


@dataclass(frozen=True)
class FastPathOutputPdu:
    """TS_FP_UPDATE_PDU. When FASTPATH_OUTPUT_ENCRYPTED is set the updates cannot be read here:
    `encrypted` holds the opaque payload (after the 8-byte signature) and `updates` is empty."""

    updates: tuple[FastPathUpdate, ...]
    flags: int = 0
    data_signature: bytes | None = None
    encrypted: bytes | None = None
    long_length: bool = field(default=True, compare=False)  # FreeRDP always writes two octets

    def encode(self) -> bytes:
        body = Writer()
        if self.flags & FASTPATH_OUTPUT_ENCRYPTED:
            body.bytes(self.data_signature or bytes(SIGNATURE_LEN)).bytes(self.encrypted or b"")
        else:
            for update in self.updates:
                body.bytes(update.encode())
        first = FASTPATH_ACTION_FASTPATH | ((self.flags & 0x3) << 6)
        return _write_frame(first, body.value(), self.long_length)

    @classmethod
    def decode(cls, data: bytes | Reader) -> FastPathOutputPdu:
        r = data if isinstance(data, Reader) else Reader(data, "fast-path output PDU")
        first, body, long_length = _read_frame(r)
        flags = first >> 6
        if flags & FASTPATH_OUTPUT_ENCRYPTED:
            signature = body.bytes(SIGNATURE_LEN)
            return cls((), flags, signature, body.rest(), long_length)
        updates = []
        while body.remaining:
            updates.append(FastPathUpdate.decode(body))
        return cls(tuple(updates), flags, None, None, long_length)


class FastPathReassembler:
    """Joins FIRST/NEXT/LAST fragments (which arrive in separate PDUs) into complete updates."""

    def __init__(self, limit: int = 1 << 24) -> None:
        self._code: int | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._limit = limit

    @property
    def pending(self) -> bool:
        return self._code is not None

    def push(self, update: FastPathUpdate) -> FastPathUpdate | None:
        """The complete update when `update` finishes one, else None (fragment buffered)."""
        frag = update.fragmentation
        if frag == FASTPATH_FRAGMENT_SINGLE:
            if self.pending:
                raise ParseError("fast-path", "unfragmented update inside a fragmented one")
            return update
        if frag == FASTPATH_FRAGMENT_FIRST:
            if self.pending:
                raise ParseError("fast-path", "FASTPATH_FRAGMENT_FIRST while one is open")
            self._code, self._parts, self._size = update.update_code, [], 0
        elif not self.pending:
            raise ParseError("fast-path", f"fragment {frag} without FASTPATH_FRAGMENT_FIRST")
        elif update.update_code != self._code:
            raise ParseError("fast-path", "fragment of a different update code")
        self._parts.append(update.data)
        self._size += len(update.data)
        if self._size > self._limit:
            raise ParseError("fast-path", f"reassembled update exceeds {self._limit} bytes")
        if frag != FASTPATH_FRAGMENT_LAST:
            return None
        code, data = self._code, b"".join(self._parts)
        self._code, self._parts, self._size = None, [], 0
        return FastPathUpdate(code, data)  # type: ignore[arg-type]

    def feed(self, pdu: FastPathOutputPdu) -> list[FastPathUpdate]:
        """All updates a PDU completes, in order."""
        done = []
        for update in pdu.updates:
            complete = self.push(update)
            if complete is not None:
                done.append(complete)
        return done


def reassemble(updates: list[FastPathUpdate] | tuple[FastPathUpdate, ...]) -> list[FastPathUpdate]:
    """Complete updates of a sequence of records; raises ParseError if it ends mid-fragment."""
    assembler = FastPathReassembler()
    done = [u for u in (assembler.push(x) for x in updates) if u is not None]
    if assembler.pending:
        raise ParseError("fast-path", "sequence ends inside a fragmented update")
    return done


def fastpath_update_pdus(
    update_code: int, data: bytes, max_fragment: int = FASTPATH_MAX_PACKET_SIZE - 20
) -> list[bytes]:
    """One update as fast-path PDUs, fragmented the way FreeRDP servers do it."""
    chunks = [data[i : i + max_fragment] for i in range(0, len(data), max_fragment)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        if len(chunks) == 1:
            frag = FASTPATH_FRAGMENT_SINGLE
        elif i == 0:
            frag = FASTPATH_FRAGMENT_FIRST
        elif i == len(chunks) - 1:
            frag = FASTPATH_FRAGMENT_LAST
        else:
            frag = FASTPATH_FRAGMENT_NEXT
        out.append(FastPathOutputPdu((FastPathUpdate(update_code, chunk, frag),)).encode())
    return out


@dataclass(frozen=True)
class FastPathInputEvent:
    """TS_FP_INPUT_EVENT: eventCode (3 bits), eventFlags (5 bits), event data."""

    event_code: int
    event_flags: int = 0
    data: bytes = b""

    def encode(self) -> bytes:
        return bytes([((self.event_code & 0x7) << 5) | (self.event_flags & 0x1F)]) + self.data

    @classmethod
    def decode(cls, r: Reader) -> FastPathInputEvent:
        header = r.u8()
        code = header >> 5
        size = _INPUT_EVENT_SIZES.get(code)
        if size is None:
            raise r.fail(f"unknown fast-path input event code {code}")
        return cls(code, header & 0x1F, r.bytes(size))


@dataclass(frozen=True)
class FastPathInputPdu:
    """TS_FP_INPUT_PDU. numEvents lives in the header when 1..15, else in an extra byte."""

    events: tuple[FastPathInputEvent, ...]
    flags: int = 0
    data_signature: bytes | None = None
    encrypted: bytes | None = None
    long_length: bool = field(default=False, compare=False)
    encrypted_event_count: int = 0  # numEvents from the header of an encrypted PDU

    def encode(self) -> bytes:
        count = len(self.events)
        if self.flags & FASTPATH_INPUT_ENCRYPTED:
            count = self.encrypted_event_count
        inline = 0 < count < 16
        first = FASTPATH_ACTION_FASTPATH | ((count if inline else 0) << 2) | (self.flags << 6)
        body = Writer()
        if self.flags & FASTPATH_INPUT_ENCRYPTED:
            body.bytes(self.data_signature or bytes(SIGNATURE_LEN)).bytes(self.encrypted or b"")
        else:
            if not inline:
                body.u8(count)
            for event in self.events:
                body.bytes(event.encode())
        return _write_frame(first, body.value(), self.long_length)

    @classmethod
    def decode(cls, data: bytes | Reader) -> FastPathInputPdu:
        r = data if isinstance(data, Reader) else Reader(data, "fast-path input PDU")
        first, body, long_length = _read_frame(r)
        flags, count = first >> 6, (first >> 2) & 0x0F
        if flags & FASTPATH_INPUT_ENCRYPTED:
            signature = body.bytes(SIGNATURE_LEN)
            return cls((), flags, signature, body.rest(), long_length, count)
        if count == 0:
            count = body.u8()
        events = tuple(FastPathInputEvent.decode(body) for _ in range(count))
        body.expect_end()
        return cls(events, flags, None, None, long_length)
