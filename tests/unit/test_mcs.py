"""MCS connect (BER) and domain (PER) PDUs: spec byte vectors, round trips, robustness."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.rdp import mcs
from harness.rdp.errors import ProtocolFailure, RdpError
from harness.rdp.gcc import (
    ClientCoreData,
    ClientData,
    ServerCoreData,
    ServerData,
    ServerNetworkData,
)
from tests.spec_vectors import SPEC_CONNECT_INITIAL  # MS-RDPBCGR 4.1.3

# MS-RDPBCGR 2.2.1.4 examples: Server MCS Connect Response PDUs (MCS part).
SPEC_CONNECT_RESPONSE_1 = bytes.fromhex(
    "7f 66 63 0a 01 00 02 01 00 30 1a 02 01 16 02 01 03 02 01 00 02 01 01 02 "
    "01 00 02 01 01 02 03 00 ff f8 02 01 02 04 3f 00 05 00 14 7c 00 01 2a 14 "
    "76 0a 01 01 00 01 c0 00 4d 63 44 6e 80 28 01 0c 0c 00 04 00 08 00 0b 00 "
    "00 00 03 0c 10 00 eb 03 04 00 ec 03 ed 03 ee 03 ef 03 02 0c 0c 00 00 00 "
    "00 00 00 00 00 00"
)
SPEC_CONNECT_RESPONSE_2 = bytes.fromhex(
    "7f 66 7c 0a 01 00 02 01 00 30 1a 02 01 22 02 01 03 02 01 00 02 01 01 02 "
    "01 00 02 01 01 02 03 00 ff f8 02 01 02 04 58 00 05 00 14 7c 00 01 2a 14 "
    "76 0a 01 01 00 01 c0 00 4d 63 44 6e 42 01 0c 10 00 0b 00 08 00 0b 00 00 "
    "00 06 00 00 00 03 0c 18 00 eb 03 07 00 ec 03 ed 03 ee 03 ef 03 f0 03 f1 "
    "03 f2 03 00 00 02 0c 0c 00 00 00 00 00 00 00 00 00 04 0c 06 00 f3 03 08 "
    "0c 08 00 01 03 00 00"
)

# MS-RDPBCGR 4.1.5-4.1.8 and 4.2.3 (X.224 payloads), with the PDU each one decodes to.
SPEC_DOMAIN_PDUS = [
    ("04 01 00 01 00", mcs.ErectDomainRequest(0, 0)),
    ("28", mcs.AttachUserRequest()),
    ("2e 00 00 06", mcs.AttachUserConfirm(0, 1007)),
    ("38 00 06 03 eb", mcs.ChannelJoinRequest(1007, 1003)),
    ("38 00 06 03 ee", mcs.ChannelJoinRequest(1007, 1006)),
    ("3e 00 00 06 03 ef 03 ef", mcs.ChannelJoinConfirm(0, 1007, 1007, 1007)),
    ("3e 00 00 06 03 ee 03 ee", mcs.ChannelJoinConfirm(0, 1007, 1006, 1006)),
    ("21 80", mcs.DisconnectProviderUltimatum(mcs.RN_USER_REQUESTED)),
]


def test_spec_connect_initial_decodes_and_reencodes():
    ci = mcs.ConnectInitial.decode(SPEC_CONNECT_INITIAL)
    assert ci.calling_domain_selector == b"\x01" and ci.upward_flag
    assert ci.target == mcs.CLIENT_TARGET_PARAMETERS
    assert ci.minimum == mcs.CLIENT_MINIMUM_PARAMETERS
    assert ci.maximum == mcs.CLIENT_MAXIMUM_PARAMETERS
    assert ci.integer_style == "unsigned"  # mstsc writes 65535 as "02 02 ff ff"
    core = ci.client_data.core
    assert core is not None and core.client_name == "ELTONS-DEV2"
    assert (core.desktop_width, core.desktop_height) == (1280, 1024)
    assert ci.encode() == SPEC_CONNECT_INITIAL


def test_default_connect_initial_is_what_mstsc_sends():
    ci = mcs.ConnectInitial.decode(SPEC_CONNECT_INITIAL)
    rebuilt = mcs.ConnectInitial.from_client_data(ci.client_data)
    assert rebuilt.encode() == SPEC_CONNECT_INITIAL


@pytest.mark.parametrize("vector", [SPEC_CONNECT_RESPONSE_1, SPEC_CONNECT_RESPONSE_2])
def test_spec_connect_response_decodes_and_reencodes(vector):
    cr = mcs.ConnectResponse.decode(vector)
    assert cr.result == mcs.RT_SUCCESSFUL and cr.result_name == "rt-successful"
    assert cr.integer_style == "signed"  # Windows writes 65528 as "02 03 00 ff f8"
    assert cr.domain_parameters is not None
    assert cr.domain_parameters.max_mcs_pdu_size == 65528
    net = cr.server_data.network
    assert net is not None and net.mcs_channel_id == mcs.MCS_IO_CHANNEL_ID
    assert cr.encode() == vector


def test_merge_of_mstsc_proposal_is_what_windows_answers():
    merged = mcs.merge_domain_parameters(
        mcs.CLIENT_TARGET_PARAMETERS, mcs.CLIENT_MINIMUM_PARAMETERS, mcs.CLIENT_MAXIMUM_PARAMETERS
    )
    assert merged == mcs.SERVER_DOMAIN_PARAMETERS
    cr = mcs.ConnectResponse.decode(SPEC_CONNECT_RESPONSE_2)
    assert cr.domain_parameters == merged


def test_unmergeable_parameters_fail_as_protocol_failure():
    bad = mcs.DomainParameters(1, 1, 0, 1, 0, 1, 65535, 2)
    with pytest.raises(ProtocolFailure):
        mcs.merge_domain_parameters(bad, bad, bad)


def test_failed_connect_response_may_stop_after_result():
    cr = mcs.ConnectResponse(result=mcs.RT_UNSPECIFIED_FAILURE, domain_parameters=None)
    data = cr.encode()
    assert data == bytes.fromhex("7f 66 03 0a 01 0e")
    assert mcs.ConnectResponse.decode(data) == cr


def test_connect_response_from_server_data_round_trips():
    server = ServerData.create(
        ServerCoreData(client_requested_protocols=3), ServerNetworkData(channel_ids=(1004,))
    )
    cr = mcs.ConnectResponse.from_server_data(server)
    decoded = mcs.ConnectResponse.decode(cr.encode())
    assert decoded == cr and decoded.server_data == server


def test_connect_initial_signed_style_round_trips():
    ci = mcs.ConnectInitial.from_client_data(
        ClientData.create(ClientCoreData()), integer_style="signed"
    )
    data = ci.encode()
    assert b"\x02\x03\x00\xff\xff" in data  # FreeRDP/DER style for 65535
    assert mcs.ConnectInitial.decode(data) == ci


@pytest.mark.parametrize(("hexdata", "pdu"), SPEC_DOMAIN_PDUS)
def test_spec_domain_pdus(hexdata, pdu):
    data = bytes.fromhex(hexdata)
    assert mcs.decode_domain_pdu(data) == pdu
    assert pdu.encode() == data


def test_spec_send_data_indication_header():
    # MS-RDPBCGR 4.1.11 License Error PDU: SDin from 1002 on 1003, high priority, begin|end.
    payload = bytes(28)
    data = bytes.fromhex("68 00 01 03 eb 70 1c") + payload
    pdu = mcs.decode_domain_pdu(data)
    assert pdu == mcs.SendDataIndication(1002, 1003, payload)
    assert pdu.priority == mcs.DATA_PRIORITY_HIGH and pdu.segmentation == 3
    assert pdu.encode() == data


def test_send_data_request_long_user_data_uses_two_octet_length():
    pdu = mcs.SendDataRequest(1007, 1003, bytes(0x15E))
    data = pdu.encode()
    assert data[:8] == bytes.fromhex("64 00 06 03 eb 70 81 5e")
    assert mcs.decode_domain_pdu(data) == pdu


def test_freerdp_always_long_length_round_trips_exactly():
    data = bytes.fromhex("64 00 03 03 eb 70 80 04") + b"abcd"
    pdu = mcs.decode_domain_pdu(data)
    assert isinstance(pdu, mcs.SendDataRequest) and pdu.long_length
    assert pdu.user_data == b"abcd" and pdu.initiator == 1004
    assert pdu.encode() == data


@pytest.mark.parametrize(
    "pdu",
    [
        mcs.AttachUserConfirm(mcs.RT_UNSPECIFIED_FAILURE, None),
        mcs.AttachUserConfirm(5, 1010),
        mcs.ChannelJoinConfirm(3, 1007, 1005, None),
        mcs.ChannelJoinConfirm(15, 1007, 1005, 1005),
        mcs.DisconnectProviderUltimatum(mcs.RN_CHANNEL_PURGED),
        mcs.DisconnectProviderUltimatum(mcs.RN_PROVIDER_INITIATED),
        mcs.ErectDomainRequest(300, 70000),
        mcs.DetachUserRequest(b"\x80\x01\x00\x06"),
    ],
)
def test_domain_pdu_round_trips(pdu):
    assert mcs.decode_domain_pdu(pdu.encode()) == pdu


def test_result_bits_straddle_two_octets():
    # rt-unspecified-failure (14 = 0b1110): top bit in octet 1, the rest in octet 2.
    assert mcs.AttachUserConfirm(14, None).encode() == bytes([0x2D, 0xC0])


def test_unknown_domain_pdu_is_kept_raw():
    pdu = mcs.decode_domain_pdu(b"\x6c\x01\x02")
    assert pdu == mcs.UnknownDomainPdu(27, b"\x6c\x01\x02")


def test_channel_assignment_like_windows():
    plan = mcs.assign_channel_ids(3)
    assert plan.static_channels == (1004, 1005, 1006) and plan.user_channel == 1007
    plan = mcs.assign_channel_ids(7, message_channel=True)
    assert plan.message_channel == 1011 and plan.user_channel == 1012
    assert plan.all_channels[:2] == (1012, 1003)


def test_connect_pdu_kind_helpers():
    assert mcs.is_connect_initial(SPEC_CONNECT_INITIAL)
    assert mcs.is_connect_response(SPEC_CONNECT_RESPONSE_1)


channel_ids = st.integers(1001, 65535)


@given(channel_ids, st.integers(0, 65535), st.binary(max_size=600), st.booleans())
def test_send_data_round_trip_property(initiator, channel, payload, indication):
    cls = mcs.SendDataIndication if indication else mcs.SendDataRequest
    pdu = cls(initiator, channel, payload)
    assert mcs.decode_domain_pdu(pdu.encode()) == pdu


def _mutations(seed: bytes):
    return st.tuples(st.integers(0, len(seed)), st.binary(max_size=4), st.integers(0, 8)).map(
        lambda t: seed[: t[0]] + t[1] + seed[t[0] + t[2] :]
    )


fuzz_input = st.one_of(
    st.binary(max_size=400),
    _mutations(SPEC_CONNECT_INITIAL),
    _mutations(SPEC_CONNECT_RESPONSE_2),
    _mutations(bytes.fromhex("3e 00 00 06 03 ef 03 ef")),
    _mutations(bytes.fromhex("68 00 01 03 eb 70 04 01 02 03 04")),
)


@given(fuzz_input)
def test_decoders_raise_only_rdp_errors(data):
    def attempt(fn):
        with contextlib.suppress(RdpError):
            fn()

    attempt(lambda: mcs.decode_domain_pdu(data))
    attempt(lambda: mcs.ConnectInitial.decode(data).client_data)
    attempt(lambda: mcs.ConnectResponse.decode(data).server_data)
