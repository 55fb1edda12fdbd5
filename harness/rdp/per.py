"""ASN.1 ALIGNED PER pieces used by T.125 MCS domain PDUs and the T.124 GCC wrappers.

Only the forms RDP peers actually emit are supported (X.691 aligned variant, lengths below
32 KiB, no fragmentation). Writers take a `Writer`, readers a `Reader`; every malformed input
ends in ParseError through the bounded reader.
"""

from __future__ import annotations

from .wire import Reader, Writer

MAX_LENGTH = 0x7FFF


def write_length(w: Writer, length: int) -> None:
    """Length determinant: one byte below 0x80, otherwise two bytes with the top bit set."""
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"PER length {length} out of range")
    if length < 0x80:
        w.u8(length)
    else:
        w.u16be(0x8000 | length)


def read_length(r: Reader) -> int:
    """Length determinant. Two-octet forms are read as 15 bits, as FreeRDP and Windows write
    them (X.691 fragmentation is never used by RDP peers)."""
    first = r.u8()
    if not first & 0x80:
        return first
    return ((first & 0x7F) << 8) | r.u8()


def write_choice(w: Writer, choice: int) -> None:
    w.u8(choice)


def read_choice(r: Reader) -> int:
    return r.u8()


def write_selection(w: Writer, selection: int) -> None:
    """Bitmap of present OPTIONAL fields, one octet."""
    w.u8(selection)


def read_selection(r: Reader) -> int:
    return r.u8()


def write_number_of_sets(w: Writer, number: int) -> None:
    w.u8(number)


def read_number_of_sets(r: Reader) -> int:
    return r.u8()


def write_padding(w: Writer, n: int) -> None:
    w.zeros(n)


def read_padding(r: Reader, n: int) -> None:
    r.skip(n)


def write_integer(w: Writer, value: int) -> None:
    """Unconstrained INTEGER (non-negative): length then 1, 2 or 4 big-endian octets."""
    if value < 0 or value > 0xFFFFFFFF:
        raise ValueError(f"PER integer {value} out of range")
    if value <= 0xFF:
        w.u8(1).u8(value)
    elif value <= 0xFFFF:
        w.u8(2).u16be(value)
    else:
        w.u8(4).u32be(value)


def read_integer(r: Reader) -> int:
    length = read_length(r)
    if length > 4:
        raise r.fail(f"PER integer of {length} octets is too long")
    return int.from_bytes(r.bytes(length), "big")


def write_integer16(w: Writer, value: int, minimum: int) -> None:
    """INTEGER (minimum..minimum+65535) as a two-octet offset from the lower bound."""
    offset = value - minimum
    if not 0 <= offset <= 0xFFFF:
        raise ValueError(f"PER integer16 {value} out of range for minimum {minimum}")
    w.u16be(offset)


def read_integer16(r: Reader, minimum: int) -> int:
    return r.u16be() + minimum


def write_enumerated(w: Writer, value: int) -> None:
    w.u8(value)


def read_enumerated(r: Reader, count: int) -> int:
    value = r.u8()
    if value >= count:
        raise r.fail(f"enumerated value {value} outside 0..{count - 1}")
    return value


def _oid_body(oid: tuple[int, ...]) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or oid[1] > 39 or any(a < 0 for a in oid):
        raise ValueError(f"bad object identifier {oid}")
    arcs = [oid[0] * 40 + oid[1], *oid[2:]]
    out = bytearray()
    for arc in arcs:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def write_object_identifier(w: Writer, oid: tuple[int, ...]) -> None:
    body = _oid_body(oid)
    w.u8(len(body)).bytes(body)


def read_object_identifier(r: Reader) -> tuple[int, ...]:
    body = r.bytes(read_length(r))
    if not body:
        raise r.fail("empty object identifier")
    arcs: list[int] = []
    value = 0
    for i, byte in enumerate(body):
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
        elif i == len(body) - 1:
            raise r.fail("object identifier ends inside a sub-identifier")
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def write_numeric_string(w: Writer, text: str, minimum: int) -> None:
    """NumericString packed two digits per octet, length as an offset from the minimum."""
    if not text.isdigit() or len(text) < minimum:
        raise ValueError(f"bad numeric string {text!r}")
    write_length(w, len(text) - minimum)
    padded = text + "0" * (len(text) % 2)
    for i in range(0, len(padded), 2):
        w.u8((int(padded[i]) << 4) | int(padded[i + 1]))


def read_numeric_string(r: Reader, minimum: int) -> str:
    length = read_length(r) + minimum
    packed = r.bytes((length + 1) // 2)
    digits = "".join(f"{b >> 4 & 0xF:x}{b & 0xF:x}" for b in packed)[:length]
    if not digits.isdigit():
        raise r.fail(f"numeric string holds non-digits {digits!r}")
    return digits


def write_octet_string(w: Writer, data: bytes, minimum: int = 0) -> None:
    if len(data) < minimum:
        raise ValueError(f"octet string shorter than its minimum {minimum}")
    write_length(w, len(data) - minimum)
    w.bytes(data)


def read_octet_string(r: Reader, minimum: int = 0) -> bytes:
    return r.bytes(read_length(r) + minimum)
