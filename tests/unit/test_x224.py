"""X.224 negotiation and TPKT / fast-path framing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.rdp.errors import RdpError
from harness.rdp.tpkt import FrameBuffer, encode_tpkt, frame_length
from harness.rdp.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    NegFailure,
    Protocol,
    decode_data,
    describe_protocols,
    encode_data,
)


def test_connection_request_round_trip_with_cookie() -> None:
    cr = ConnectionRequest(
        int(Protocol.SSL | Protocol.HYBRID | Protocol.HYBRID_EX), "mstshash=alice"
    )
    data = cr.encode()
    assert data[:2] == b"\x03\x00" and len(data) == int.from_bytes(data[2:4], "big")
    assert ConnectionRequest.decode(data) == cr


def test_connection_request_size_matches_the_wire() -> None:
    # 19 bytes without a cookie: TPKT 4 + X.224 7 + RDP_NEG_REQ 8 (MS-RDPBCGR 4.1.1)
    assert len(ConnectionRequest(int(Protocol.SSL)).encode()) == 19


def test_spec_example_connection_request() -> None:
    # MS-RDPBCGR 4.1.1: cookie "mstshash=eltons", requestedProtocols PROTOCOL_RDP
    data = bytes.fromhex(
        "0300002c27e00000000000436f6f6b69653a206d737473686173683d656c746f6e730d0a0100080000000000"
    )
    cr = ConnectionRequest.decode(data)
    assert cr.cookie == "mstshash=eltons"
    assert cr.requested_protocols == 0


@pytest.mark.parametrize("code", list(NegFailure))
def test_every_failure_code_round_trips(code: NegFailure) -> None:
    cc = ConnectionConfirm(failure=int(code))
    assert len(cc.encode()) == 19
    assert ConnectionConfirm.decode(cc.encode()).failure == code


@pytest.mark.parametrize(
    "proto", [Protocol.RDP, Protocol.SSL, Protocol.HYBRID, Protocol.HYBRID_EX, Protocol.RDSTLS]
)
def test_every_selected_protocol_round_trips(proto: Protocol) -> None:
    cc = ConnectionConfirm(selected_protocol=int(proto), flags=0x1F)
    back = ConnectionConfirm.decode(cc.encode())
    assert back.selected_protocol == proto and back.failure is None and back.flags == 0x1F


def test_data_tpdu_round_trip() -> None:
    assert decode_data(encode_data(b"hello")) == b"hello"


def test_frame_buffer_splits_tpkt_and_fastpath() -> None:
    fb = FrameBuffer()
    slow = encode_tpkt(b"\x02\xf0\x80abc")
    fast = bytes([0x00, 0x05]) + b"xyz"
    fast_long = bytes([0x00, 0x81, 0x04]) + b"z" * (0x104 - 3)
    stream = slow + fast + fast_long
    for i in range(0, len(stream), 7):
        fb.feed(stream[i : i + 7])
    frames = []
    while (f := fb.next_frame()) is not None:
        frames.append(f)
    assert [f.fastpath for f in frames] == [False, True, True]
    assert [len(f.data) for f in frames] == [len(slow), 5, 0x104]
    assert fb.pending == 0


def test_describe_protocols() -> None:
    assert describe_protocols(0) == "RDP"
    assert describe_protocols(0x3) == "SSL|HYBRID"


@given(st.binary(max_size=64))
def test_parsers_raise_only_typed_errors(data: bytes) -> None:
    for parse in (ConnectionRequest.decode, ConnectionConfirm.decode, decode_data, frame_length):
        with contextlib.suppress(RdpError):
            parse(data)
