"""Fast-path output framing, update records and reassembly; fast-path input recognition."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.rdp import fastpath as fp
from harness.rdp import updates
from harness.rdp.errors import ParseError, RdpError


def test_frame_length_one_and_two_octet_forms():
    assert fp.fastpath_frame_length(b"") is None
    assert fp.fastpath_frame_length(b"\x00") is None
    assert fp.fastpath_frame_length(b"\x00\x05\x03") == 5
    assert fp.fastpath_frame_length(b"\x00\x81") is None
    assert fp.fastpath_frame_length(b"\x00\x81\x2c") == 0x12C
    assert fp.fastpath_frame_length(b"\x80\x80\x0e") == 14  # encrypted flag in the header


@pytest.mark.parametrize("bad", [b"\x03\x00\x00\x10", b"\x00\x01", b"\x00\x80\x02"])
def test_frame_length_rejects_non_fast_path(bad):
    with pytest.raises(ParseError):
        fp.fastpath_frame_length(bad)


def test_synchronize_update_short_and_freerdp_long_forms():
    short = bytes.fromhex("00 05 03 00 00")
    pdu = fp.FastPathOutputPdu.decode(short)
    assert pdu.updates == (fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_SYNCHRONIZE, b""),)
    assert not pdu.long_length and pdu.encode() == short
    freerdp = bytes.fromhex("00 80 06 03 00 00")  # FreeRDP always writes two length octets
    pdu = fp.FastPathOutputPdu.decode(freerdp)
    assert pdu.long_length and pdu.encode() == freerdp


def test_compressed_update_carries_compression_flags():
    update = fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_BITMAP, b"\x01\x02", 0, 2, 0x21)
    data = fp.FastPathOutputPdu((update,)).encode()
    assert data[3:6] == bytes.fromhex("81 21 02")
    assert fp.FastPathOutputPdu.decode(data).updates == (update,)


def test_several_updates_in_one_pdu():
    ups = (
        fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_PTR_DEFAULT, b""),
        fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_PTR_POSITION, b"\x10\x00\x20\x00"),
    )
    pdu = fp.FastPathOutputPdu(ups)
    assert fp.FastPathOutputPdu.decode(pdu.encode()) == pdu


def test_fragmented_update_is_reassembled():
    payload = bytes(range(256)) * 200
    frames = fp.fastpath_update_pdus(fp.FASTPATH_UPDATETYPE_SURFCMDS, payload)
    assert len(frames) == 4
    assembler = fp.FastPathReassembler()
    done = []
    for frame in frames:
        assert fp.fastpath_frame_length(frame) == len(frame) <= fp.FASTPATH_MAX_PACKET_SIZE
        done += assembler.feed(fp.FastPathOutputPdu.decode(frame))
    assert done == [fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_SURFCMDS, payload)]
    assert not assembler.pending


def test_reassembly_errors():
    first = fp.FastPathUpdate(1, b"a", fp.FASTPATH_FRAGMENT_FIRST)
    nxt = fp.FastPathUpdate(1, b"b", fp.FASTPATH_FRAGMENT_NEXT)
    last = fp.FastPathUpdate(1, b"c", fp.FASTPATH_FRAGMENT_LAST)
    single = fp.FastPathUpdate(1, b"d")
    assert fp.reassemble([first, nxt, last, single]) == [
        fp.FastPathUpdate(1, b"abc"),
        single,
    ]
    for bad in ([nxt], [last], [first, first], [first, single], [first, nxt]):
        with pytest.raises(ParseError):
            fp.reassemble(bad)
    with pytest.raises(ParseError):
        fp.reassemble([first, fp.FastPathUpdate(2, b"x", fp.FASTPATH_FRAGMENT_LAST)])


def test_bitmap_update_over_fast_path():
    rect = updates.BitmapData(0, 0, 63, 0, 64, 1, 16, 0, bytes(128))
    body = updates.BitmapUpdate((rect,)).encode()
    frame = fp.FastPathOutputPdu((fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_BITMAP, body),)).encode()
    update = fp.FastPathOutputPdu.decode(frame).updates[0]
    assert update.bitmap is not None and update.bitmap.byte_count == 128
    assert fp.FastPathUpdate(fp.FASTPATH_UPDATETYPE_ORDERS, b"").bitmap is None


def test_spec_encrypted_fast_path_input_is_recognised():
    # MS-RDPBCGR 4.1.x Client Fast-Path Input Event PDU (Standard RDP Security, one event).
    data = bytes.fromhex("c4 11 30 35 6b 5b b5 34 c8 47 26 18 5e 76 0e de 28")
    assert fp.fastpath_frame_length(data) == 17
    pdu = fp.FastPathInputPdu.decode(data)
    assert pdu.flags == fp.FASTPATH_INPUT_ENCRYPTED | fp.FASTPATH_INPUT_SECURE_CHECKSUM
    assert pdu.data_signature == bytes.fromhex("30 35 6b 5b b5 34 c8 47")
    assert pdu.encrypted == bytes.fromhex("26 18 5e 76 0e de 28") and pdu.events == ()
    assert pdu.encrypted_event_count == 1 and pdu.encode() == data


def test_encrypted_output_is_opaque():
    pdu = fp.FastPathOutputPdu((), fp.FASTPATH_OUTPUT_ENCRYPTED, b"S" * 8, b"ciphertext")
    data = pdu.encode()
    assert data[0] == 0x80
    assert fp.FastPathOutputPdu.decode(data) == pdu


@pytest.mark.parametrize(
    ("hexdata", "events"),
    [
        ("04 03 60", [fp.FastPathInputEvent(fp.FASTPATH_INPUT_EVENT_SYNC, 0)]),
        ("04 04 01 1e", [fp.FastPathInputEvent(fp.FASTPATH_INPUT_EVENT_SCANCODE, 1, b"\x1e")]),
        (
            "08 0c 20 00 08 64 00 c8 00 80 41 00",
            [
                fp.FastPathInputEvent(
                    fp.FASTPATH_INPUT_EVENT_MOUSE, 0, bytes.fromhex("0008 6400 c800")
                ),
                fp.FastPathInputEvent(fp.FASTPATH_INPUT_EVENT_UNICODE, 0, b"\x41\x00"),
            ],
        ),
    ],
)
def test_input_pdus(hexdata, events):
    data = bytes.fromhex(hexdata)
    pdu = fp.FastPathInputPdu.decode(data)
    assert list(pdu.events) == events
    assert pdu.encode() == data


def test_input_with_sixteen_events_uses_the_count_octet():
    events = tuple(fp.FastPathInputEvent(fp.FASTPATH_INPUT_EVENT_SYNC, 0) for _ in range(16))
    data = fp.FastPathInputPdu(events).encode()
    assert data[0] == 0x00 and data[2] == 16
    assert fp.FastPathInputPdu.decode(data).events == events


def test_unknown_input_event_code_is_a_parse_error():
    with pytest.raises(ParseError):
        fp.FastPathInputPdu.decode(bytes.fromhex("04 03 e0"))


events = st.builds(
    lambda code, flags, data: fp.FastPathInputEvent(
        code, flags, data[: fp._INPUT_EVENT_SIZES[code]].ljust(fp._INPUT_EVENT_SIZES[code], b"\0")
    ),
    st.sampled_from(sorted(fp._INPUT_EVENT_SIZES)),
    st.integers(0, 31),
    st.binary(min_size=6, max_size=6),
)


@given(st.lists(events, max_size=40))
def test_input_round_trip_property(evs):
    pdu = fp.FastPathInputPdu(tuple(evs))
    assert fp.FastPathInputPdu.decode(pdu.encode()) == pdu


@given(st.integers(0, 0xC), st.binary(max_size=70000), st.integers(100, 16000))
def test_fragmentation_round_trip_property(code, payload, max_fragment):
    frames = fp.fastpath_update_pdus(code, payload, max_fragment)
    assembler = fp.FastPathReassembler()
    done = [u for f in frames for u in assembler.feed(fp.FastPathOutputPdu.decode(f))]
    assert done == [fp.FastPathUpdate(code, payload)]


def _mutations(seed: bytes):
    return st.tuples(st.integers(0, len(seed)), st.binary(max_size=4), st.integers(0, 8)).map(
        lambda t: seed[: t[0]] + t[1] + seed[t[0] + t[2] :]
    )


SEED = fp.FastPathOutputPdu(
    (
        fp.FastPathUpdate(
            1,
            updates.BitmapUpdate((updates.BitmapData(0, 0, 3, 0, 4, 1, 16, 0, bytes(8)),)).encode(),
        ),
        fp.FastPathUpdate(4, b"xyz", fp.FASTPATH_FRAGMENT_FIRST, 2, 0x21),
    )
).encode()


@given(
    st.one_of(
        st.binary(max_size=200),
        _mutations(SEED),
        _mutations(bytes.fromhex("08 0c 20 00 08 64 00 c8 00 80 41 00")),
    )
)
def test_decoders_raise_only_rdp_errors(data):
    with contextlib.suppress(RdpError):
        fp.fastpath_frame_length(data)
    with contextlib.suppress(RdpError):
        fp.FastPathInputPdu.decode(data)
    with contextlib.suppress(RdpError):
        pdu = fp.FastPathOutputPdu.decode(data)
        for update in pdu.updates:
            with contextlib.suppress(RdpError):
                _ = update.bitmap
        fp.reassemble(pdu.updates)
