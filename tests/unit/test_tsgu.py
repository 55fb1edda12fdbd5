"""MS-TSGU HTTP transport core: packets, HTTP framing, WebSocket, chunked, state machines."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.rdp import tsgu
from harness.rdp.errors import ParseError, RdpError, StateError

PACKETS = [
    tsgu.HandshakeRequest(),
    tsgu.HandshakeRequest(1, 0, 0, tsgu.HTTP_EXTENDED_AUTH_PAA),
    tsgu.HandshakeResponse(),
    tsgu.HandshakeResponse(tsgu.E_PROXY_CAPABILITYMISMATCH, 1, 0, 2, 0),
    tsgu.TunnelCreate(),
    tsgu.TunnelCreate(7, reauth_context=0x1122334455667788, paa_cookie=b"cookie"),
    tsgu.TunnelResponse(),
    tsgu.TunnelResponse(tsgu.S_OK, 1, tunnel_id=10, caps=tsgu.HTTP_CAPABILITY_IDLE_TIMEOUT),
    tsgu.TunnelResponse(0, 0, 3, 4, b"n" * 20, "CN=gw", "Consent needed"),
    tsgu.TunnelAuth("PROBE"),
    tsgu.TunnelAuth("PROBE", soh=b"\x01\x02"),
    tsgu.TunnelAuthResponse(),
    tsgu.TunnelAuthResponse(0, tsgu.HTTP_TUNNEL_REDIR_ENABLE_ALL, 30, b"soh"),
    tsgu.TunnelAuthResponse(tsgu.E_PROXY_NAP_ACCESSDENIED),
    tsgu.ChannelCreate(("rdhost.lab.test",), 3389),
    tsgu.ChannelCreate(("a", "b"), 3390, ("alt",), 3),
    tsgu.ChannelResponse(),
    tsgu.ChannelResponse(0, 1, 3391, b"udp"),
    tsgu.ChannelResponse(tsgu.E_PROXY_RAP_ACCESSDENIED),
    tsgu.Data(b""),
    tsgu.Data(b"\x03\x00\x00\x2a" + bytes(38)),
    tsgu.Data(bytes(range(256)) * 255),
    tsgu.ServiceMessage("Maintenance at 18:00"),
    tsgu.ReauthMessage(42),
    tsgu.Keepalive(),
    tsgu.CloseChannel(tsgu.E_PROXY_CONNECTIONABORTED),
    tsgu.CloseChannelResponse(),
    tsgu.UnknownPacket(0x3, b"\x00\x00\x00\x00\x00\x00"),
]


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: type(p).__name__)
def test_every_packet_round_trips(packet: tsgu.Packet) -> None:
    raw = packet.encode()
    assert int.from_bytes(raw[4:8], "little") == len(raw)
    assert tsgu.decode_packet(raw) == packet


def test_layouts_match_freerdp() -> None:
    # rdg_send_handshake: 14 bytes, version 1.0, client version 0, no extended auth
    assert tsgu.HandshakeRequest().encode() == bytes.fromhex("01000000 0e000000 0100 0000 0000")
    # rdg_send_tunnel_request: 16 bytes, caps QUAR_SOH|CONSENT_SIGN|SERVICE_MSG
    assert tsgu.TunnelCreate().encode() == bytes.fromhex("04000000 10000000 0d000000 0000 0000")
    # rdg_send_tunnel_authorization: name with its NUL, length in bytes
    auth = tsgu.TunnelAuth("AB").encode()
    assert auth == bytes.fromhex("06000000 12000000 0000 0600") + "AB\0".encode("utf-16-le")
    # rdg_send_channel_create: 1 resource, 0 alternates, port, protocol 3
    chan = tsgu.ChannelCreate(("h",), 3389).encode()
    assert chan[:16] == bytes.fromhex("08000000 14000000 01 00 3d0d 0300 0400")
    # DATA: header, cbDataLen, data
    assert tsgu.Data(b"xy").encode() == bytes.fromhex("0a000000 0c000000 0200") + b"xy"
    # FreeRDP's CLOSE_CHANNEL_RESPONSE is 12 bytes with a status
    assert len(tsgu.CloseChannelResponse().encode()) == 12


def test_decode_rejects_length_mismatch_and_trailing_bytes() -> None:
    raw = tsgu.Keepalive().encode()
    with pytest.raises(ParseError):
        tsgu.decode_packet(raw + b"\x00")
    bad = bytearray(tsgu.CloseChannel().encode() + b"\x00")
    bad[4:8] = len(bad).to_bytes(4, "little")
    with pytest.raises(ParseError):
        tsgu.decode_packet(bytes(bad))
    with pytest.raises(ValueError):
        tsgu.Data(bytes(70000)).encode()


def test_splitter_handles_partial_and_joined_packets() -> None:
    stream = b"".join(p.encode() for p in PACKETS)
    splitter = tsgu.PacketSplitter()
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += splitter.feed(stream[i : i + 7])
    assert [tsgu.decode_packet(g) for g in got] == PACKETS
    assert splitter.pending == 0
    with pytest.raises(ParseError):
        tsgu.PacketSplitter().feed(b"\x0a\x00\x00\x00\x04\x00\x00\x00")


def test_status_names() -> None:
    assert tsgu.status_name(tsgu.E_PROXY_RAP_ACCESSDENIED) == "E_PROXY_RAP_ACCESSDENIED"
    assert tsgu.status_name(0x12345678) == "0x12345678"
    assert tsgu.hresult_failed(tsgu.E_PROXY_TS_CONNECTFAILED)
    assert not tsgu.hresult_failed(tsgu.E_PROXY_MAXCONNECTIONSREACHED)


# -- HTTP -----------------------------------------------------------------------------------------


def test_request_like_freerdp_round_trips() -> None:
    req = tsgu.rdg_request(
        tsgu.RDG_OUT, "gw.lab.test", "{A-B}", authorization="NTLM TlRMTVNTUAAB",
        websocket_key="ABCDEFGHIJKLMNO",
    )
    raw = req.encode()
    assert raw.startswith(b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nCache-Control: no")
    assert b"Connection: Upgrade\r\nUpgrade: websocket\r\n" in raw
    assert raw.endswith(b"Content-Length: 0\r\nAuthorization: NTLM TlRMTVNTUAAB\r\n\r\n")
    parsed = tsgu.parse_request(raw)
    assert parsed == req
    assert parsed.header("rdg-connection-id") == "{A-B}"
    assert tsgu.is_websocket_upgrade(parsed)
    chunked = tsgu.rdg_request(tsgu.RDG_IN, "gw", "{X}", chunked=True)
    assert chunked.header("Transfer-Encoding") == "chunked"
    assert not tsgu.is_websocket_upgrade(chunked)


def test_response_and_ntlm_header() -> None:
    resp = tsgu.HttpResponse(
        401, "Unauthorized",
        (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", tsgu.ntlm_authorization(b"tok"))),
    )
    parsed = tsgu.parse_response(resp.encode())
    assert parsed.status == 401
    assert tsgu.response_ntlm_token(parsed) == b"tok"
    assert tsgu.parse_ntlm_value("NTLM") is None
    assert tsgu.parse_ntlm_value("Basic abc") is None
    with pytest.raises(ParseError):
        tsgu.parse_ntlm_value("NTLM ***")


def test_head_buffer_keeps_leftover() -> None:
    hb = tsgu.HeadBuffer()
    assert hb.feed(b"HTTP/1.1 200 OK\r\nA: b\r\n") is None
    head = hb.feed(b"\r\nSEEDSEEDSE")
    assert head is not None and tsgu.parse_response(head).header("a") == "b"
    assert hb.leftover == b"SEEDSEEDSE"
    with pytest.raises(ParseError):
        tsgu.HeadBuffer(limit=10).feed(b"x" * 11)


@pytest.mark.parametrize(
    "head",
    [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", b"GET /\r\n\r\n"],
)
def test_bad_request_heads(head: bytes) -> None:
    with pytest.raises(ParseError):
        tsgu.parse_request(head)


def test_bad_status_lines() -> None:
    for head in (b"HTTP/1.1 2000 OK\r\n\r\n", b"FTP 200 OK\r\n\r\n", b"HTTP/1.1\r\n\r\n"):
        with pytest.raises(ParseError):
            tsgu.parse_response(head)


# -- chunked --------------------------------------------------------------------------------------


def test_chunked_round_trip_bytewise() -> None:
    pieces = [b"a", b"", b"hello" * 100, bytes(range(256))]
    stream = b"".join(tsgu.encode_chunk(p) for p in pieces if p) + b"0\r\n\r\n"
    dec = tsgu.ChunkedDecoder()
    out = b"".join(dec.feed(stream[i : i + 1]) for i in range(len(stream)))
    assert out == b"".join(pieces)
    assert dec.finished
    assert tsgu.encode_chunk(b"x" * 26).startswith(b"1A\r\n")


@pytest.mark.parametrize("stream", [b"zz\r\n", b"3\r\nabcXY", b"1" * 2000, b"123456789\r\n"])
def test_chunked_rejects_garbage(stream: bytes) -> None:
    with pytest.raises(ParseError):
        tsgu.ChunkedDecoder().feed(stream)


# -- WebSocket ------------------------------------------------------------------------------------


def test_websocket_accept_rfc6455_example() -> None:
    assert tsgu.websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_ws_frames_round_trip_masked_and_not(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    masked = tsgu.encode_ws_frame(tsgu.WS_BINARY, payload, mask=b"\x01\x02\x03\x04")
    assert masked[1] & 0x80
    dec = tsgu.WsDecoder(masked=True)
    frames = [f for i in range(0, len(masked), 1000) for f in dec.feed(masked[i : i + 1000])]
    assert frames == [tsgu.WsFrame(tsgu.WS_BINARY, payload)]
    plain = tsgu.encode_ws_frame(tsgu.WS_BINARY, payload, mask=None)
    assert tsgu.WsDecoder(masked=False).feed(plain) == [tsgu.WsFrame(tsgu.WS_BINARY, payload)]


def test_ws_fragments_and_control_frames() -> None:
    stream = (
        tsgu.encode_ws_frame(tsgu.WS_BINARY, b"ab", mask=None, fin=False)
        + tsgu.encode_ws_frame(tsgu.WS_PING, b"p", mask=None)
        + tsgu.encode_ws_frame(tsgu.WS_CONTINUATION, b"cd", mask=None)
    )
    frames = tsgu.WsDecoder(masked=False).feed(stream)
    assert frames == [tsgu.WsFrame(tsgu.WS_PING, b"p"), tsgu.WsFrame(tsgu.WS_BINARY, b"abcd")]


def test_ws_rejects_wrong_masking_like_freerdp() -> None:
    masked = tsgu.encode_ws_frame(tsgu.WS_BINARY, b"x", mask=b"abcd")
    with pytest.raises(ParseError):
        tsgu.WsDecoder(masked=False).feed(masked)  # a server must not mask
    with pytest.raises(ParseError):
        tsgu.WsDecoder(masked=True).feed(tsgu.encode_ws_frame(tsgu.WS_BINARY, b"x", mask=None))
    with pytest.raises(ParseError):
        tsgu.WsDecoder(masked=False).feed(b"\xf2\x00")  # reserved bits
    with pytest.raises(ParseError):
        tsgu.WsDecoder(masked=False, max_payload=10).feed(b"\x82\x7e\x00\x20")


# -- state machines -------------------------------------------------------------------------------


def _pump(a: tsgu._Machine, b: tsgu._Machine) -> None:
    for raw in a.packets_to_send():
        b.receive_data(raw)


def _events(m: tsgu._Machine) -> list[object]:
    out = []
    while (e := m.next_event()) is not None:
        out.append(e)
    return out


def _drive(statuses: dict[str, int]) -> tuple[tsgu.TsguClient, tsgu.TsguServer, list[object]]:
    client = tsgu.TsguClient("rdhost.lab.test", 3389, client_name="PROBE")
    server = tsgu.TsguServer()
    client.start()
    seen: list[object] = []
    for _ in range(4):
        _pump(client, server)
        for ev in _events(server):
            seen.append(ev)
            if isinstance(ev, tsgu.HandshakeRequested):
                server.respond_handshake(statuses.get("handshake", 0))
            elif isinstance(ev, tsgu.TunnelCreateRequested):
                server.respond_tunnel(statuses.get("tunnel_create", 0))
            elif isinstance(ev, tsgu.TunnelAuthRequested):
                server.respond_tunnel_auth(statuses.get("tunnel_auth", 0))
            elif isinstance(ev, tsgu.ChannelCreateRequested):
                server.respond_channel(statuses.get("channel_create", 0))
        _pump(server, client)
    return client, server, seen


def test_machines_open_a_channel_and_move_data() -> None:
    client, server, seen = _drive({})
    assert client.state == server.state == "open"
    chan = next(e for e in seen if isinstance(e, tsgu.ChannelCreateRequested))
    assert chan.request.resources == ("rdhost.lab.test",) and chan.request.port == 3389
    auth = next(e for e in seen if isinstance(e, tsgu.TunnelAuthRequested))
    assert auth.request.client_name == "PROBE"
    kinds = [type(e) for e in _events(client)]
    assert kinds == [
        tsgu.HandshakeDone, tsgu.TunnelCreated, tsgu.TunnelAuthorized, tsgu.ChannelOpened,
    ]
    client.send_data(b"x" * 70000)
    _pump(client, server)
    assert b"".join(e.data for e in _events(server)) == b"x" * 70000
    server.send_data(b"reply")
    server.send_keepalive()
    _pump(server, client)
    assert _events(client) == [tsgu.DataReceived(b"reply"), tsgu.KeepaliveReceived()]
    _pump(client, server)  # the client echoes the keepalive
    assert _events(server) == [tsgu.KeepaliveReceived()]
    server.close(tsgu.E_PROXY_CONNECTIONABORTED)
    _pump(server, client)
    assert _events(client) == [tsgu.ChannelClosed(tsgu.E_PROXY_CONNECTIONABORTED, by_peer=True)]
    _pump(client, server)
    assert _events(server) == [tsgu.ChannelClosed(0, by_peer=False)]
    assert client.state == server.state == "closed"


@pytest.mark.parametrize(
    ("step", "status"),
    [
        ("handshake", tsgu.E_PROXY_CAPABILITYMISMATCH),
        ("tunnel_create", tsgu.E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED),
        ("tunnel_auth", tsgu.E_PROXY_NAP_ACCESSDENIED),
        ("channel_create", tsgu.E_PROXY_RAP_ACCESSDENIED),
        ("channel_create", tsgu.E_PROXY_TS_CONNECTFAILED),
    ],
)
def test_refusals_surface_as_events(step: str, status: int) -> None:
    client, server, _ = _drive({step: status})
    assert client.state == server.state == "failed"
    refused = [e for e in _events(client) if isinstance(e, tsgu.GatewayRefused)]
    assert refused == [tsgu.GatewayRefused(step, status)]
    assert refused[0].name == tsgu.status_name(status)


def test_out_of_order_packets_are_state_errors() -> None:
    server = tsgu.TsguServer()
    with pytest.raises(StateError):
        server.receive_data(tsgu.ChannelCreate(("h",), 1).encode())
    client = tsgu.TsguClient("h", 1)
    client.start()
    with pytest.raises(StateError):
        client.receive_data(tsgu.ChannelResponse().encode())
    with pytest.raises(StateError):
        client.send_data(b"x")
    with pytest.raises(StateError):
        tsgu.TsguServer().respond_channel()


def test_service_message_reaches_client() -> None:
    client, server, _ = _drive({})
    _events(client)
    server.send_service_message("bye soon")
    _pump(server, client)
    assert _events(client) == [tsgu.ServiceMessageReceived("bye soon")]


# -- fuzz: only typed errors ----------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None)


def _typed(fn: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(RdpError):
        fn(data)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_decode_packet(data: bytes) -> None:
    _typed(tsgu.decode_packet, data)


@FUZZ
@given(st.sampled_from(PACKETS), st.binary(max_size=40), st.integers(0, 200))
def test_fuzz_mutated_packets(packet: tsgu.Packet, noise: bytes, cut: int) -> None:
    raw = bytearray(packet.encode())
    raw[8 : 8 + len(noise)] = noise
    raw = raw[: max(8, len(raw) - cut)]
    raw[4:8] = len(raw).to_bytes(4, "little")
    _typed(tsgu.decode_packet, bytes(raw))


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_splitter_and_machines(data: bytes) -> None:
    _typed(tsgu.PacketSplitter().feed, data)
    _typed(tsgu.TsguServer().receive_data, data)
    client = tsgu.TsguClient("h", 3389)
    client.start()
    _typed(client.receive_data, data)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_http_heads(data: bytes) -> None:
    _typed(tsgu.parse_request, data)
    _typed(tsgu.parse_response, data)
    _typed(tsgu.HeadBuffer(limit=200).feed, data)
    _typed(lambda d: tsgu.parse_ntlm_value(d.decode("latin-1")), data)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_chunked_and_websocket(data: bytes) -> None:
    _typed(tsgu.ChunkedDecoder().feed, data)
    _typed(tsgu.WsDecoder(masked=True, max_payload=1000).feed, data)
    _typed(tsgu.WsDecoder(masked=False, max_payload=1000).feed, data)


@FUZZ
@given(st.text(max_size=40), st.binary(max_size=40))
def test_fuzz_http_text_heads(text: str, tail: bytes) -> None:
    head = ("GET " + text + " HTTP/1.1\r\n" + text + "\r\n\r\n").encode("utf-8") + tail
    _typed(tsgu.parse_request, head)
