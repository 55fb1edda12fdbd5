"""Windows' negotiation and finalisation as the emulated host now does them (rdp-facts §10):
PER variants Windows accepts, the finalisation PDUs in the order the specification gives, the
X.224 Connection Confirm and its flags."""

from __future__ import annotations

import pytest

from harness.rdp import mcs
from harness.rdp.capabilities import client_capabilities
from harness.rdp.endpoint import SessionLink
from harness.rdp.errors import ParseError
from harness.rdp.fastpath import FastPathOutputPdu
from harness.rdp.phases import ServerPhase, server_machine
from harness.rdp.server import ServerConnection, select_protocol
from harness.rdp.server_config import ServerConfig, neg_rsp_flags_for_build
from harness.rdp.session_common import SHARE_ID
from harness.rdp.session_server import ServerSession
from harness.rdp.share import (
    CTRLACTION_COOPERATE,
    CTRLACTION_GRANTED_CONTROL,
    CTRLACTION_REQUEST_CONTROL,
    ConfirmActivePdu,
    Control,
    DataPdu,
    FontList,
    FontMap,
    Synchronize,
    decode_share_pdus,
)
from harness.rdp.tpkt import FrameBuffer
from harness.rdp.x224 import ConnectionConfirm, ConnectionRequest, Protocol, decode_data

# -- PER variants ----------------------------------------------------------------------------


@pytest.mark.parametrize(("wire", "height", "interval"), [
    ("04 01 00 01 00", 0, 0),  # FreeRDP, mstsc: two PER integers
    ("04 00 01 00 01", None, None),  # rdesktop 1.9, aardwolf: two plain 16-bit fields
    ("04 01 00 01 00 00", None, None),  # a trailing byte Windows ignores
])
def test_erect_domain_request_variants_windows_accepts(wire: str, height: int | None,
                                                       interval: int | None) -> None:
    pdu = mcs.decode_domain_pdu(bytes.fromhex(wire))
    assert isinstance(pdu, mcs.ErectDomainRequest)
    assert (pdu.sub_height, pdu.sub_interval) == (height, interval)
    assert pdu.encode() == bytes.fromhex(wire)


def test_erect_domain_request_body_is_bounded() -> None:
    with pytest.raises(ParseError):
        mcs.decode_domain_pdu(b"\x04" + b"\x00" * 64)


# -- finalisation ----------------------------------------------------------------------------


def _session() -> ServerSession:
    machine = server_machine()
    for phase in (ServerPhase.TLS, ServerPhase.MCS_CONNECT, ServerPhase.MCS_DOMAIN,
                  ServerPhase.LICENSING, ServerPhase.CAPABILITIES):
        machine.move(phase)
    link = SessionLink(machine, lambda e: None, lambda reason: machine.close())
    return ServerSession(link, selected_protocol=1, requested_protocols=3, width=64, height=64,
                         burst_bytes=64, deny_error_info=None)


def _from_client(session: ServerSession, body: object) -> list[object]:
    """Feed one client PDU on the I/O channel; the share PDUs' bodies the server answers."""
    payload = body.encode() if isinstance(body, ConfirmActivePdu) else \
        DataPdu(body, SHARE_ID, 1007).encode()  # type: ignore[arg-type]
    session._on_client_data(mcs.SendDataRequest(1007, 1003, payload))
    frames = FrameBuffer()
    frames.feed(session.data_to_send())
    out = []
    while (frame := frames.next_frame()) is not None:
        if frame.fastpath:  # an update burst as fast-path output (the client supports it)
            out.append(FastPathOutputPdu.decode(frame.data))
            continue
        pdu = mcs.decode_domain_pdu(decode_data(frame.data))
        assert isinstance(pdu, mcs.SendDataIndication)
        out += [p.body if isinstance(p, DataPdu) else p for p in decode_share_pdus(pdu.user_data)]
    return out


def _kinds(bodies: list[object]) -> list[str]:
    names = {CTRLACTION_COOPERATE: "cooperate", CTRLACTION_GRANTED_CONTROL: "granted"}
    return [names[b.action] if isinstance(b, Control) else type(b).__name__ for b in bodies]


def test_server_finalisation_does_not_wait_for_the_font_list() -> None:
    """rdesktop waits for the server's Synchronize, Cooperate and Granted Control before it
    sends its Font List: they answer the Confirm Active and the Request Control."""
    session = _session()
    confirm = ConfirmActivePdu(SHARE_ID, client_capabilities(64, 64), pdu_source=1007)
    assert _kinds(_from_client(session, confirm)) == ["Synchronize", "cooperate"]
    assert session.phase is ServerPhase.FINALISATION
    assert _from_client(session, Synchronize(1002)) == []
    assert _from_client(session, Control(CTRLACTION_COOPERATE)) == []
    assert _kinds(_from_client(session, Control(CTRLACTION_REQUEST_CONTROL))) == ["granted"]
    after_fonts = _from_client(session, FontList())
    assert isinstance(after_fonts[0], FontMap)  # then the first update burst
    assert session.phase is ServerPhase.ACTIVE


# -- X.224 Connection Confirm ----------------------------------------------------------------


def _confirm(request: ConnectionRequest, **config: object) -> ConnectionConfirm:
    conn = ServerConnection(ServerConfig(**config))  # type: ignore[arg-type]
    conn.receive_data(request.encode())
    return ConnectionConfirm.decode(conn.data_to_send())


def test_no_negotiation_data_in_the_confirm_when_the_request_had_none() -> None:
    cc = _confirm(ConnectionRequest(None, "mstshash=alice"), user_authentication=False)
    assert (cc.selected_protocol, cc.failure) == (None, None)


@pytest.mark.parametrize(("build", "flags"), [(20348, 0x1F), (14393, 0x1F), (9600, 0x0F),
                                               (7601, 0x01)])
def test_negotiation_response_flags_by_windows_build(build: int, flags: int) -> None:
    assert neg_rsp_flags_for_build(build) == flags
    cc = _confirm(ConnectionRequest(int(Protocol.SSL | Protocol.HYBRID)),
                  neg_rsp_flags=neg_rsp_flags_for_build(build))
    assert (cc.selected_protocol, cc.flags) == (Protocol.HYBRID, flags)


@pytest.mark.parametrize(("requested", "nla", "expected"), [
    (Protocol.RDSTLS | Protocol.HYBRID | Protocol.SSL, True, (Protocol.HYBRID, None)),
    (Protocol.RDSTLS | Protocol.SSL, False, (Protocol.SSL, None)),
    (Protocol.RDSTLS, True, (None, 5)),  # HYBRID_REQUIRED_BY_SERVER, as without the bit
])
def test_rdstls_is_never_selected(requested: int, nla: bool,
                                  expected: tuple[int | None, int | None]) -> None:
    assert select_protocol(ServerConfig(user_authentication=nla), int(requested)) == expected


def test_updates_go_fast_path_when_the_client_supports_it() -> None:
    """MS-RDPBCGR 2.2.7.1.1: FASTPATH_OUTPUT_SUPPORTED in the client's General Capability Set
    gets fast-path output (what Windows sends, and all aardwolf reads); without it, slow-path."""
    from dataclasses import replace as _replace

    from harness.rdp.capabilities import FASTPATH_OUTPUT_SUPPORTED, GeneralCapability

    for supported in (True, False):
        session = _session()
        caps = tuple(
            _replace(c, extra_flags=c.extra_flags & ~FASTPATH_OUTPUT_SUPPORTED)
            if isinstance(c, GeneralCapability) and not supported else c
            for c in client_capabilities(64, 64)
        )
        _from_client(session, ConfirmActivePdu(SHARE_ID, caps, pdu_source=1007))
        _from_client(session, Control(CTRLACTION_REQUEST_CONTROL))
        after_fonts = _from_client(session, FontList())
        kinds = {type(x).__name__ for x in after_fonts[1:]}
        assert kinds == ({"FastPathOutputPdu"} if supported else {"BitmapUpdate"}), kinds
