"""Bounded byte reader and writer that every parser and serialiser uses.

The reader never lets an index error escape: reading past the end raises ParseError with the name
of the structure being read, so hostile input always ends in a typed error.
"""

from __future__ import annotations

import struct

from .errors import ParseError


class Reader:
    """Reads little- and big-endian integers and byte runs from a buffer, checking every bound."""

    __slots__ = ("_data", "_pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self.what = what

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def fail(self, detail: str) -> ParseError:
        return ParseError(self.what, f"{detail} (at offset {self._pos})")

    def need(self, n: int) -> None:
        if n < 0 or self._pos + n > len(self._data):
            raise self.fail(f"needs {n} more bytes, {self.remaining} left")

    def bytes(self, n: int) -> bytes:
        self.need(n)
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def rest(self) -> bytes:
        return self.bytes(self.remaining)

    def skip(self, n: int) -> None:
        self.need(n)
        self._pos += n

    def peek_u8(self) -> int:
        self.need(1)
        return self._data[self._pos]

    def _unpack(self, fmt: str, size: int) -> int:
        self.need(size)
        (value,) = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return value

    def u8(self) -> int:
        return self._unpack("B", 1)

    def u16le(self) -> int:
        return self._unpack("<H", 2)

    def u16be(self) -> int:
        return self._unpack(">H", 2)

    def u32le(self) -> int:
        return self._unpack("<I", 4)

    def u32be(self) -> int:
        return self._unpack(">I", 4)

    def u64le(self) -> int:
        return self._unpack("<Q", 8)

    def claim(self, n: int, maximum: int, field: str = "length") -> int:
        """Check a length read from the input against its budget and against what is left,
        before anything is buffered or allocated for it; returns n."""
        if n < 0 or n > maximum:
            raise self.fail(f"{field} {n} is over the {maximum}-byte maximum")
        self.need(n)
        return n

    def sub(self, n: int, what: str | None = None) -> Reader:
        """A reader over the next n bytes, consumed from this one."""
        return Reader(self.bytes(n), what or self.what)

    def expect_end(self) -> None:
        if self.remaining:
            raise self.fail(f"{self.remaining} unexpected trailing bytes")


class Writer:
    """Accumulates integers and byte runs; `value()` returns the bytes written."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def bytes(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def u8(self, v: int) -> Writer:
        return self.bytes(struct.pack("B", v))

    def u16le(self, v: int) -> Writer:
        return self.bytes(struct.pack("<H", v))

    def u16be(self, v: int) -> Writer:
        return self.bytes(struct.pack(">H", v))

    def u32le(self, v: int) -> Writer:
        return self.bytes(struct.pack("<I", v))

    def u32be(self, v: int) -> Writer:
        return self.bytes(struct.pack(">I", v))

    def u64le(self, v: int) -> Writer:
        return self.bytes(struct.pack("<Q", v))

    def zeros(self, n: int) -> Writer:
        return self.bytes(b"\x00" * n)

    def value(self) -> bytes:
        return b"".join(self._parts)

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)
