"""The Set Error Info code table (MS-RDPBCGR 2.2.5.1.1)."""

from __future__ import annotations

from harness.rdp import errinfo
from harness.rdp.share import DataPdu, SetErrorInfo, decode_share_pdu


def test_the_famous_seven():
    entry = errinfo.ERRINFO[7]
    assert entry.name == "ERRINFO_SERVER_DENIED_CONNECTION"
    assert entry.description == "The server denied the connection."
    assert errinfo.describe(7) == (
        "ERRINFO_SERVER_DENIED_CONNECTION (0x00000007): The server denied the connection."
    )


def test_all_ranges_are_present():
    codes = set(errinfo.ERRINFO)
    assert {1, 2, 3, 4, 5, 6, 7, 9, 0xA, 0xB, 0xC} <= codes
    assert {0xF, 0x10, 0x11, 0x12, 0x17, 0x18, 0x19, 0x1A} <= codes
    assert set(range(0x100, 0x10B)) <= codes
    assert {0x400, 0x402, 0x404, 0x409, 0x410, 0x412} <= codes
    assert {0x10C9, 0x10CA, 0x10E2, 0x10EA, 0x1111, 0x1126, 0x1136, 0x1191, 0x1195} <= codes
    assert len(codes) >= 115


def test_names_and_texts_are_well_formed():
    for code, entry in errinfo.ERRINFO.items():
        assert entry.code == code
        assert entry.name.startswith("ERRINFO_") and entry.name.upper() == entry.name
        assert (entry.description and entry.description[0].isupper()) or entry.description[0] == "("
        assert entry.group in {
            "protocol-independent",
            "licensing",
            "connection-broker",
            "rdp-specific",
        }
    assert len(errinfo.BY_NAME) == len(errinfo.ERRINFO)


def test_unknown_codes_are_described_not_raised():
    assert errinfo.describe(0xDEAD) == "unknown error info code 0x0000dead"
    assert errinfo.name(0xDEAD) == "ERRINFO_UNKNOWN_0x0000dead"
    assert errinfo.name(0x10A) == "ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS"
    assert errinfo.error_info_name(7) == errinfo.describe_name(7) == errinfo.name(7)


def test_constants_match_the_table():
    for const in (
        "ERRINFO_SERVER_DENIED_CONNECTION",
        "ERRINFO_LOGOFF_BY_USER",
        "ERRINFO_LICENSE_NO_LICENSE_SERVER",
        "ERRINFO_RPC_INITIATED_DISCONNECT",
    ):
        assert errinfo.BY_NAME[const].code == getattr(errinfo, const)


def test_set_error_info_pdu_carries_the_code():
    data = DataPdu(SetErrorInfo(errinfo.ERRINFO_SERVER_DENIED_CONNECTION), 0x103EA).encode()
    pdu = decode_share_pdu(data)
    assert errinfo.describe(pdu.body.error_info).startswith("ERRINFO_SERVER_DENIED_CONNECTION")
