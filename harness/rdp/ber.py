"""Minimal ASN.1 BER/DER: tags, lengths and the few universal types RDP needs.

Used by CredSSP (TSRequest, DER) and by MCS Connect Initial/Response (BER with APPLICATION tags
such as [APPLICATION 101] = 0x7F 0x65). Encoders always write DER (minimal lengths and integers);
decoders accept BER's non-minimal lengths, which Windows and FreeRDP both send in MCS, but refuse
the indefinite form. Every malformed input ends in ParseError.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ParseError
from .limits import MAX_BER_ELEMENTS
from .wire import Reader

UNIVERSAL = 0x00
APPLICATION = 0x40
CONTEXT = 0x80
PRIVATE = 0xC0
CONSTRUCTED = 0x20

TAG_BOOLEAN = b"\x01"
TAG_INTEGER = b"\x02"
TAG_BIT_STRING = b"\x03"
TAG_OCTET_STRING = b"\x04"
TAG_NULL = b"\x05"
TAG_OID = b"\x06"
TAG_ENUMERATED = b"\x0a"
TAG_SEQUENCE = b"\x30"
TAG_SET = b"\x31"

_MAX_LENGTH_OCTETS = 4  # lengths up to 4 GiB; anything longer is hostile here


def tag(cls: int, number: int, constructed: bool) -> bytes:
    """Identifier octets for a tag of class `cls` (UNIVERSAL, APPLICATION, CONTEXT, PRIVATE)."""
    if number < 0:
        raise ValueError("tag number must be >= 0")
    first = cls | (CONSTRUCTED if constructed else 0)
    if number < 31:
        return bytes([first | number])
    groups = [number & 0x7F]
    number >>= 7
    while number:
        groups.append(0x80 | (number & 0x7F))
        number >>= 7
    return bytes([first | 0x1F, *reversed(groups)])


def context_tag(number: int, constructed: bool = True) -> bytes:
    """[n] context-specific (explicit tagging, as MS-CSSP uses, is constructed)."""
    return tag(CONTEXT, number, constructed)


def application_tag(number: int, constructed: bool = True) -> bytes:
    """[APPLICATION n]; MCS Connect Initial is application_tag(101) == b'\\x7f\\x65'."""
    return tag(APPLICATION, number, constructed)


def encode_length(n: int) -> bytes:
    """DER length octets: short form below 128, else the minimal long form."""
    if n < 0:
        raise ValueError("length must be >= 0")
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tlv(tag_bytes: bytes, content: bytes) -> bytes:
    return bytes(tag_bytes) + encode_length(len(content)) + bytes(content)


def encode_integer(value: int, tag_bytes: bytes = TAG_INTEGER) -> bytes:
    """Two's-complement, minimal content octets (DER)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return encode_tlv(tag_bytes, value.to_bytes(size, "big", signed=True))


def encode_enumerated(value: int) -> bytes:
    return encode_integer(value, TAG_ENUMERATED)


def encode_boolean(value: bool) -> bytes:
    return encode_tlv(TAG_BOOLEAN, b"\xff" if value else b"\x00")


def encode_octet_string(data: bytes) -> bytes:
    return encode_tlv(TAG_OCTET_STRING, data)


def encode_sequence(*parts: bytes) -> bytes:
    return encode_tlv(TAG_SEQUENCE, b"".join(parts))


def encode_context(number: int, content: bytes) -> bytes:
    """Explicitly tagged [n] wrapping already-encoded content."""
    return encode_tlv(context_tag(number), content)


def encode_application(number: int, content: bytes) -> bytes:
    return encode_tlv(application_tag(number), content)


@dataclass(frozen=True)
class Tlv:
    """One decoded element: its identifier octets, parsed tag fields and content octets."""

    tag: bytes
    cls: int
    constructed: bool
    number: int
    content: bytes

    def children(self, what: str = "BER") -> list[Tlv]:
        """The elements inside a constructed element (at most MAX_BER_ELEMENTS)."""
        return list(self.iter_children(what))

    def iter_children(self, what: str = "BER") -> Iterator[Tlv]:
        """The elements inside a constructed element, one at a time: a caller that refuses the
        first bad one never builds the rest (a SEQUENCE OF full of empty items is one object per
        2 bytes)."""
        if not self.constructed:
            raise ParseError(what, f"tag {self.tag.hex()} is primitive, expected constructed")
        return iter_all(self.content, what)


def _read_tag(r: Reader) -> tuple[bytes, int, bool, int]:
    first = r.u8()
    cls, constructed, number = first & 0xC0, bool(first & CONSTRUCTED), first & 0x1F
    raw = [first]
    if number == 0x1F:
        number = 0
        for i in range(5):  # tag numbers up to 2**35; more is never legitimate here
            b = r.u8()
            raw.append(b)
            if i == 0 and b == 0x80:
                raise r.fail("non-minimal tag number")
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            raise r.fail("tag number too long")
        if number < 31:
            raise r.fail("multi-byte form used for a tag number below 31")
    return bytes(raw), cls, constructed, number


def _read_length(r: Reader) -> int:
    first = r.u8()
    if first < 0x80:
        return first
    count = first & 0x7F
    if count == 0:
        raise r.fail("indefinite length is not allowed")
    if count > _MAX_LENGTH_OCTETS:
        raise r.fail(f"length with {count} length octets")
    return int.from_bytes(r.bytes(count), "big")


def read_tlv(r: Reader) -> Tlv:
    """Read one complete element from the reader."""
    tag_bytes, cls, constructed, number = _read_tag(r)
    length = _read_length(r)
    if length > r.remaining:
        raise r.fail(f"element {tag_bytes.hex()} claims {length} bytes, {r.remaining} left")
    return Tlv(tag_bytes, cls, constructed, number, r.bytes(length))


def read_header(r: Reader, expected: bytes) -> int:
    """Read the identifier (which must equal `expected`) and length; return the length."""
    tag_bytes, *_ = _read_tag(r)
    if tag_bytes != expected:
        raise r.fail(f"expected tag {expected.hex()}, got {tag_bytes.hex()}")
    length = _read_length(r)
    if length > r.remaining:
        raise r.fail(f"element {tag_bytes.hex()} claims {length} bytes, {r.remaining} left")
    return length


def expect(r: Reader, expected: bytes) -> bytes:
    """Read one element whose identifier must be `expected`; return its content."""
    return r.bytes(read_header(r, expected))


def read_optional(r: Reader, expected: bytes) -> bytes | None:
    """Content of the next element if its identifier is the single byte `expected`, else None."""
    if len(expected) != 1:
        raise ValueError("read_optional peeks at single-byte tags only")
    if not r.remaining or r.peek_u8() != expected[0]:
        return None
    return expect(r, expected)


def decode_tlv(data: bytes, what: str = "BER") -> Tlv:
    """Decode exactly one element filling all of `data`."""
    r = Reader(data, what)
    tlv = read_tlv(r)
    r.expect_end()
    return tlv


def decode_all(data: bytes, what: str = "BER") -> list[Tlv]:
    """Decode a run of consecutive elements (the content of a SEQUENCE, say)."""
    return list(iter_all(data, what))


def iter_all(data: bytes, what: str = "BER", limit: int = MAX_BER_ELEMENTS) -> Iterator[Tlv]:
    """The consecutive elements of `data`, lazily; more than `limit` of them is a ParseError."""
    r = Reader(data, what)
    count = 0
    while r.remaining:
        count += 1
        if count > limit:
            raise r.fail(f"more than {limit} elements")
        yield read_tlv(r)


def decode_integer(content: bytes, what: str = "INTEGER") -> int:
    if not content:
        raise ParseError(what, "empty INTEGER")
    return int.from_bytes(content, "big", signed=True)


def decode_boolean(content: bytes, what: str = "BOOLEAN") -> bool:
    if len(content) != 1:
        raise ParseError(what, f"BOOLEAN of {len(content)} bytes")
    return content != b"\x00"


def read_integer(r: Reader, tag_bytes: bytes = TAG_INTEGER) -> int:
    return decode_integer(expect(r, tag_bytes), r.what)


def read_enumerated(r: Reader) -> int:
    return decode_integer(expect(r, TAG_ENUMERATED), r.what)


def read_boolean(r: Reader) -> bool:
    return decode_boolean(expect(r, TAG_BOOLEAN), r.what)


def read_octet_string(r: Reader) -> bytes:
    return expect(r, TAG_OCTET_STRING)


def der_message_length(buf: bytes) -> int | None:
    """Total size of the complete element starting `buf`, or None while more bytes are needed.

    Frames TSRequests (and other DER PDUs) off a byte stream; a malformed header raises ParseError.
    """
    # Parse only as far as `buf` goes: running out is "incomplete", anything else is an error.
    end = len(buf)
    if end < 1:
        return None
    i = 1
    if buf[0] & 0x1F == 0x1F:
        while True:
            if i >= end:
                return None
            if i == 1 and buf[i] == 0x80:
                raise ParseError("BER header", "non-minimal tag number")
            if i > 5:
                raise ParseError("BER header", "tag number too long")
            i += 1
            if not buf[i - 1] & 0x80:
                break
    if i >= end:
        return None
    first = buf[i]
    i += 1
    if first < 0x80:
        return i + first
    count = first & 0x7F
    if count == 0:
        raise ParseError("BER header", "indefinite length is not allowed")
    if count > _MAX_LENGTH_OCTETS:
        raise ParseError("BER header", f"length with {count} length octets")
    if i + count > end:
        return None
    return i + count + int.from_bytes(buf[i : i + count], "big")
