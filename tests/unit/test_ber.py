"""ASN.1 BER/DER: exact encodings, lenient decoding, stream framing, and fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.rdp import ber
from harness.rdp.errors import ParseError
from harness.rdp.wire import Reader


@pytest.mark.parametrize(
    ("cls", "number", "constructed", "expected"),
    [
        (ber.UNIVERSAL, 2, False, b"\x02"),
        (ber.UNIVERSAL, 16, True, b"\x30"),
        (ber.CONTEXT, 3, True, b"\xa3"),
        (ber.APPLICATION, 101, True, b"\x7f\x65"),  # MCS Connect-Initial
        (ber.APPLICATION, 102, True, b"\x7f\x66"),  # MCS Connect-Response
        (ber.APPLICATION, 200, True, b"\x7f\x81\x48"),
        (ber.APPLICATION, 30, False, b"\x5e"),
    ],
)
def test_tag_bytes(cls: int, number: int, constructed: bool, expected: bytes) -> None:
    assert ber.tag(cls, number, constructed) == expected
    tlv = ber.decode_tlv(ber.encode_tlv(expected, b"xy"))
    assert (tlv.cls, tlv.number, tlv.constructed, tlv.tag) == (cls, number, constructed, expected)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x81\x80"), (255, b"\x81\xff"), (256, b"\x82\x01\x00")],
)
def test_length_encoding(n: int, expected: bytes) -> None:
    assert ber.encode_length(n) == expected


@pytest.mark.parametrize(
    ("value", "content"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "0080"),
        (256, "0100"),
        (-1, "ff"),
        (-128, "80"),
        (-129, "ff7f"),
        (0xC000006D - (1 << 32), "c000006d"),
        (0xC000006D, "00c000006d"),
    ],
)
def test_integer_der(value: int, content: str) -> None:
    raw = bytes.fromhex(content)
    assert ber.encode_integer(value) == b"\x02" + bytes([len(raw)]) + raw
    assert ber.read_integer(Reader(ber.encode_integer(value), "t")) == value


@given(st.integers(min_value=-(1 << 80), max_value=1 << 80))
def test_integer_roundtrip(value: int) -> None:
    enc = ber.encode_integer(value)
    assert ber.decode_integer(ber.decode_tlv(enc).content) == value
    # minimal: dropping a leading byte would change the value or the sign
    content = ber.decode_tlv(enc).content
    if len(content) > 1:
        assert not (content[0] == 0 and content[1] < 0x80)
        assert not (content[0] == 0xFF and content[1] >= 0x80)


def test_simple_types() -> None:
    assert ber.encode_boolean(True) == b"\x01\x01\xff"
    assert ber.encode_boolean(False) == b"\x01\x01\x00"
    assert ber.encode_enumerated(3) == b"\x0a\x01\x03"
    assert ber.encode_octet_string(b"ab") == b"\x04\x02ab"
    r = Reader(b"\x01\x01\xff\x0a\x01\x03\x04\x02ab", "t")
    assert ber.read_boolean(r) is True
    assert ber.read_enumerated(r) == 3
    assert ber.read_octet_string(r) == b"ab"
    r.expect_end()


def test_sequence_and_children() -> None:
    enc = ber.encode_sequence(
        ber.encode_integer(1), ber.encode_context(2, ber.encode_boolean(True))
    )
    assert enc == bytes.fromhex("3008020101a2030101ff")
    kids = ber.decode_tlv(enc).children()
    assert [k.tag for k in kids] == [b"\x02", b"\xa2"]
    with pytest.raises(ParseError):
        kids[0].children()


def test_application_tlv_like_mcs() -> None:
    body = ber.encode_octet_string(b"\x01") + ber.encode_boolean(True)
    enc = ber.encode_application(101, body)
    assert enc[:3] == b"\x7f\x65\x06"
    r = Reader(enc, "MCS")
    assert ber.read_header(r, ber.application_tag(101)) == len(body)
    assert ber.read_octet_string(r) == b"\x01"
    assert ber.read_boolean(r) is True


def test_non_minimal_length_is_accepted() -> None:
    # FreeRDP and Windows write MCS lengths as 0x82 xx xx even when short.
    tlv = ber.decode_tlv(b"\x04\x82\x00\x02ab")
    assert tlv.content == b"ab"
    assert ber.der_message_length(b"\x04\x82\x00\x02") == 6


def test_read_optional() -> None:
    r = Reader(ber.encode_context(1, ber.encode_integer(5)), "t")
    assert ber.read_optional(r, b"\xa0") is None
    assert ber.read_optional(r, b"\xa1") == ber.encode_integer(5)
    assert ber.read_optional(r, b"\xa2") is None


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x04",
        b"\x04\x80ab\x00\x00",  # indefinite length
        b"\x04\x85\x00\x00\x00\x00\x01a",  # five length octets
        b"\x04\x03ab",  # short content
        b"\x1f\x80\x01\x00",  # non-minimal tag number
        b"\x1f\x05\x00",  # multi-byte form for a small number
        b"\x04\x01ab",  # trailing byte
        b"\x02\x00",  # (decodes, but an empty INTEGER is refused below)
    ],
)
def test_malformed(bad: bytes) -> None:
    with pytest.raises(ParseError):
        tlv = ber.decode_tlv(bad)
        ber.decode_integer(tlv.content)


def test_der_message_length_prefixes() -> None:
    msg = ber.encode_sequence(ber.encode_octet_string(b"x" * 300))
    for i in range(len(msg)):
        got = ber.der_message_length(msg[:i])
        assert got is None or got == len(msg)
        if i < 4:
            assert got is None
    assert ber.der_message_length(msg) == len(msg)
    assert ber.der_message_length(msg + b"trailing") == len(msg)
    assert ber.der_message_length(b"\x7f") is None
    assert ber.der_message_length(b"\x7f\x65") is None
    assert ber.der_message_length(b"\x7f\x65\x82\x01") is None
    assert ber.der_message_length(b"\x7f\x65\x82\x01\x00") == 261


@pytest.mark.parametrize("bad", [b"\x30\x80", b"\x30\x85", b"\x1f\x80"])
def test_der_message_length_malformed(bad: bytes) -> None:
    with pytest.raises(ParseError):
        ber.der_message_length(bad)


@given(st.binary(max_size=64))
def test_fuzz_decoders_raise_only_parse_error(data: bytes) -> None:
    for fn in (ber.decode_tlv, ber.decode_all, ber.der_message_length):
        with contextlib.suppress(ParseError):
            fn(data)
    try:
        for tlv in ber.decode_all(data):
            if tlv.constructed:
                tlv.children()
    except ParseError:
        pass


@given(st.binary(max_size=40))
def test_framing_agrees_with_decoder(data: bytes) -> None:
    try:
        n = ber.der_message_length(data)
    except ParseError:
        return
    if n is not None and n <= len(data):
        try:
            ber.decode_tlv(data[:n])
        except ParseError as exc:  # only the tag-number rule is checked later
            assert "tag number" in str(exc)
