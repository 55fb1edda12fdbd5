"""Slow-path share PDUs, capability sets, Client Info, licensing and bitmap updates."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.rdp import capabilities as caps
from harness.rdp import info, licensing, share, updates
from harness.rdp.errors import RdpError
from harness.rdp.wire import Reader

# MS-RDPBCGR 4.1.13 Server Demand Active, 4.1.14 Client Confirm Active and 4.1.10 Client Info:
# the decrypted share-layer bytes the specification prints after each encrypted dump.
SPEC_DEMAND_ACTIVE = bytes.fromhex(
    "67 01 11 00 ea 03 ea 03 01 00 04 00 51 01 52 44 50 00 0d 00 00 00 09 00 "
    "08 00 ea 03 dc e2 01 00 18 00 01 00 03 00 00 02 00 00 00 00 1d 04 00 00 "
    "00 00 00 00 01 01 14 00 08 00 02 00 00 00 16 00 28 00 00 00 00 00 70 f6 "
    "13 f3 01 00 00 00 01 00 00 00 18 00 00 00 9c f6 13 f3 61 a6 82 80 00 00 "
    "00 00 00 50 91 bf 0e 00 04 00 02 00 1c 00 18 00 01 00 01 00 01 00 00 05 "
    "00 04 00 00 01 00 01 00 00 00 01 00 00 00 03 00 58 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 40 42 0f 00 01 00 14 00 00 00 01 00 00 00 "
    "22 00 01 01 01 01 01 00 00 01 01 01 01 01 00 00 00 01 01 01 01 01 01 01 "
    "01 00 01 01 01 01 00 00 00 00 a1 06 00 00 40 42 0f 00 40 42 0f 00 01 00 "
    "00 00 00 00 00 00 0a 00 08 00 06 00 00 00 12 00 08 00 01 00 00 00 08 00 "
    "0a 00 01 00 19 00 19 00 0d 00 58 00 35 00 00 00 a1 06 00 00 40 42 0f 00 "
    "0c f6 13 f3 93 5a 37 f3 00 90 30 e1 34 1c 38 f3 40 f6 13 f3 04 00 00 00 "
    "4c 54 dc e2 08 50 dc e2 01 00 00 00 08 50 dc e2 00 00 00 00 38 f6 13 f3 "
    "2e 05 38 f3 08 50 dc e2 2c f6 13 f3 00 00 00 00 08 00 0a 00 01 00 19 00 "
    "17 00 08 00 00 00 00 00 18 00 0b 00 00 00 00 00 00 00 00 00 00 00 00 "
)

SPEC_CONFIRM_ACTIVE = bytes.fromhex(
    "ec 01 13 00 ef 03 ea 03 01 00 ea 03 06 00 d6 01 4d 53 54 53 43 00 12 00 "
    "00 00 01 00 18 00 01 00 03 00 00 02 00 00 00 00 1d 04 00 00 00 00 00 00 "
    "00 00 02 00 1c 00 18 00 01 00 01 00 01 00 00 05 00 04 00 00 01 00 01 00 "
    "00 00 01 00 00 00 03 00 58 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 01 00 14 00 00 00 01 00 00 00 2a 00 01 01 01 01 01 00 "
    "00 01 01 01 00 01 00 00 00 01 01 01 01 01 01 01 01 00 01 01 01 00 00 00 "
    "00 00 a1 06 00 00 00 00 00 00 00 84 03 00 00 00 00 00 e4 04 00 00 13 00 "
    "28 00 03 00 00 03 78 00 00 00 78 00 00 00 fb 09 00 80 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 0a 00 08 00 06 00 00 00 07 00 "
    "0c 00 00 00 00 00 00 00 00 00 05 00 0c 00 00 00 00 00 02 00 02 00 08 00 "
    "0a 00 01 00 14 00 15 00 09 00 08 00 00 00 00 00 0d 00 58 00 15 00 20 00 "
    "09 04 00 00 04 00 00 00 00 00 00 00 0c 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 0c 00 08 00 01 00 00 00 0e 00 08 00 01 00 00 00 "
    "10 00 34 00 fe 00 04 00 fe 00 04 00 fe 00 08 00 fe 00 08 00 fe 00 10 00 "
    "fe 00 20 00 fe 00 40 00 fe 00 80 00 fe 00 00 01 40 00 00 08 00 01 00 01 "
    "03 00 00 00 0f 00 08 00 01 00 00 00 11 00 0c 00 01 00 00 00 00 1e 64 00 "
    "14 00 08 00 01 00 00 00 15 00 0c 00 02 00 00 00 00 0a 00 01 16 00 28 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 "
)

SPEC_INFO_PACKET = bytes.fromhex(
    "09 04 09 04 b3 43 00 00 0a 00 0c 00 00 00 00 00 00 00 4e 00 54 00 44 00 "
    "45 00 56 00 00 00 65 00 6c 00 74 00 6f 00 6e 00 73 00 00 00 00 00 00 00 "
    "00 00 02 00 1e 00 31 00 35 00 37 00 2e 00 35 00 39 00 2e 00 32 00 34 00 "
    "32 00 2e 00 31 00 35 00 36 00 00 00 84 00 43 00 3a 00 5c 00 64 00 65 00 "
    "70 00 6f 00 74 00 73 00 5c 00 77 00 32 00 6b 00 33 00 5f 00 31 00 5c 00 "
    "74 00 65 00 72 00 6d 00 73 00 72 00 76 00 5c 00 6e 00 65 00 77 00 63 00 "
    "6c 00 69 00 65 00 6e 00 74 00 5c 00 6c 00 69 00 62 00 5c 00 77 00 69 00 "
    "6e 00 33 00 32 00 5c 00 6f 00 62 00 6a 00 5c 00 69 00 33 00 38 00 36 00 "
    "5c 00 6d 00 73 00 74 00 73 00 63 00 61 00 78 00 2e 00 64 00 6c 00 6c 00 "
    "00 00 e0 01 00 00 50 00 61 00 63 00 69 00 66 00 69 00 63 00 20 00 53 00 "
    "74 00 61 00 6e 00 64 00 61 00 72 00 64 00 20 00 54 00 69 00 6d 00 65 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "0a 00 00 00 05 00 02 00 00 00 00 00 00 00 00 00 00 00 50 00 61 00 63 00 "
    "69 00 66 00 69 00 63 00 20 00 44 00 61 00 79 00 6c 00 69 00 67 00 68 00 "
    "74 00 20 00 54 00 69 00 6d 00 65 00 00 00 00 00 00 00 00 00 00 00 00 00 "
    "00 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00 01 00 02 00 00 00 00 00 "
    "00 00 c4 ff ff ff 00 00 00 00 01 00 00 00 00 00 "
)

# MS-RDPBCGR 4.1.19 Server Synchronize PDU (decrypted); 4.1.11 License Error (Valid Client) with
# its security header as a TLS session carries it (the spec dump is RC4-encrypted).
SPEC_SERVER_SYNCHRONIZE = bytes.fromhex(
    "16 00 17 00 ea 03 ea 03 01 00 14 00 16 00 1f 00 00 00 01 00 63 44"
)
SPEC_LICENSE_VALID_CLIENT = bytes.fromhex(
    "80 00 00 00 ff 03 10 00 07 00 00 00 02 00 00 00 04 00 00 00"
)

# MS-RDPBCGR 4.1.14 Client Synchronize and 4.1.15 Client Control (Cooperate), decrypted.
SPEC_CLIENT_SYNCHRONIZE = bytes.fromhex(
    "16 00 17 00 ef 03 ea 03 01 00 00 01 08 00 1f 00 00 00 01 00 ea 03"
)
SPEC_CLIENT_COOPERATE = bytes.fromhex(
    "1a 00 17 00 ef 03 ea 03 01 00 00 01 0c 00 14 00 00 00 04 00 00 00 00 00 00 00"
)

SERVER_CAPSET_TYPES_FREERDP_ACCEPTS = {
    1,
    2,
    3,
    8,
    9,
    10,
    13,
    14,
    18,
    20,
    22,
    23,
    24,
    25,
    26,
    27,
    28,
    29,
    30,
    31,
}


def test_spec_demand_active():
    pdu = share.decode_share_pdu(SPEC_DEMAND_ACTIVE)
    assert isinstance(pdu, share.DemandActivePdu)
    assert pdu.share_id == 0x103EA and pdu.pdu_source == 1002
    assert pdu.source_descriptor == b"RDP\x00" and pdu.session_id == 0
    assert len(pdu.capabilities) == 13
    general = caps.find_capability(pdu.capabilities, caps.GeneralCapability)
    assert general is not None and general.extra_flags & caps.FASTPATH_OUTPUT_SUPPORTED
    bitmap = caps.find_capability(pdu.capabilities, caps.BitmapCapability)
    assert (bitmap.desktop_width, bitmap.desktop_height, bitmap.preferred_bits_per_pixel) == (
        1280,
        1024,
        24,
    )
    inp = caps.find_capability(pdu.capabilities, caps.InputCapability)
    assert inp.input_flags == 0x35  # scancodes, mousex, unicode, fast-path input 2
    assert any(isinstance(c, caps.RawCapability) for c in pdu.capabilities)  # kept raw
    assert pdu.encode() == SPEC_DEMAND_ACTIVE


def test_spec_confirm_active():
    pdu = share.decode_share_pdu(SPEC_CONFIRM_ACTIVE)
    assert isinstance(pdu, share.ConfirmActivePdu)
    assert pdu.share_id == 0x103EA and pdu.pdu_source == 1007 and pdu.originator_id == 1002
    assert pdu.source_descriptor == b"MSTSC\x00" and len(pdu.capabilities) == 18
    glyph = caps.find_capability(pdu.capabilities, caps.GlyphCacheCapability)
    assert glyph.glyph_cache[9] == (64, 2048) and glyph.glyph_support_level == 3
    rev2 = caps.find_capability(pdu.capabilities, caps.BitmapCacheRev2Capability)
    assert rev2.num_cell_caches == 3
    assert pdu.encode() == SPEC_CONFIRM_ACTIVE


def test_spec_client_info():
    pdu = info.ClientInfoPdu.decode(share.add_security_header(share.SEC_INFO_PKT, SPEC_INFO_PACKET))
    packet = pdu.info
    assert packet.code_page == 0x04090409 and packet.flags == 0x43B3
    assert packet.unicode and packet.flags & info.COMPRESSION_TYPE_MASK == 0x200
    assert (packet.domain, packet.user_name, packet.password) == ("NTDEV", "eltons", "")
    extra = packet.extra
    assert extra.client_address_family == info.AF_INET
    assert extra.client_address == "157.59.242.156"
    assert extra.client_dir.endswith("mstscax.dll")
    tz = extra.client_time_zone
    assert tz.bias == 480 and tz.standard_name == "Pacific Standard Time"
    assert tz.standard_date.month == 10 and tz.daylight_bias == 0xFFFFFFC4
    assert extra.performance_flags == info.PERF_DISABLE_WALLPAPER
    assert extra.auto_reconnect_cookie == b"" and extra.reserved1 is None
    assert packet.encode() == SPEC_INFO_PACKET


def test_client_info_cb_lengths_exclude_the_terminator():
    packet = info.InfoPacket(domain="LAB", user_name="alice", password="pw", extra=None)
    data = packet.encode()
    r = Reader(data, "info")
    r.skip(8)
    assert [r.u16le() for _ in range(5)] == [6, 10, 4, 0, 0]
    assert data[18:26] == "LAB".encode("utf-16-le") + b"\x00\x00"
    assert info.InfoPacket.decode(data) == packet


def test_client_info_address_lengths_include_the_terminator():
    extra = info.ExtendedInfoPacket(client_address="10.0.0.1", client_dir="C:\\rdplab")
    data = extra.encode()
    assert data[2:4] == (2 * 9).to_bytes(2, "little")
    assert info.ExtendedInfoPacket.decode(Reader(data, "extra")) == extra


def test_client_info_full_tail_round_trips():
    extra = info.ExtendedInfoPacket(
        auto_reconnect_cookie=bytes(28),
        reserved1=0,
        reserved2=0,
        dynamic_dst_time_zone_key_name="Pacific".encode("utf-16-le"),
        dynamic_daylight_time_disabled=0,
    )
    pdu = info.ClientInfoPdu(info.InfoPacket(user_name="bob", extra=extra))
    assert info.ClientInfoPdu.decode(pdu.encode()) == pdu


def test_ansi_client_info_round_trips():
    packet = info.InfoPacket(flags=info.INFO_MOUSE, user_name="bob", domain="D", extra=None)
    assert info.InfoPacket.decode(packet.encode()) == packet


def test_spec_server_synchronize():
    pdu = share.decode_share_pdu(SPEC_SERVER_SYNCHRONIZE)
    assert isinstance(pdu, share.DataPdu)
    assert pdu.body == share.Synchronize(target_user=0x4463)
    assert pdu.share_id == 0x103EA and pdu.stream_id == share.STREAM_UNDEFINED
    assert pdu.encode() == SPEC_SERVER_SYNCHRONIZE


def test_spec_client_finalisation_pdus_are_what_the_defaults_build():
    sync = share.DataPdu(share.Synchronize(1002), share_id=0x103EA, pdu_source=1007)
    assert sync.encode() == SPEC_CLIENT_SYNCHRONIZE
    assert share.decode_share_pdu(SPEC_CLIENT_SYNCHRONIZE) == sync
    coop = share.DataPdu(share.Control(share.CTRLACTION_COOPERATE), 0x103EA, 1007)
    assert coop.encode() == SPEC_CLIENT_COOPERATE
    assert share.decode_share_pdu(SPEC_CLIENT_COOPERATE) == coop


def test_spec_license_valid_client():
    pdu = licensing.LicensePdu.decode(SPEC_LICENSE_VALID_CLIENT)
    assert pdu.is_valid_client and pdu.preamble_version == licensing.PREAMBLE_VERSION_3_0
    assert pdu.message == licensing.LicenseErrorMessage(
        licensing.STATUS_VALID_CLIENT, licensing.ST_NO_TRANSITION, licensing.BB_ERROR_BLOB
    )
    assert licensing.LicensePdu.valid_client().encode() == SPEC_LICENSE_VALID_CLIENT


def test_license_with_extended_error_flag_is_accepted():
    data = licensing.LicensePdu.valid_client(extended_error=True).encode()
    assert data[5] == 0x83
    pdu = licensing.LicensePdu.decode(data)
    assert pdu.extended_error and pdu.is_valid_client


def test_license_no_transition_error_lets_the_client_continue():
    msg = licensing.LicenseErrorMessage(licensing.ERR_NO_LICENSE_SERVER, licensing.ST_NO_TRANSITION)
    assert licensing.LicensePdu(licensing.ERROR_ALERT, msg).is_valid_client
    abort = licensing.LicenseErrorMessage(licensing.ERR_INVALID_CLIENT, licensing.ST_TOTAL_ABORT)
    assert not licensing.LicensePdu(licensing.ERROR_ALERT, abort).is_valid_client


def test_license_request_is_kept_raw():
    pdu = licensing.LicensePdu(licensing.LICENSE_REQUEST, b"\x01" * 40)
    assert licensing.LicensePdu.decode(pdu.encode()) == pdu


def test_license_pdu_needs_the_license_flag():
    with pytest.raises(RdpError):
        licensing.LicensePdu.decode(bytes.fromhex("40 00 00 00 ff 03 10 00") + bytes(12))


DATA_BODIES = [
    share.Synchronize(1007),
    share.Control(share.CTRLACTION_COOPERATE),
    share.Control(share.CTRLACTION_REQUEST_CONTROL),
    share.Control(share.CTRLACTION_GRANTED_CONTROL, grant_id=1007, control_id=1002),
    share.FontList(),
    share.FontMap(),
    share.SetErrorInfo(7),
    share.RefreshRect((share.Rect16(0, 0, 1023, 767), share.Rect16(10, 10, 20, 20))),
    share.SuppressOutput(share.SUPPRESS_DISPLAY_UPDATES),
    share.SuppressOutput(share.ALLOW_DISPLAY_UPDATES, share.Rect16(0, 0, 799, 599)),
    share.ShutdownRequest(),
    share.ShutdownDenied(),
    share.SaveSessionInfo(share.INFOTYPE_LOGON_PLAINNOTIFY, bytes(576)),
    share.MonitorLayout(
        (share.MonitorDef(-1920, 0, -1, 1079, 0), share.MonitorDef(0, 0, 1919, 1079, 1))
    ),
    share.PersistentKeyList(
        num_entries=(1, 0, 0, 0, 0), total_entries=(1, 0, 0, 0, 0), keys=((1, 2),)
    ),
    share.InputEvents(
        (
            share.InputEvent(0, 0x0000, bytes(6)),
            share.InputEvent(5, 0x8001, b"\x00\x08\x10\x00\x20\x00"),
        )
    ),
    share.StatusInfo(0x401),
    share.RawDataBody(share.PDUTYPE2_SET_KEYBOARD_INDICATORS, b"\x00\x00\x02\x00"),
    updates.BitmapUpdate((updates.BitmapData(0, 0, 63, 63, 64, 64, 16, 0, bytes(8192)),)),
    updates.OtherUpdate(updates.UPDATETYPE_SYNCHRONIZE, b"\x00\x00"),
]


@pytest.mark.parametrize("body", DATA_BODIES, ids=lambda b: type(b).__name__)
def test_data_pdu_round_trips(body):
    pdu = share.DataPdu(body, share_id=0x103EF, pdu_source=1007)
    data = pdu.encode()
    decoded = share.decode_share_pdu(data)
    assert decoded == pdu
    assert decoded.encode() == data


def test_data_pdu_header_layout():
    data = share.DataPdu(share.SetErrorInfo(7), share_id=0x103EA, pdu_source=0).encode()
    assert data == bytes.fromhex(
        "16 00 17 00 00 00 ea 03 01 00 00 01 08 00 2f 00 00 00 07 00 00 00"
    )


def test_compressed_data_pdu_stays_raw():
    pdu = share.DataPdu(
        share.RawDataBody(share.PDUTYPE2_UPDATE, b"\xff\xfe"),
        1,
        1002,
        compressed_type=share.PACKET_COMPRESSED | 0x01,
        compressed_length=20,
    )
    decoded = share.decode_share_pdu(pdu.encode())
    assert decoded == pdu


@pytest.mark.parametrize(
    "pdu",
    [
        share.DeactivateAllPdu(0x103EA),
        share.DeactivateAllPdu(None, 1002, b""),
        share.FlowPdu(share.PDUTYPE_FLOW_TEST, 1, 2, 1002),
        share.UnknownControlPdu(share.PDUTYPE_SERVER_REDIR_PKT, 1002, b"\x00\x00\x04\x00"),
        share.DemandActivePdu(0x103EF, tuple(caps.server_capabilities(1024, 768))),
        share.ConfirmActivePdu(0x103EF, tuple(caps.client_capabilities(1024, 768)), 1007),
    ],
    ids=lambda p: type(p).__name__,
)
def test_control_pdu_round_trips(pdu):
    assert share.decode_share_pdu(pdu.encode()) == pdu


def test_short_windows_xp_deactivate_all_is_tolerated():
    pdu = share.decode_share_pdu(bytes.fromhex("04 00 16 00"))
    assert isinstance(pdu, share.DeactivateAllPdu) and pdu.share_id is None


def test_bundled_share_pdus_are_split():
    a = share.DataPdu(share.Synchronize(1007), 1, 1002).encode()
    b = share.DataPdu(share.Control(share.CTRLACTION_COOPERATE), 1, 1002).encode()
    c = share.FlowPdu(share.PDUTYPE_FLOW_STOP).encode()
    pdus = share.decode_share_pdus(a + c + b)
    assert [type(p.body if isinstance(p, share.DataPdu) else p).__name__ for p in pdus] == [
        "Synchronize",
        "FlowPdu",
        "Control",
    ]
    with pytest.raises(RdpError):
        share.decode_share_pdu(a + b)


def test_save_session_info_logon_errors():
    data = bytes.fromhex("12 00 02 00 00 00 08 00 00 00 fe ff ff ff 00 00 00 00") + bytes(570)
    body = share.SaveSessionInfo(share.INFOTYPE_LOGON_EXTENDED_INFO, data)
    assert body.logon_errors == (0xFFFFFFFE, 0)
    assert share.SaveSessionInfo(share.INFOTYPE_LOGON, bytes(10)).logon_errors is None


def test_server_capabilities_only_use_sets_freerdp_accepts_from_a_server():
    server = caps.server_capabilities(1280, 720, 32)
    assert {c.CAPSET_TYPE for c in server} <= SERVER_CAPSET_TYPES_FREERDP_ACCEPTS
    assert len({type(c) for c in server}) == len(server)
    assert all(not isinstance(c, caps.RawCapability) for c in server)
    decoded = caps.decode_capability_sets(Reader(caps.encode_capability_sets(server), "caps"))
    assert list(decoded) == server


def test_client_capabilities_sets_and_lengths():
    client = caps.client_capabilities(1024, 768, 16, bitmap_cache_rev2=False)
    lengths = {c.CAPSET_TYPE: len(c.encode()) for c in client}
    assert lengths[caps.CAPSTYPE_GENERAL] == 24 and lengths[caps.CAPSTYPE_BITMAP] == 28
    assert lengths[caps.CAPSTYPE_ORDER] == 88 and lengths[caps.CAPSTYPE_INPUT] == 88
    assert lengths[caps.CAPSTYPE_BITMAPCACHE] == 40 and lengths[caps.CAPSTYPE_GLYPHCACHE] == 52
    for required in (
        caps.CAPSTYPE_CONTROL,
        caps.CAPSTYPE_ACTIVATION,
        caps.CAPSTYPE_SOUND,
        caps.CAPSTYPE_BRUSH,
        caps.CAPSTYPE_OFFSCREENCACHE,
        caps.CAPSTYPE_SHARE,
    ):
        assert required in lengths


def test_odd_capability_bodies_are_kept_raw():
    assert caps.decode_capability(caps.CAPSTYPE_GENERAL, b"\x01\x00") == caps.RawCapability(
        1, b"\x01\x00"
    )
    assert caps.decode_capability(0x7777, b"xyz") == caps.RawCapability(0x7777, b"xyz")
    short_pointer = caps.decode_capability(caps.CAPSTYPE_POINTER, b"\x01\x00\x14\x00")
    assert short_pointer == caps.PointerCapability(1, 20, None)


@pytest.mark.parametrize("bpp", [16, 32])
@pytest.mark.parametrize(
    ("width", "height", "total"), [(1024, 768, 1), (800, 600, 300_000), (1366, 770, 3_000_000)]
)
def test_bitmap_update_pdus(bpp, width, height, total):
    pdus = updates_of(share.bitmap_update_pdus(width, height, total, bpp=bpp, share_id=0x103EA))
    assert sum(u.byte_count for u in pdus) >= total
    for update in pdus:
        for rect in update.rectangles:
            assert rect.width % 4 == 0 and rect.bits_per_pixel == bpp
            assert len(rect.data) == rect.width * rect.height * bpp // 8
            assert 0 <= rect.dest_left <= rect.dest_right < width
            assert 0 <= rect.dest_top <= rect.dest_bottom < height


def updates_of(pdus: list[bytes]) -> list[updates.BitmapUpdate]:
    out = []
    for data in pdus:
        assert len(data) < 9000  # comfortably under the ~16 KB slow-path PDUs Windows sends
        pdu = share.decode_share_pdu(data)
        assert isinstance(pdu.body, updates.BitmapUpdate) and pdu.pdu_source == 1002
        out.append(pdu.body)
    return out


def test_bitmap_update_decoder_counts_bytes_of_compressed_rects():
    rect = updates.BitmapData(
        0, 0, 63, 63, 64, 64, 16, updates.BITMAP_COMPRESSION, b"\x01" * 100, bytes(8)
    )
    body = updates.BitmapUpdate((rect,))
    decoded = updates.decode_update(body.encode())
    assert decoded == body and decoded.byte_count == 100


@settings(deadline=None)  # a 1x1 desktop with 100 kB to plan is 100 k tiles: slow on a busy box
@given(
    st.integers(1, 4000),
    st.integers(1, 3000),
    st.integers(0, 100_000),
    st.sampled_from([8, 15, 16, 24, 32]),
)
def test_bitmap_plan_property(width, height, total, bpp):
    rects = updates.plan_bitmap_rects(width, height, total, bpp)
    assert sum(len(r.data) for r in rects) >= max(total, 1)
    assert all(len(r.data) <= updates.MAX_RECT_BYTES for r in rects)


def _mutations(seed: bytes):
    return st.tuples(st.integers(0, len(seed)), st.binary(max_size=4), st.integers(0, 8)).map(
        lambda t: seed[: t[0]] + t[1] + seed[t[0] + t[2] :]
    )


SEEDS = [
    SPEC_DEMAND_ACTIVE,
    SPEC_CONFIRM_ACTIVE,
    SPEC_SERVER_SYNCHRONIZE,
    *(share.DataPdu(b, 1, 1002).encode() for b in DATA_BODIES[:18]),
]


@given(st.one_of(st.binary(max_size=300), *(_mutations(s) for s in SEEDS)))
def test_share_decoders_raise_only_rdp_errors(data):
    with contextlib.suppress(RdpError):
        share.decode_share_pdu(data)
    with contextlib.suppress(RdpError):
        share.decode_share_pdus(data)
    with contextlib.suppress(RdpError):
        share.strip_security_header(data)
    with contextlib.suppress(RdpError):
        caps.decode_capability_sets(Reader(data, "caps"))
    with contextlib.suppress(RdpError):
        updates.decode_update(data)
    for pdu_type2 in (
        0x02,
        0x14,
        0x1B,
        0x1C,
        0x1F,
        0x21,
        0x23,
        0x26,
        0x27,
        0x28,
        0x2B,
        0x2F,
        0x36,
        0x37,
    ):
        with contextlib.suppress(RdpError):
            body = share.decode_data_body(pdu_type2, data)
            if isinstance(body, share.SaveSessionInfo):
                _ = body.logon_errors


@given(
    st.one_of(
        st.binary(max_size=300),
        _mutations(share.add_security_header(share.SEC_INFO_PKT, SPEC_INFO_PACKET)),
        _mutations(SPEC_LICENSE_VALID_CLIENT),
    )
)
def test_info_and_licensing_decoders_raise_only_rdp_errors(data):
    with contextlib.suppress(RdpError):
        info.ClientInfoPdu.decode(data)
    with contextlib.suppress(RdpError):
        info.InfoPacket.decode(data)
    with contextlib.suppress(RdpError):
        licensing.LicensePdu.decode(data)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(1001, 0xFFFF))
def test_finalisation_round_trip_property(target, share_id, source):
    for body in (
        share.Synchronize(target),
        share.Control(share.CTRLACTION_COOPERATE),
        share.FontMap(),
    ):
        pdu = share.DataPdu(body, share_id, source)
        assert share.DataPdu.decode(pdu.encode()) == pdu
