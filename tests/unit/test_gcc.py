"""PER primitives, GCC conference create wrappers and the settings data blocks."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.rdp import gcc, per
from harness.rdp.errors import ProtocolFailure, RdpError
from harness.rdp.wire import Reader, Writer
from tests.spec_vectors import (
    SPEC_CONNECT_INITIAL,  # MS-RDPBCGR 4.1.3: its userData is the GCC request
)

SPEC_GCC_REQUEST = SPEC_CONNECT_INITIAL[0x66:]  # after the BER userData header "04 82 01 33"
SPEC_GCC_RESPONSE = bytes.fromhex(
    "00 05 00 14 7c 00 01 2a 14 76 0a 01 01 00 01 c0 00 4d 63 44 6e 42 01 0c "
    "10 00 0b 00 08 00 0b 00 00 00 06 00 00 00 03 0c 18 00 eb 03 07 00 ec 03 "
    "ed 03 ee 03 ef 03 f0 03 f1 03 f2 03 00 00 02 0c 0c 00 00 00 00 00 00 00 "
    "00 00 04 0c 06 00 f3 03 08 0c 08 00 01 03 00 00"
)


def _round_trip(write, read, value):
    w = Writer()
    write(w, value)
    r = Reader(w.value(), "test")
    got = read(r)
    assert r.remaining == 0
    return got, w.value()


def test_spec_gcc_request_preamble_and_blocks():
    assert SPEC_GCC_REQUEST.startswith(
        bytes.fromhex("00 05 00 14 7c 00 01 81 2a 00 08 00 10 00 01 c0 00 44 75 63 61 81 1c")
    )
    req = gcc.ConferenceCreateRequest.decode(SPEC_GCC_REQUEST)
    data = req.client_data
    assert [type(b).__name__ for b in data.blocks] == [
        "ClientCoreData",
        "ClientClusterData",
        "ClientSecurityData",
        "ClientNetworkData",
    ]
    core = data.core
    assert core is not None
    assert core.version == gcc.RDP_VERSION_5_PLUS
    assert core.color_depth == gcc.RNS_UD_COLOR_8BPP and core.sas_sequence == gcc.RNS_UD_SAS_DEL
    assert core.keyboard_layout == 0x409 and core.client_build == 3790
    assert core.high_color_depth == 24 and core.supported_color_depths == 7
    assert core.early_capability_flags == gcc.RNS_UD_CS_SUPPORT_ERRINFO_PDU
    assert core.client_dig_product_id == "69712-783-0357974-42714"
    assert core.desktop_physical_width is None  # this client stops after serverSelectedProtocol
    assert data.cluster == gcc.ClientClusterData(0x0D, 0)
    assert data.security == gcc.ClientSecurityData(0x1B, 0)
    assert data.channels == (
        gcc.ChannelDef("rdpdr", 0x80800000),
        gcc.ChannelDef("cliprdr", 0xC0A00000),
        gcc.ChannelDef("rdpsnd", 0xC0000000),
    )
    assert req.encode() == SPEC_GCC_REQUEST


def test_spec_gcc_response():
    resp = gcc.ConferenceCreateResponse.decode(SPEC_GCC_RESPONSE)
    assert resp.node_id == 0x79F3 and resp.tag == 1 and resp.result == 0
    server = resp.server_data
    assert server.core == gcc.ServerCoreData(0x0008000B, 0x0B, 0x06)
    assert server.network == gcc.ServerNetworkData(1003, tuple(range(1004, 1011)))
    assert server.security == gcc.ServerSecurityData(0, 0)
    assert server.message_channel == gcc.ServerMessageChannelData(1011)
    assert resp.encode() == SPEC_GCC_RESPONSE


def test_freerdp_style_server_data_blocks():
    server = gcc.ServerData.create(
        gcc.ServerCoreData(gcc.RDP_VERSION_10_7, 0x3, 0),
        gcc.ServerNetworkData(channel_ids=(1004, 1005, 1006)),
    )
    blocks = server.encode()
    # SC_CORE 16, SC_NET padded to 4 bytes (odd count), SC_SECURITY 12 with no random/cert
    assert blocks[:4] == bytes.fromhex("01 0c 10 00")
    assert blocks[16:20] == bytes.fromhex("03 0c 10 00")
    assert blocks[16:32] == bytes.fromhex("03 0c 10 00 eb 03 03 00 ec 03 ed 03 ee 03 00 00")
    assert blocks[32:] == bytes.fromhex("02 0c 0c 00 00 00 00 00 00 00 00 00")
    assert gcc.ServerData.decode(blocks) == server


def test_even_channel_count_has_no_padding():
    net = gcc.ServerNetworkData(channel_ids=(1004, 1005))
    assert len(net.encode_body()) == 8


def test_default_client_core_is_a_full_freerdp_sized_block():
    core = gcc.ClientCoreData(server_selected_protocol=2)
    block = gcc.ClientData.create(core).encode()
    assert block[:4] == bytes.fromhex("01 c0 ea 00")  # CS_CORE, 234 bytes
    assert gcc.ClientData.decode(block).core == core


def test_client_name_is_truncated_to_fifteen_characters():
    core = gcc.ClientCoreData(client_name="A-VERY-LONG-WORKSTATION-NAME")
    decoded = gcc.ClientCoreData.decode_body(Reader(core.encode_body(), "core"))
    assert decoded.client_name == "A-VERY-LONG-WOR"


def test_optional_core_fields_stop_at_first_absent_one():
    core = gcc.ClientCoreData(early_capability_flags=None)
    body = core.encode_body()
    assert len(body) == 128 + 12
    decoded = gcc.ClientCoreData.decode_body(Reader(body, "core"))
    assert decoded.high_color_depth == 16 and decoded.early_capability_flags is None
    assert decoded.server_selected_protocol is None


def test_selected_protocol_echo_is_checked():
    gcc.check_selected_protocol(gcc.ClientCoreData(server_selected_protocol=2), 2)
    with pytest.raises(ProtocolFailure):
        gcc.check_selected_protocol(gcc.ClientCoreData(server_selected_protocol=1), 2)


def test_unknown_and_extended_blocks_are_preserved():
    data = gcc.ClientData.create(
        gcc.ClientCoreData(),
        network=gcc.ClientNetworkData((gcc.ChannelDef("drdynvc"),)),
        extra=(
            gcc.ClientMessageChannelData(),
            gcc.ClientMultitransportData(0x305),
            gcc.UnknownBlock(gcc.CS_MONITOR, b"\x00" * 8),
        ),
    )
    decoded = gcc.ClientData.decode(data.encode())
    assert decoded == data
    assert decoded.message_channel == gcc.ClientMessageChannelData(0)


def test_server_security_with_random_and_certificate():
    sec = gcc.ServerSecurityData(2, 2, b"r" * 32, b"cert")
    assert gcc.ServerData((sec,)).encode()[:4] == bytes.fromhex("02 0c 38 00")
    assert gcc.ServerData.decode(gcc.ServerData((sec,)).encode()).security == sec


def test_old_server_long_user_data_length_round_trips():
    resp = gcc.ConferenceCreateResponse(
        gcc.ServerData.create(gcc.ServerCoreData(), gcc.ServerNetworkData()), long_length=True
    )
    data = resp.encode()
    assert b"McDn\x80" in data
    decoded = gcc.ConferenceCreateResponse.decode(data)
    assert decoded.long_length and decoded.encode() == data


def test_per_known_encodings():
    w = Writer()
    per.write_length(w, 0x12A)
    per.write_integer16(w, 1007, 1001)
    per.write_object_identifier(w, gcc.T124_02_98_OID)
    per.write_numeric_string(w, "1", 1)
    per.write_integer(w, 0x1234)
    assert w.value() == bytes.fromhex("81 2a 00 06 05 00 14 7c 00 01 00 10 02 12 34")


@given(st.integers(0, per.MAX_LENGTH))
def test_per_length_round_trip(n):
    assert _round_trip(per.write_length, per.read_length, n)[0] == n


@given(st.integers(0, 0xFFFFFFFF))
def test_per_integer_round_trip(n):
    assert _round_trip(per.write_integer, per.read_integer, n)[0] == n


@given(st.integers(1001, 1001 + 0xFFFF))
def test_per_integer16_round_trip(n):
    got, data = _round_trip(
        lambda w, v: per.write_integer16(w, v, 1001), lambda r: per.read_integer16(r, 1001), n
    )
    assert got == n and len(data) == 2


@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_per_numeric_string_round_trip(text):
    got, _ = _round_trip(
        lambda w, v: per.write_numeric_string(w, v, 1),
        lambda r: per.read_numeric_string(r, 1),
        text,
    )
    assert got == text


@given(st.lists(st.integers(0, 2**20), min_size=1, max_size=6))
def test_per_object_identifier_round_trip(arcs):
    oid = (1, 3, *arcs)
    assert _round_trip(per.write_object_identifier, per.read_object_identifier, oid)[0] == oid


@given(st.binary(min_size=4, max_size=300))
def test_per_octet_string_round_trip(data):
    got, _ = _round_trip(
        lambda w, v: per.write_octet_string(w, v, 4), lambda r: per.read_octet_string(r, 4), data
    )
    assert got == data


core_strategy = st.builds(
    gcc.ClientCoreData,
    desktop_width=st.integers(1, 8192),
    desktop_height=st.integers(1, 8192),
    client_name=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789", max_size=15),
    early_capability_flags=st.integers(0, 0xFFFF),
    server_selected_protocol=st.sampled_from([0, 1, 2, 8]),
)


@given(
    core_strategy,
    st.lists(st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=7), max_size=6),
)
def test_conference_create_request_round_trip(core, names):
    network = gcc.ClientNetworkData(tuple(gcc.ChannelDef(n) for n in names))
    req = gcc.ConferenceCreateRequest(gcc.ClientData.create(core, network=network))
    assert gcc.ConferenceCreateRequest.decode(req.encode()) == req


@given(st.lists(st.integers(1004, 1100), max_size=31), st.integers(0, 0xF))
def test_conference_create_response_round_trip(ids, protocols):
    server = gcc.ServerData.create(
        gcc.ServerCoreData(client_requested_protocols=protocols),
        gcc.ServerNetworkData(channel_ids=tuple(ids)),
    )
    resp = gcc.ConferenceCreateResponse(server)
    assert gcc.ConferenceCreateResponse.decode(resp.encode()) == resp


def _mutations(seed: bytes):
    return st.tuples(st.integers(0, len(seed)), st.binary(max_size=4), st.integers(0, 8)).map(
        lambda t: seed[: t[0]] + t[1] + seed[t[0] + t[2] :]
    )


@given(
    st.one_of(st.binary(max_size=400), _mutations(SPEC_GCC_REQUEST), _mutations(SPEC_GCC_RESPONSE))
)
def test_gcc_decoders_raise_only_rdp_errors(data):
    for decode in (
        gcc.ConferenceCreateRequest.decode,
        gcc.ConferenceCreateResponse.decode,
        gcc.ClientData.decode,
        gcc.ServerData.decode,
    ):
        with contextlib.suppress(RdpError):
            decode(data)


@given(st.binary(max_size=64))
def test_per_readers_raise_only_rdp_errors(data):
    for read in (
        per.read_length,
        per.read_integer,
        per.read_object_identifier,
        lambda r: per.read_numeric_string(r, 1),
        lambda r: per.read_octet_string(r, 4),
        lambda r: per.read_enumerated(r, 16),
        lambda r: per.read_integer16(r, 1001),
    ):
        with contextlib.suppress(RdpError):
            read(Reader(data, "fuzz"))
